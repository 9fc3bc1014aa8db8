//! The watcher converges: while a writer imitating MindFormers' protocol works on 64 ranks
//! (`.tmp` writes, renames, chmods, rotations, meta.json replacements, a rank folder deleted and
//! recreated), and after it stops, the watcher's model equals a fresh scan within one poll
//! period — with inotify hints, and polling only (what network filesystems get).

use ckptscope::fsys::RealFs;
use ckptscope::scan::scan_at;
use ckptscope::watch::{spawn, Mode, WatchConfig, WatchHandle, WatchMsg};
use ckptscope::writer::run::{run, Launch};
use ckptscope::{Event, Session};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A session fed by a watcher, as `watch --ndjson` and the TUI run it.
pub struct Live {
    pub h: WatchHandle,
    pub s: Session,
    pub mode: Mode,
    /// Mode changes the watcher reported, with their reasons.
    pub modes: Vec<(Mode, String)>,
}

impl Live {
    /// Watch `root` (a folder that exists) with `flags`, an empty environment and `poll`.
    pub fn start(root: &Path, poll: Duration, poll_only: bool) -> Live {
        Live::start_with(root, poll, poll_only, |_| {})
    }

    pub fn start_with(
        root: &Path,
        poll: Duration,
        poll_only: bool,
        tweak: impl FnOnce(&mut WatchConfig),
    ) -> Live {
        let env = ckptscope::Environment::with(&[], root.parent().unwrap());
        let ctx =
            ckptscope::JobContext::gather(&RealFs, &env, root.as_os_str(), &Default::default())
                .unwrap();
        let mut cfg =
            WatchConfig::for_job(&ctx, Arc::new(RealFs), Some(poll.as_secs_f64()), poll_only)
                .unwrap();
        tweak(&mut cfg);
        let h = spawn(cfg);
        let Ok(WatchMsg::Started { tree, mode }) = h.events.recv() else {
            panic!("no first scan")
        };
        let s = Session::from_tree(Arc::new(RealFs), ctx, *tree);
        Live {
            h,
            s,
            mode,
            modes: Vec::new(),
        }
    }

    /// Apply what the watcher sends during `d`; returns the session's events.
    pub fn pump(&mut self, d: Duration) -> Vec<Event> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.h.events.recv_timeout(left) {
                Ok(WatchMsg::Deltas(ds)) => ds.into_iter().for_each(|d| self.s.apply(d)),
                Ok(WatchMsg::Mode { mode, reason }) => self.modes.push((mode, reason)),
                Ok(WatchMsg::Failed(e)) => panic!("{e}"),
                Ok(_) => {}
                Err(_) => break,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        self.s.drain_events()
    }

    /// Whether the session's model equals a fresh scan (state and folders; verdicts are not
    /// on disk).
    pub fn matches_disk(&self) -> bool {
        let ctx = self.s.ctx();
        let fresh = scan_at(&RealFs, &ctx.canonical, &ctx.root);
        let model = self.s.tree();
        model.state == fresh.state
            && model.dirs == fresh.dirs
            && model.root_files == fresh.root_files
    }

    /// Pump until the model equals a fresh scan.
    pub fn converged_within(&mut self, limit: Duration) -> Option<Duration> {
        self.converge(limit).map(|(took, _)| took)
    }

    /// [`Live::converged_within`], keeping the session's events on the way.
    pub fn converge(&mut self, limit: Duration) -> Option<(Duration, Vec<Event>)> {
        let start = Instant::now();
        let mut events = Vec::new();
        loop {
            if self.matches_disk() {
                return Some((start.elapsed(), events));
            }
            if start.elapsed() > limit {
                let ctx = self.s.ctx();
                let fresh = scan_at(&RealFs, &ctx.canonical, &ctx.root);
                let differing: Vec<&String> = fresh
                    .dirs
                    .keys()
                    .filter(|k| self.s.tree().dirs.get(*k) != fresh.dirs.get(*k))
                    .collect();
                eprintln!(
                    "not converged: root equal {}, differing folders {differing:?}",
                    self.s.tree().state == fresh.state
                );
                return None;
            }
            events.extend(self.pump(Duration::from_millis(50)));
        }
    }
}

