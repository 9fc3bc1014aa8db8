//! The watcher converges: while a writer imitating MindFormers' protocol works on 64 ranks
//! (`.tmp` writes, renames, chmods, rotations, meta.json replacements, a rank folder deleted and
//! recreated), and after it stops, the watcher's model equals a fresh scan within one poll
//! period — with inotify hints, and polling only (what network filesystems get).

use ckptscope::fsys::RealFs;
use ckptscope::scan::scan;
use ckptscope::watch::{spawn, Mode, WatchConfig, WatchEvent, WatchHandle};
use ckptscope::writer::run::{run, Launch};
use std::path::Path;
use std::time::{Duration, Instant};

fn config(root: &Path, poll: Duration, poll_only: bool) -> WatchConfig {
    WatchConfig {
        poll,
        poll_only: poll_only.then(|| "test: forced polling".to_owned()),
        verify: true,
        ..WatchConfig::local(&root.to_string_lossy())
    }
}

/// Wait until the model equals a fresh scan (state and folders; verdicts are not on disk).
fn converged_within(h: &WatchHandle, root: &Path, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    loop {
        let fresh = scan(&RealFs, &root.to_string_lossy());
        let model = h.snapshot()?;
        if model.state == fresh.state && model.dirs == fresh.dirs {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            let differing: Vec<&String> = fresh
                .dirs
                .keys()
                .filter(|k| model.dirs.get(*k) != fresh.dirs.get(*k))
                .collect();
            eprintln!(
                "not converged: root equal {}, differing folders {differing:?}",
                model.state == fresh.state
            );
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
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
    let h = spawn(config(&root, poll, poll_only));
    let Ok(WatchEvent::Snapshot { mode, .. }) = h.events.recv() else {
        panic!("no snapshot")
    };
    assert_eq!(matches!(mode, Mode::Poll { .. }), poll_only, "{mode:?}");
    let writer_root = root.clone();
    let w = std::thread::spawn(move || writer(&writer_root));
    // drain events while the writer works, so nothing backs up
    while !w.is_finished() {
        while h.events.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(20));
    }
    w.join().unwrap();
    let files: usize = scan(&RealFs, &root.to_string_lossy())
        .dirs
        .values()
        .map(|d| d.listing.entries().len())
        .sum();
    assert!(files >= 64 * 5, "the writer ran ({files} files)");
    let took = converged_within(&h, &root, poll + Duration::from_secs(1));
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
        converged_within(&h, &root, poll * 2 + Duration::from_secs(1)).is_some(),
        "after the root was recreated"
    );
    h.stop();
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
    let h = spawn(config(&root, Duration::from_secs(1), false));
    assert!(matches!(
        h.events.recv().unwrap(),
        WatchEvent::Snapshot { .. }
    ));
    std::fs::remove_file(root.join("rank_3/llama3_1_8b_rank_3-20_2.ckpt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut removed, mut fallback, mut verdicts) = (false, false, 0);
    while Instant::now() < deadline && !(removed && fallback && verdicts > 0) {
        match h.events.recv_timeout(Duration::from_millis(200)) {
            Ok(WatchEvent::ShardRemoved {
                rank: Some(3),
                file,
                ..
            }) if file == "llama3_1_8b_rank_3-20_2.ckpt" => removed = true,
            Ok(WatchEvent::Verdict { .. }) => verdicts += 1,
            Ok(WatchEvent::Resolution { mindformers, .. }) => {
                fallback |=
                    mindformers["per_rank"][3]["resume_training"] == "llama3_1_8b_rank_3-15_2.ckpt"
            }
            _ => {}
        }
    }
    assert!(
        removed && fallback,
        "removed {removed}, fallback {fallback}"
    );
    assert!(verdicts > 0);
    h.stop();
}

/// Hitting the inotify watch limit switches to polling, says which sysctl to raise, and the
/// model keeps following the tree.
#[test]
fn watch_limit_falls_back_to_polling() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    let mut cfg = config(&root, Duration::from_millis(500), false);
    cfg.watch_limit = Some(3);
    let h = spawn(cfg);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reason = None;
    while reason.is_none() && Instant::now() < deadline {
        if let Ok(WatchEvent::Mode {
            mode: Mode::Poll { reason: r, .. },
            ..
        }) = h.events.recv_timeout(Duration::from_millis(100))
        {
            reason = Some(r);
        }
    }
    let reason = reason.expect("a mode event");
    assert!(reason.contains("fs.inotify.max_user_watches"), "{reason}");
    std::fs::write(root.join("rank_2/llama3_1_8b_rank_2-25_2.tmp"), b"x").unwrap();
    assert!(converged_within(&h, &root, Duration::from_millis(1500)).is_some());
    h.stop();
}
