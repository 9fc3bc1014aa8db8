//! The live view never lies: a relative or symlinked root is watched as promptly as an
//! absolute one, unfreezing shows every change made while frozen (with no help from the
//! reconcile poll), and a slow watcher never stalls the screen.

use crate::common;
use ckptscope::cli::{tui_start, watch_setup, Cli, Command};
use ckptscope::fsys::{Fs, RawEntry, ReadSeek, RealFs};
use ckptscope::model::{FileRead, Stat};
use ckptscope::scan::scan_at;
use ckptscope::ui::run::{event_loop, forward_watch, Msg};
use ckptscope::ui::state::State;
use ckptscope::Environment;
use clap::Parser;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `ckptscope watch ROOT --ndjson --poll 3600` in `cwd`: the reconcile poll never helps.
struct Watching {
    child: Child,
    lines: crossbeam_channel::Receiver<serde_json::Value>,
}

impl Watching {
    fn start(root: &str, cwd: &Path) -> Watching {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
            .args(["watch", root, "--ndjson", "--poll", "3600", "--no-verify"])
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let w = Watching { child, lines };
        w.wait(|v| v["event"] == "snapshot", Duration::from_secs(10))
            .expect("a snapshot");
        w
    }

    fn wait(&self, want: impl Fn(&serde_json::Value) -> bool, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while let Some(left) = limit.checked_sub(start.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(v) if want(&v) => return Some(start.elapsed()),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write `<rank_0>/<name>.tmp`, then rename it to `.ckpt`: how long until each event arrives.
fn latencies(w: &Watching, rank0: &Path, step: u32) -> (Duration, Duration) {
    let tmp = format!("llama3_1_8b_rank_0-{step}_2.tmp");
    let fin = format!("llama3_1_8b_rank_0-{step}_2.ckpt");
    std::fs::write(rank0.join(&tmp), b"x").unwrap();
    let t = w
        .wait(
            |v| v["event"] == "shard_added" && v["file"] == tmp.as_str() && v["kind"] == "tmp",
            Duration::from_secs(10),
        )
        .expect("the .tmp file is seen (not only at the hourly poll)");
    std::fs::rename(rank0.join(&tmp), rank0.join(&fin)).unwrap();
    let f = w
        .wait(
            |v| v["event"] == "shard_added" && v["file"] == fin.as_str(),
            Duration::from_secs(10),
        )
        .expect("the renamed file is seen");
    (t, f)
}

#[test]
fn relative_and_symlinked_roots_get_events_as_fast_as_absolute_ones() {
    let ft = common::fixture_tree("tree-seed-run1");
    let link = ft.tmp.path().join("latest");
    std::os::unix::fs::symlink(&ft.root, &link).unwrap();
    let rank0 = ft.root.join("rank_0");
    let abs = Watching::start(&ft.root.to_string_lossy(), Path::new("/"));
    let (ta, fa) = latencies(&abs, &rank0, 100);
    drop(abs);
    for (i, (root, cwd)) in [
        ("checkpoint".to_owned(), ft.base.clone()),
        ("./latest/".to_owned(), ft.tmp.path().to_path_buf()),
        (link.to_string_lossy().into_owned(), PathBuf::from("/")),
    ]
    .into_iter()
    .enumerate()
    {
        let w = Watching::start(&root, &cwd);
        let (t, f) = latencies(&w, &rank0, 200 + i as u32);
        let bound = Duration::from_millis(1500).max(3 * ta.max(fa));
        assert!(
            t < bound && f < bound,
            "{root}: .tmp after {t:?}, rename after {f:?}; absolute: {ta:?}, {fa:?}"
        );
    }
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

/// The TUI's own event loop on a test backend, fed by a real watcher, on its own thread.
struct Tui {
    tx: crossbeam_channel::Sender<Msg>,
    done: std::thread::JoinHandle<State>,
}

impl Tui {
    fn start(root: &Path, fs: Arc<dyn Fs>) -> Tui {
        let Some(Command::Watch(wa)) = Cli::parse_from([
            "ckptscope",
            "watch",
            &root.to_string_lossy(),
            "--poll",
            "3600",
        ])
        .command
        else {
            unreachable!()
        };
        let env = Environment::with(&[], root.parent().unwrap());
        let (ctx, cfg) = watch_setup(&wa, &fs, &env).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        let fwd = tx.clone();
        let done = std::thread::spawn(move || {
            let (mut state, handle) = tui_start(ctx, cfg, false).unwrap();
            forward_watch(handle.events.clone(), fwd);
            let mut term =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
            let theme = ckptscope::ui::theme::Theme {
                color: false,
                light: false,
                ascii: false,
            };
            ready_tx.send(()).unwrap();
            event_loop(&mut term, &mut state, theme, &rx, Some(&handle)).unwrap();
            handle.stop();
            state
        });
        ready.recv().unwrap();
        Tui { tx, done }
    }

    fn send(&self, m: Msg) {
        self.tx.send(m).unwrap();
    }

    fn quit(self) -> State {
        self.send(key('q'));
        self.done.join().unwrap()
    }
}

/// Freeze, change the tree, unfreeze: at once the view is the disk as it is now (no poll —
/// it runs hourly here), and MindFormers' answer follows.
#[test]
fn unfreezing_shows_every_change_made_while_frozen() {
    let ft = common::fixture_tree("tree-seed-run1");
    let tui = Tui::start(&ft.root, Arc::new(RealFs));
    tui.send(key('f'));
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(ft.root.join("rank_3/llama3_1_8b_rank_3-20_2.ckpt")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(ft.root.join("rank_2/llama3_1_8b_rank_2-15_2.ckpt"))
        .unwrap()
        .set_len(4000)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // events arrive while frozen
    tui.send(key('f'));
    let mut s = tui.quit();
    assert!(!s.frozen());
    let ctx = s.session.ctx();
    let fresh = scan_at(&RealFs, &ctx.canonical, &ctx.root);
    assert_eq!(
        s.session.shown_tree().dirs,
        fresh.dirs,
        "the view equals a fresh scan right after unfreezing"
    );
    let a = s.session.analysis().clone();
    assert_eq!(
        a.mindformers.per_rank[0],
        ckptscope::resolve::mindformers::RankResult::File("llama3_1_8b_rank_0-15_2.ckpt".into()),
        "MindFormers falls back to 15_2"
    );
    assert!(
        a.safe
            .outcome
            .pick
            .is_none_or(|p| p.step != 2 || p.epoch < 15),
        "15_2 is truncated on rank 2, so the safe pick is older"
    );
    s.refresh();
    let g = s.grid();
    let col = g.columns.iter().position(|c| c.label() == "20_2").unwrap();
    assert_eq!(g.cell(3, col), ckptscope::grid::cell::CellState::Missing);
}

/// A filesystem whose listings take 300 ms while `slow` is set (a busy NFS server).
struct SlowFs {
    slow: AtomicBool,
}

impl Fs for SlowFs {
    fn stat(&self, p: &Path) -> std::io::Result<Stat> {
        RealFs.stat(p)
    }
    fn read_dir(&self, p: &Path) -> std::io::Result<Vec<RawEntry>> {
        if self.slow.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(300));
        }
        RealFs.read_dir(p)
    }
    fn read_small(&self, p: &Path, limit: u64) -> FileRead {
        RealFs.read_small(p, limit)
    }
    fn open(&self, p: &Path) -> std::io::Result<(Box<dyn ReadSeek>, Stat)> {
        RealFs.open(p)
    }
    fn canonicalize(&self, p: &Path) -> std::io::Result<PathBuf> {
        RealFs.canonicalize(p)
    }
}

/// The screen keeps answering keys while the watcher is busy listing a slow filesystem: the
/// UI never waits for the watcher.
#[test]
fn a_busy_watcher_never_stalls_the_screen() {
    let ft = common::fixture_tree("tree-seed-run1");
    let fs = Arc::new(SlowFs {
        slow: AtomicBool::new(false),
    });
    let tui = Tui::start(&ft.root, fs.clone());
    fs.slow.store(true, Ordering::Relaxed);
    tui.send(key('f'));
    tui.send(key('f')); // unfreeze: the watcher relists 5 folders, 300 ms each
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..5 {
        tui.send(key('j'));
    }
    let t = Instant::now();
    let s = tui.quit();
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "quit took {:?} while the watcher was busy",
        t.elapsed()
    );
    assert_eq!(
        s.row, 3,
        "every key was handled (4 ranks: the cursor stops at the last)"
    );
}

/// The screen never reads a shard: on start, the shards the answer needs are handed to the
/// watcher's verifier and the panel says they are being checked; the answer follows.
#[test]
fn the_tui_starts_without_reading_shards_and_says_what_it_is_checking() {
    let ft = common::fixture_tree("tree-seed-run1");
    let fs = Arc::new(ckptscope::fsys::FaultyFs::default());
    let Some(Command::Watch(wa)) =
        Cli::parse_from(["ckptscope", "watch", &ft.root.to_string_lossy()]).command
    else {
        unreachable!()
    };
    let env = Environment::with(&[], ft.tmp.path());
    let (ctx, cfg) = watch_setup(&wa, &(fs as Arc<dyn Fs>), &env).unwrap();
    let (mut state, handle) = tui_start(ctx, cfg, false).unwrap();
    assert!(state.derived().pending > 0);
    assert!(
        state.session.tree().verdicts.is_empty(),
        "nothing was read on the UI thread"
    );
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    let theme = ckptscope::ui::theme::Theme {
        color: false,
        light: false,
        ascii: false,
    };
    term.draw(|f| ckptscope::ui::render::draw(f, &state, &theme))
        .unwrap();
    let screen = term.backend().to_string();
    assert!(screen.contains("checking"), "{screen}");
    crate::agreement::settle(&mut state, &handle);
    assert_eq!(state.derived().pending, 0);
    let a = &state.derived().real;
    assert_eq!(
        a.safe
            .outcome
            .pick
            .as_ref()
            .map(|p| p.config.resume_training.as_str()),
        Some("llama3_1_8b_rank_0-20_2.ckpt")
    );
    handle.stop();
}