fn writer(root: &Path) {
    let launch = Launch {
        ranks: 64,
        save_steps: 2,
        steps: 40,
        ..Launch::seed()
    };
    let mut saves = 0;
    run(root, &launch, |_| {
        saves += 1;
        if saves == 10 {
            std::fs::remove_dir_all(root.join("rank_5")).unwrap();
        }
        true
    })
    .unwrap();
    // a resumed launch adds restart-suffixed files next to the old ones
    run(
        root,
        &Launch {
            ranks: 64,
            save_steps: 2,
            steps: 6,
            initial_step: 40,
            initial_epoch: 20,
            ..Launch::seed()
        },
        |_| true,
    )
    .unwrap();
}

fn convergence(poll_only: bool, poll: Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    std::fs::create_dir(&root).unwrap();
    let mut live = Live::start(&root, poll, poll_only);
    assert_eq!(
        matches!(live.mode, Mode::Poll { .. }),
        poll_only,
        "{:?}",
        live.mode
    );
    let writer_root = root.clone();
    let w = std::thread::spawn(move || writer(&writer_root));
    // keep applying deltas while the writer works, as a live view does
    while !w.is_finished() {
        live.pump(Duration::from_millis(20));
    }
    w.join().unwrap();
    let files: usize = scan_at(&RealFs, &root, "")
        .dirs
        .values()
        .map(|d| d.listing.entries().len())
        .sum();
    assert!(files >= 64 * 5, "the writer ran ({files} files)");
    let took = live.converged_within(poll + Duration::from_secs(1));
    assert!(
        took.is_some(),
        "the model did not converge within one poll period ({poll:?}) + 1 s"
    );
    eprintln!(
        "converged {:?} after the writer stopped (poll {poll:?}, poll only {poll_only})",
        took.unwrap()
    );
    // and it stays converged when the folder is deleted and recreated
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::create_dir(&root).unwrap();
    run(
        &root,
        &Launch {
            ranks: 4,
            ..Launch::seed()
        },
        |_| true,
    )
    .unwrap();
    assert!(
        live.converged_within(poll * 2 + Duration::from_secs(1))
            .is_some(),
        "after the root was recreated"
    );
    live.h.stop();
}

#[test]
fn converges_with_inotify_hints() {
    convergence(false, Duration::from_secs(2));
}

#[test]
fn converges_polling_only() {
    convergence(true, Duration::from_secs(1));
}

