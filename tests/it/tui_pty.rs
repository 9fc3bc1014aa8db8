//! End to end: the real binary in a pseudo-terminal, read back through a terminal emulator
//! (vt100). The seed walkthrough by keys, then quitting restores the terminal; and a second run
//! sees a truncation and a new step appear on disk while it is open.

use crate::common;
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Tui {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Tui {
    /// The TUI in a UTF-8 locale.
    fn start(args: &[&str]) -> Tui {
        Tui::start_in(args, "C.UTF-8")
    }

    fn start_in(args: &[&str], lang: &str) -> Tui {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_ckptscope"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        cmd.env("LANG", lang);
        cmd.env_remove("LC_ALL");
        cmd.env_remove("LC_CTYPE");
        let child = pty.slave.spawn_command(cmd).unwrap();
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let writer = pty.master.take_writer().unwrap();
        let parser = Arc::new(Mutex::new(vt100::Parser::new(40, 120, 0)));
        let p = parser.clone();
        std::thread::spawn(move || {
            let _keep = pty.master;
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                p.lock().unwrap().process(&buf[..n]);
            }
        });
        Tui {
            parser,
            writer,
            child,
        }
    }

    fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Wait until the screen shows every one of `texts`.
    fn wait_for(&self, texts: &[&str], limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if texts.iter().all(|t| s.contains(t)) {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for {texts:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Press `q` and wait (up to 10 s) for the TUI to exit.
    fn quit(&mut self) {
        self.keys("q");
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the TUI did not quit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&mut self, k: &str) {
        for c in k.chars() {
            self.writer.write_all(c.to_string().as_bytes()).unwrap();
            self.writer.flush().unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

fn snapshot(root: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut v = Vec::new();
    for d in std::fs::read_dir(root).unwrap() {
        let d = d.unwrap().path();
        if !d.is_dir() {
            // a file at the root (the new format's tracker)
            let m = std::fs::metadata(&d).unwrap();
            v.push((d.display().to_string(), m.len(), m.modified().unwrap()));
            continue;
        }
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap();
            let m = f.metadata().unwrap();
            v.push((
                f.path().display().to_string(),
                m.len(),
                m.modified().unwrap(),
            ));
        }
    }
    v.sort();
    v
}

#[test]
fn seed_walkthrough_in_a_real_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_fixture("tree-seed-run1", tmp.path());
    let root = tmp.path().join("checkpoint");
    let before = snapshot(&root);
    let mut t = Tui::start(&[root.to_str().unwrap()]);
    t.wait_for(
        &["MindFormers → 20_2", "first step 42"],
        Duration::from_secs(20),
    );
    t.keys("jjjll");
    t.wait_for(
        &["rank 3 · llama3_1_8b_rank_3-20_2.ckpt"],
        Duration::from_secs(5),
    );
    t.keys("x");
    t.wait_for(
        &[
            "SIMULATION: 1 edit(s)",
            "MindFormers → 15_2",
            "skip 30 · first step 32",
        ],
        Duration::from_secs(5),
    );
    t.keys(">");
    t.wait_for(
        &["first step 17", "scale 0.5", "gbs 8 → 16"],
        Duration::from_secs(5),
    );
    t.keys("u");
    t.wait_for(&["skip 30 · first step 32"], Duration::from_secs(5));
    t.quit();
    std::thread::sleep(Duration::from_millis(200));
    let p = t.parser.lock().unwrap();
    assert!(!p.screen().alternate_screen(), "left the alternate screen");
    assert!(!p.screen().hide_cursor(), "the cursor is visible again");
    drop(p);
    assert_eq!(snapshot(&root), before, "the tree on disk is unchanged");
}

/// In the C locale (no UTF-8), the screen is drawn in ASCII: no glyph of ambiguous width.
#[test]
fn a_c_locale_gets_ascii() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_fixture("tree-seed-run1", tmp.path());
    let root = tmp.path().join("checkpoint");
    let mut t = Tui::start_in(&[root.to_str().unwrap()], "C");
    let s = t.wait_for(&["MindFormers -> 20_2", "rank 3"], Duration::from_secs(20));
    assert!(s.is_ascii(), "{s}");
    assert!(s.contains("+ steps x ranks"), "{s}");
    t.keys("q");
}

#[test]
fn live_changes_show_up_within_the_poll_period() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    ckptscope::writer::run::run(&root, &ckptscope::writer::run::Launch::seed(), |_| true).unwrap();
    let mut t = Tui::start(&["watch", root.to_str().unwrap(), "--poll", "1"]);
    t.wait_for(&["MindFormers → 20_2"], Duration::from_secs(20));
    // truncate one shard and write a newer step on every rank
    std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("rank_2/llama3_1_8b_rank_2-20_2.ckpt"))
        .unwrap()
        .set_len(5000)
        .unwrap();
    let resumed = ckptscope::writer::run::Launch {
        initial_step: 40,
        initial_epoch: 20,
        steps: 10,
        save_steps: 10,
        ..ckptscope::writer::run::Launch::seed()
    };
    ckptscope::writer::run::run(&root, &resumed, |_| true).unwrap();
    let s = t.wait_for(
        &["_1-25_2", "MindFormers → _1-25_2"],
        Duration::from_secs(3),
    );
    // the cell: rank 2's 20_2 (the cursor opened on MindFormers' step, wherever that was)
    t.keys(":2\r:20_2\r");
    let s2 = t.wait_for(&["truncated"], Duration::from_secs(3));
    assert!(
        s.contains('~') || s2.contains('~'),
        "the truncated glyph is on screen:\n{s2}"
    );
    t.keys("q");
    let _ = t.child.wait();
}

fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Killed by SIGTERM, SIGINT or SIGHUP, the TUI leaves the terminal as it found it.
#[test]
fn a_signal_restores_the_terminal() {
    for sig in ["TERM", "INT", "HUP"] {
        let tmp = tempfile::tempdir().unwrap();
        common::copy_fixture("tree-seed-run1", tmp.path());
        let root = tmp.path().join("checkpoint");
        let t = Tui::start(&[root.to_str().unwrap()]);
        t.wait_for(&["MindFormers → 20_2"], Duration::from_secs(20));
        assert!(t.parser.lock().unwrap().screen().alternate_screen());
        signal(t.child.process_id().unwrap(), sig);
        let mut child = t.child;
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "SIG{sig}: still running"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.exit_code(), 130, "SIG{sig}: {status:?}");
        std::thread::sleep(Duration::from_millis(200));
        let p = t.parser.lock().unwrap();
        assert!(
            !p.screen().alternate_screen(),
            "SIG{sig}: left the alternate screen"
        );
        assert!(
            !p.screen().hide_cursor(),
            "SIG{sig}: the cursor is visible again"
        );
    }
}