#[test]
fn stream_reports_changes_verdicts_and_resolution() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    let mut live = Live::start(&root, Duration::from_secs(1), false);
    std::fs::remove_file(root.join("rank_3/llama3_1_8b_rank_3-20_2.ckpt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut removed, mut fallback, mut verdicts) = (false, false, 0);
    while Instant::now() < deadline && !(removed && fallback && verdicts > 0) {
        for e in live.pump(Duration::from_millis(200)) {
            match e {
                Event::ShardRemoved {
                    rank: Some(3),
                    file,
                    ..
                } if file == "llama3_1_8b_rank_3-20_2.ckpt" => removed = true,
                Event::Verdict { .. } => verdicts += 1,
                _ => {}
            }
        }
        let r = live.s.resolution();
        fallback |= r.legacy.expect("a legacy tree").mindformers.per_rank[3].resume_training
            == Some(ckptscope::report::json::ResumeValue::Name(
                "llama3_1_8b_rank_3-15_2.ckpt".into(),
            ));
    }
    assert!(
        removed && fallback,
        "removed {removed}, fallback {fallback}"
    );
    assert!(verdicts > 0);
    live.h.stop();
}

/// Hitting the inotify watch limit switches to polling, says which sysctl to raise, and the
/// model keeps following the tree.
#[test]
fn watch_limit_falls_back_to_polling() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    let mut live = Live::start_with(&root, Duration::from_millis(500), false, |c| {
        c.watch_limit = Some(3)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while live.modes.is_empty() && Instant::now() < deadline {
        live.pump(Duration::from_millis(100));
    }
    let (mode, reason) = live.modes.first().expect("a mode change").clone();
    assert!(mode.is_degraded(), "{mode:?}");
    assert!(reason.contains("fs.inotify.max_user_watches"), "{reason}");
    std::fs::write(root.join("rank_2/llama3_1_8b_rank_2-25_2.tmp"), b"x").unwrap();
    assert!(live.converged_within(Duration::from_millis(1500)).is_some());
    live.h.stop();
}

/// The watcher through the filesystem seam, on an in-memory filesystem: files deleted, a rank
/// folder deleted and recreated (a new inode), meta.json replaced, a new rank — each change
/// reaches the session after a resync request, with no sleeping, and verification reads the
/// in-memory bytes.
#[test]
fn reconcile_converges_on_a_simulated_filesystem() {
    use crate::common::memfs::MemFs;
    use ckptscope::writer::ckpt::{checkpoint_bytes, AppendEntries};
    let fs = Arc::new(MemFs::default());
    let root = Path::new("/job/checkpoint");
    let ckpt = |e: i64| {
        checkpoint_bytes(
            1,
            1,
            &AppendEntries {
                epoch_num: e,
                step_num: 2 * e,
                loss_scale: 1.0,
                global_batch_size: Some(8),
                resumed: false,
            },
        )
    };
    let meta = |r: u32, e: i64| {
        format!("{{\"last_epoch\": {e}, \"last_step\": 2, \"last_ckpt_file\": \"m_rank_{r}-{e}_2.ckpt\"}}")
    };
    for r in 0..2 {
        for e in [10, 15, 20] {
            fs.write(
                &root.join(format!("rank_{r}/m_rank_{r}-{e}_2.ckpt")),
                &ckpt(e),
            );
        }
        fs.write(
            &root.join(format!("rank_{r}/meta.json")),
            meta(r, 20).as_bytes(),
        );
    }
    let env = ckptscope::Environment::with(&[], "/job");
    let ctx =
        ckptscope::JobContext::gather(&*fs, &env, "/job/checkpoint", &Default::default()).unwrap();
    assert!(ctx.network_fs.is_none());
    let cfg = WatchConfig::for_job(&ctx, fs.clone(), Some(3600.0), true).unwrap();
    let h = spawn(cfg);
    let Ok(WatchMsg::Started { tree, .. }) = h.events.recv() else {
        panic!("no first scan")
    };
    let mut s = Session::from_tree(fs.clone(), ctx, *tree);
    let pick = |s: &mut Session| format!("{:?}", s.analysis().mindformers.per_rank[0]);
    assert!(pick(&mut s).contains("m_rank_0-20_2.ckpt"));
    let sync = |s: &mut Session| {
        h.resync();
        let fresh = |s: &Session| scan_at(&*fs, Path::new("/job/checkpoint"), &s.ctx().root);
        while s.tree().dirs != fresh(s).dirs || s.tree().state != fresh(s).state {
            let m = h
                .events
                .recv_timeout(Duration::from_secs(10))
                .expect("the watcher answers a resync");
            s.absorb(m).unwrap();
        }
    };
    fs.remove(&root.join("rank_1/m_rank_1-20_2.ckpt"));
    sync(&mut s);
    assert!(
        pick(&mut s).contains("m_rank_0-15_2.ckpt"),
        "{}",
        pick(&mut s)
    );
    fs.remove(&root.join("rank_1"));
    fs.mkdir(&root.join("rank_1"));
    for e in [10, 15, 20, 25] {
        fs.write(&root.join(format!("rank_1/m_rank_1-{e}_2.ckpt")), &ckpt(e));
    }
    fs.write(&root.join("rank_1/meta.json"), meta(1, 25).as_bytes());
    fs.write(&root.join("rank_0/m_rank_0-25_2.ckpt"), &ckpt(25));
    fs.write(&root.join("rank_0/meta.json"), meta(0, 25).as_bytes());
    sync(&mut s);
    assert!(
        pick(&mut s).contains("m_rank_0-25_2.ckpt"),
        "{}",
        pick(&mut s)
    );
    fs.write(&root.join("rank_2/m_rank_2-25_2.ckpt"), &ckpt(25));
    sync(&mut s);
    assert_eq!(s.analysis().world_size, 3);
    let events = s.drain_events();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::RankAdded { rank: Some(2), .. })));
    // the safe pick needed rank 0's 25_2: checked from the in-memory bytes
    assert_eq!(
        s.tree()
            .verdict("rank_0", "m_rank_0-25_2.ckpt")
            .map(|c| c.verdict),
        Some(ckptscope::Verdict::Ok)
    );
    h.stop();
}

/// A rank folder deleted and recreated under the same name (the filesystem may even reuse its
/// inode number) is relisted and watched again at once — no help from the poll, hourly here;
/// a whole root renamed away and recreated too.
#[test]
fn recreated_folders_are_seen_without_the_poll() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    let mut live = Live::start(&root, Duration::from_secs(3600), false);
    for round in 0..3 {
        std::fs::remove_dir_all(root.join("rank_1")).unwrap();
        std::fs::create_dir(root.join("rank_1")).unwrap();
        std::fs::write(root.join(format!("rank_1/b{round}.txt")), b"x").unwrap();
        assert!(
            live.converged_within(Duration::from_secs(2)).is_some(),
            "round {round}: the recreated folder is relisted"
        );
        // and its new watch works: a file created later is seen too
        std::fs::write(root.join(format!("rank_1/c{round}.txt")), b"x").unwrap();
        assert!(
            live.converged_within(Duration::from_secs(2)).is_some(),
            "round {round}: the recreated folder is watched again"
        );
    }
    std::fs::rename(&root, tmp.path().join("old")).unwrap();
    run(
        &root,
        &Launch {
            ranks: 2,
            ..Launch::seed()
        },
        |_| true,
    )
    .unwrap();
    assert!(
        live.converged_within(Duration::from_secs(3)).is_some(),
        "a new root folder under the same name"
    );
    live.h.stop();
}

/// The root deleted, left absent for a moment, then recreated: seen without the poll.
#[test]
fn a_root_deleted_then_recreated_later_is_seen_without_the_poll() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(
        &root,
        &Launch {
            ranks: 2,
            ..Launch::seed()
        },
        |_| true,
    )
    .unwrap();
    let mut live = Live::start(&root, Duration::from_secs(3600), false);
    std::fs::remove_dir_all(&root).unwrap();
    assert!(
        live.converged_within(Duration::from_secs(2)).is_some(),
        "gone"
    );
    assert!(live.s.tree().dirs.is_empty());
    // the answer says why there is none, in the stream's own words
    let r = live.s.resolution();
    assert_eq!(r.outcome.status, "unknown");
    assert!(
        r.outcome
            .why
            .as_deref()
            .unwrap_or_default()
            .contains("no such file or directory"),
        "{:?}",
        r.outcome
    );
    assert!(r.summary().starts_with("no answer: "), "{}", r.summary());
    run(
        &root,
        &Launch {
            ranks: 3,
            ..Launch::seed()
        },
        |_| true,
    )
    .unwrap();
    assert!(
        live.converged_within(Duration::from_secs(3)).is_some(),
        "recreated"
    );
    assert_eq!(live.s.tree().dirs.len(), 3);
    std::fs::write(root.join("rank_2/late.txt"), b"x").unwrap();
    assert!(
        live.converged_within(Duration::from_secs(2)).is_some(),
        "and watched again"
    );
    live.h.stop();
}