/// `demo --no-tui` killed by SIGTERM removes its temporary folder.
#[test]
fn a_killed_headless_demo_removes_its_folder() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["demo", "--no-tui"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let dir = loop {
        let l = lines.next().expect("output").unwrap();
        if let Some(p) = l.strip_prefix("writing into ") {
            break std::path::PathBuf::from(p);
        }
    };
    // wait for the first save, so the folder has files in it
    for l in lines.by_ref() {
        if l.unwrap().contains("saved") {
            break;
        }
    }
    let folder = dir.parent().unwrap().to_path_buf();
    assert!(folder.exists());
    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!folder.exists(), "{} left behind", folder.display());
}

/// A paced demo honours SIGTERM within a moment wherever it is — here in an hour-long pause
/// and then in a run whose saves are far apart — and still removes its folder.
#[test]
fn a_paced_demo_stops_promptly_on_sigterm() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    for (name, timeline) in [
        (
            "pause.toml",
            "[run]\nranks = 2\n[[timeline]]\nevent = \"train\"\nsteps = 10\n[[timeline]]\nevent = \"pause\"\nseconds = 3600\nsay = \"an hour-long pause\"\n",
        ),
        (
            "sparse.toml",
            "[run]\nranks = 2\nsave_steps = 100000\n[[timeline]]\nevent = \"train\"\nsteps = 100000\nsay = \"saves far apart\"\n",
        ),
    ] {
        let file = tmp.path().join(name);
        std::fs::write(
            &file,
            format!("name = \"x\"\ndescription = \"d\"\noutcome = \"o\"\n{timeline}"),
        )
        .unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
            .args(["demo", "--no-tui", "--speed", "1"])
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut dir = None;
        for l in lines.by_ref() {
            let l = l.unwrap();
            if let Some(p) = l.strip_prefix("writing into ") {
                dir = Some(std::path::PathBuf::from(p));
            }
            if l.contains("an hour-long pause") || l.contains("saves far apart") {
                break;
            }
        }
        let folder = dir.expect("writing into …").parent().unwrap().to_path_buf();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let t = std::time::Instant::now();
        signal(child.id(), "TERM");
        let status = child.wait().unwrap();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{name}: stopped after {:?}",
            t.elapsed()
        );
        assert!(!status.success());
        assert!(!folder.exists(), "{} left behind", folder.display());
    }
}

/// The terminal going away under the TUI (a dropped SSH session, a closed window: the pty's
/// master closes, the TUI gets SIGHUP and EIO) ends it cleanly — no abort while restoring a
/// terminal that no longer exists. The same for the demo.
#[test]
fn a_vanished_terminal_ends_the_tui_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_fixture("tree-seed-run1", tmp.path());
    let root = tmp.path().join("checkpoint");
    for args in [vec![root.to_str().unwrap()], vec!["demo", "--speed", "0.2"]] {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_ckptscope"));
        cmd.args(&args);
        cmd.env("TERM", "xterm-256color");
        let mut child = pty.slave.spawn_command(cmd).unwrap();
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        while !String::from_utf8_lossy(&seen).contains("MindFormers") {
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0, "{args:?}: the TUI drew nothing");
            seen.extend_from_slice(&buf[..n]);
        }
        // the terminal goes away: nobody holds the master any more
        drop(reader);
        drop(pty.master);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{args:?}: still running after the terminal closed"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.signal(), None, "{args:?}: {status:?}");
        assert_ne!(status.exit_code(), 134, "{args:?}: aborted");
    }
}

/// The acceptance of issue 12: `ckptscope demo`, pressing only Space, shows the fallback from
/// 20_2 to 15_2 with the cursor on the lost shard — each beat held on screen until Space.
#[test]
fn the_presented_demo_shows_the_fallback_by_space_alone() {
    let mut t = Tui::start(&["demo", "--speed", "20"]);
    // the training beat is held: M sits on 20_2, and the banner says Space goes on
    let s = t.wait_for(
        &[
            "Space: next beat",
            "MindFormers → 20_2",
            "training the seed run",
        ],
        Duration::from_secs(30),
    );
    assert!(!s.contains("15_2 ✓ (MindFormers"), "{s}");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        t.screen().contains("MindFormers → 20_2"),
        "held, not moving on by itself"
    );
    t.keys(" ");
    let s = t.wait_for(
        &[
            "fault: rank 3 loses",
            "resume point 20_2 → 15_2",
            "MindFormers → 15_2",
            "rank 3 · llama3_1_8b_rank_3-20_2.ckpt",
        ],
        Duration::from_secs(15),
    );
    assert!(!s.contains("▶ ▶"), "no doubled marker: {s}");
    t.keys(" ");
    t.keys("q");
    let _ = t.child.wait();
    // --auto: each beat dwells, then the story goes on by itself
    let mut t = Tui::start(&["demo", "--speed", "20", "--auto", "0.3"]);
    t.wait_for(
        &["resume point 20_2 → 15_2", "MindFormers → 15_2"],
        Duration::from_secs(30),
    );
    t.keys("q");
    let _ = t.child.wait();
}

/// The TUI demo killed by SIGTERM or SIGHUP removes its temporary folder (and restores the
/// terminal) like on `q`.
#[test]
fn a_signalled_tui_demo_removes_its_folder() {
    for sig in ["TERM", "HUP"] {
        let t = Tui::start(&["demo", "--speed", "20"]);
        let s = t.wait_for(&["ckptscope-demo-"], Duration::from_secs(30));
        // the header names the folder: <tmp>/ckptscope-demo-XXXX/checkpoint
        let start = s.find('/').expect("a path in the header");
        let path: String = s[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let folder = std::path::Path::new(&path).parent().unwrap().to_path_buf();
        assert!(folder.exists(), "{}", folder.display());
        signal(t.child.process_id().unwrap(), sig);
        let mut child = t.child;
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "SIG{sig}: still running"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !folder.exists(),
            "SIG{sig}: {} left behind",
            folder.display()
        );
    }
}