/// Item 16: a rank folder that cannot be watched (through the seam: permission denied) leaves
/// inotify on for every other folder; that one folder is covered by the poll.
#[test]
fn one_unwatchable_folder_does_not_turn_inotify_off() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    let mut live = Live::start_with(&root, Duration::from_secs(2), false, |c| {
        c.unwatchable = vec!["rank_1".into()]
    });
    assert!(matches!(live.mode, Mode::Inotify { .. }), "{:?}", live.mode);
    std::fs::write(root.join("rank_0/a.txt"), b"x").unwrap();
    let t = live.converged_within(Duration::from_secs(1));
    assert!(t.is_some(), "a watched folder is followed by events");
    std::fs::write(root.join("rank_1/b.txt"), b"x").unwrap();
    assert!(
        live.converged_within(Duration::from_secs(3)).is_some(),
        "the unwatchable folder is caught by the 2 s poll"
    );
    assert!(live.modes.is_empty(), "no fallback: {:?}", live.modes);
    live.h.stop();
}

/// Item 15: churn — 40 ranks saving as fast as they can (5,000 saves: `.tmp` writes, renames,
/// chmods, rotations, meta.json replacements; one rank folder deleted and recreated) while
/// watched with inotify and an hourly poll: within one second of the writer stopping, the
/// model equals a fresh scan. Queue overflows, if any, are recovered by rescans, not the poll.
#[test]
fn churn_converges_within_a_second_without_the_poll() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    std::fs::create_dir(&root).unwrap();
    let mut live = Live::start(&root, Duration::from_secs(3600), false);
    let writer_root = root.clone();
    let w = std::thread::spawn(move || {
        let launch = Launch {
            ranks: 40,
            save_steps: 2,
            steps: 250,
            ..Launch::seed()
        };
        let mut saves = 0;
        run(&writer_root, &launch, |_| {
            saves += 1;
            if saves == 60 {
                std::fs::remove_dir_all(writer_root.join("rank_7")).unwrap();
            }
            true
        })
        .unwrap();
        saves * 40
    });
    while !w.is_finished() {
        live.pump(Duration::from_millis(20));
    }
    let saves = w.join().unwrap();
    assert!(saves >= 5000, "{saves} saves");
    assert!(
        live.converged_within(Duration::from_secs(1)).is_some(),
        "not converged within 1 s of the writer stopping"
    );
    live.h.stop();
}

/// A folder whose name needs escaping (a tab) created while watching is one folder in the
/// model, under its escaped name — not added twice, not removed while it exists.
#[test]
fn a_folder_with_an_escaped_name_is_one_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(
        &root,
        &Launch {
            ranks: 2,
            ..Launch::seed()
        },
        |_| true,
    )
    .unwrap();
    let mut live = Live::start(&root, Duration::from_secs(3600), false);
    std::fs::create_dir(root.join("rank_\t4")).unwrap();
    std::fs::write(root.join("rank_\t4/x.ckpt"), b"x").unwrap();
    let events = live.pump(Duration::from_millis(1500));
    let folders: Vec<(bool, &String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::RankAdded { dir, .. } => Some((true, dir)),
            Event::RankRemoved { dir, .. } => Some((false, dir)),
            _ => None,
        })
        .collect();
    assert_eq!(
        folders,
        vec![(true, &"rank_\\x094".to_string())],
        "one folder added, under its escaped name"
    );
    assert!(live.converged_within(Duration::from_secs(3)).is_some());
    let dirs: Vec<&String> = live.s.tree().dirs.keys().collect();
    assert!(dirs.iter().any(|d| d.as_str() == "rank_\\x094"), "{dirs:?}");
}