/// Regenerates `assets/demo-tui.txt` from a real run of the presented demo (the README shows
/// it): `CAPTURE_ASSETS=1 cargo test --test it capture_demo_assets -- --ignored`.
#[test]
#[ignore = "writes assets/: run by hand to refresh the README's captures"]
fn capture_demo_assets() {
    if std::env::var_os("CAPTURE_ASSETS").is_none() {
        panic!("set CAPTURE_ASSETS=1 to write assets/demo-tui.txt");
    }
    let mut t = Tui::start(&["demo", "--speed", "20"]);
    let held = t.wait_for(
        &["Space: next beat", "MindFormers → 20_2"],
        Duration::from_secs(30),
    );
    t.keys(" ");
    let fault = t.wait_for(
        &[
            "resume point 20_2 → 15_2",
            "rank 3 · llama3_1_8b_rank_3-20_2.ckpt",
        ],
        Duration::from_secs(15),
    );
    t.keys("q");
    let _ = t.child.wait();
    let tidy = |s: &str| {
        // the temporary folder's random name, fixed so the capture does not churn
        let mut out = String::new();
        for line in s.lines() {
            let mut l = line.to_owned();
            while let Some(i) = l.find("ckptscope-demo-") {
                let end = i + "ckptscope-demo-".len() + 6;
                l.replace_range(i..end.min(l.len()), "ckptscope-demo-XXXXXX");
                if !l[i + 21..].contains("ckptscope-demo-") {
                    break;
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        }
        out
    };
    let text = format!(
        "`ckptscope demo` (fault-recovery, presenter mode), 120×40, captured by\n`CAPTURE_ASSETS=1 cargo test --test it capture_demo_assets -- --ignored`.\n\nThe training beat, held until Space: M on 20_2.\n\n{}\nSpace: rank 3 loses its 20_2; the cursor is on the lost shard, M falls back to 15_2.\n\n{}",
        tidy(&held),
        tidy(&fault)
    );
    std::fs::write(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo-tui.txt"),
        text,
    )
    .unwrap();
}

/// The new format's walkthrough by keys in a real terminal: a healthy `iteration_*` tree, then
/// rank 1's model shard of the newest folder marked truncated in the simulation — MindFormers'
/// answer becomes rank 1's weights-stage error, the safe pick moves to the previous folder
/// (the change that reaches it is checked in `newfmt_tui`) — and deleted instead, every rank
/// fails verification.
/// The disk is untouched.
#[test]
fn new_format_walkthrough_in_a_real_terminal() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/mindformers-new/tree-healthy-2rank");
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(&src, tmp.path());
    let root = tmp.path().join("checkpoint");
    let before = snapshot(&root);
    let mut t = Tui::start(&[root.to_str().unwrap()]);
    t.wait_for(
        &[
            "MindFormers → iteration_00000010 (step 10) ✓",
            "Safe → iteration_00000010 (step 10) ✓",
            "iterations × ranks",
        ],
        Duration::from_secs(20),
    );
    // the cursor starts on MindFormers' folder; rank 1 is one row down
    t.keys("j");
    t.wait_for(
        &["iteration_00000010 · llama-model-0000001-0000002.safetensors"],
        Duration::from_secs(5),
    );
    t.keys("t");
    t.wait_for(
        &[
            "SIMULATION: 1 edit(s)",
            "rank 1 at the weights",
            "Safe → iteration_00000008 (step",
        ],
        Duration::from_secs(5),
    );
    t.keys("ux");
    t.wait_for(
        &["fails on 2 of", "rank 0 at the resolve"],
        Duration::from_secs(5),
    );
    t.quit();
    assert_eq!(snapshot(&root), before, "the tree on disk is unchanged");
}

/// A new-format demo in the TUI, by Space alone: the job dies before its tracker write, and
/// the screen shows MindFormers staying on the tracker's folder while the complete newer one
/// is the safe pick, with the cursor on that folder.
#[test]
fn the_new_format_demo_shows_a_kill_before_the_tracker() {
    let mut t = Tui::start(&["demo", "new-kill-before-tracker", "--speed", "20"]);
    t.wait_for(
        &[
            "Space: next beat",
            "iterations × ranks",
            "MindFormers → iteration_00000030",
        ],
        Duration::from_secs(30),
    );
    t.keys(" ");
    t.wait_for(
        &[
            "MindFormers → iteration_00000030 (step 30) ✓",
            "Safe → iteration_00000040 (step 40) ✓",
            "iteration_00000040 ·",
            "llama3_1_8b-model-0000000-0000004.safetensors",
        ],
        Duration::from_secs(15),
    );
    t.quit();
}
