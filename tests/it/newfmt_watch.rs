//! The watcher on a new-format writer replaying MindFormers' measured save protocol
//! (`mindformers-new-format.md` §5.2–§5.4: `.tmp` shards renamed, `common.json` and
//! `metadata.json` replaced into place, the tracker truncated and rewritten, rotation by
//! `rmtree`), ending with a job killed before its tracker write and one killed mid-save: the
//! model equals a fresh scan within one poll period — with inotify hints, and polling only —
//! and the answer is the one `resolve` gives on the finished tree.

use crate::watch::Live;
use ckptscope::writer::newfmt::{save, Fault, NewJob};
use ckptscope::Event;
use std::path::Path;
use std::time::Duration;

fn writer(root: &Path) {
    let job = NewJob {
        save_max: 3,
        ..NewJob::demo(8)
    };
    let mut launch = Vec::new();
    for it in (2..=24).step_by(2) {
        save(root, &job, it, Fault::None, &mut launch).unwrap();
    }
    save(root, &job, 26, Fault::BeforeTracker, &mut launch).unwrap();
    save(root, &job, 28, Fault::MidSave { rank: 5 }, &mut launch).unwrap();
}

fn convergence(poll_only: bool, poll: Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    std::fs::create_dir(&root).unwrap();
    let mut live = Live::start(&root, poll, poll_only);
    assert_eq!(
        matches!(live.mode, ckptscope::watch::Mode::Poll { .. }),
        poll_only,
        "{:?}",
        live.mode
    );
    let writer_root = root.clone();
    let w = std::thread::spawn(move || writer(&writer_root));
    let mut events: Vec<Event> = Vec::new();
    while !w.is_finished() {
        events.extend(live.pump(Duration::from_millis(20)));
    }
    w.join().unwrap();
    let (_, more) = live
        .converge(poll + Duration::from_secs(1))
        .unwrap_or_else(|| panic!("the model did not converge within one poll period ({poll:?}) + 1 s (poll only {poll_only})"));
    events.extend(more);
    let tracker_seen = events.iter().any(|e| {
        matches!(e, Event::ControlChanged { dir, file, .. } if dir.is_empty() && file == "latest_checkpointed_iteration.txt")
    });
    assert!(
        tracker_seen,
        "tracker changes are events: {:?}",
        events.iter().map(|e| e.human()).collect::<Vec<_>>()
    );
    // the live answer is resolve's on the finished tree
    let a = live.s.analysis().clone();
    let n = a.newfmt.as_ref().expect("read as the new format");
    let fresh = crate::common::session_with(&root, &Default::default())
        .analysis()
        .clone();
    assert_eq!(
        serde_json::to_value(&n.per_rank).unwrap(),
        serde_json::to_value(&fresh.newfmt.as_ref().unwrap().per_rank).unwrap()
    );
    let loads = serde_json::to_string(&n.per_rank[0]).unwrap();
    assert!(loads.contains("iteration_00000024"), "{loads}");
    let codes: Vec<&str> = n.warnings.iter().map(|w| w.code).collect();
    assert!(
        codes.contains(&"complete_after_tracker") && codes.contains(&"save_in_progress"),
        "{codes:?}"
    );
    // folders beyond save_max are gone: 20, 22, 24 kept by the last rotation, then 26 and 28
    let folders: Vec<&str> = n.iterations.iter().map(|i| i.folder.as_str()).collect();
    assert_eq!(
        folders,
        [
            "iteration_00000020",
            "iteration_00000022",
            "iteration_00000024",
            "iteration_00000026",
            "iteration_00000028"
        ]
    );
    live.h.stop();
}

#[test]
fn converges_on_a_new_format_writer_with_inotify_hints() {
    convergence(false, Duration::from_secs(2));
}

#[test]
fn converges_on_a_new_format_writer_polling_only() {
    convergence(true, Duration::from_millis(500));
}

/// What a watcher sees mid-save (§5.8): while a save is half written (rank 5's optimizer shard
/// still `.tmp`, the tracker not yet rewritten) the live answer stays on the tracker's folder
/// and the new one is "being written", never the safe pick; once the save completes, the
/// answer moves to it — in both watch modes, always equal to a fresh `resolve`.
#[test]
fn mid_save_the_answer_stays_on_the_tracker_folder() {
    for poll_only in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("checkpoint");
        std::fs::create_dir(&root).unwrap();
        let job = NewJob::demo(8);
        let mut launch = Vec::new();
        for it in [2, 4] {
            save(&root, &job, it, Fault::None, &mut launch).unwrap();
        }
        let poll = Duration::from_millis(500);
        let mut live = Live::start(&root, poll, poll_only);
        assert_eq!(
            matches!(live.mode, ckptscope::watch::Mode::Poll { .. }),
            poll_only,
            "{:?}",
            live.mode
        );
        let settle = |live: &mut Live| {
            assert!(
                live.converged_within(poll + Duration::from_secs(2))
                    .is_some(),
                "not converged (poll only {poll_only})"
            );
            let a = live.s.analysis().clone();
            let fresh = crate::common::session_with(&root, &Default::default())
                .analysis()
                .clone();
            let n = a.newfmt.expect("new format");
            assert_eq!(
                serde_json::to_value(&n.per_rank).unwrap(),
                serde_json::to_value(&fresh.newfmt.unwrap().per_rank).unwrap(),
                "the live answer is resolve's"
            );
            n
        };
        // save 6 half written: rank 5 dies inside its optimizer shard
        save(&root, &job, 6, Fault::MidSave { rank: 5 }, &mut launch).unwrap();
        let n = settle(&mut live);
        let loads = serde_json::to_string(&n.per_rank[0]).unwrap();
        assert!(loads.contains("iteration_00000004"), "{loads}");
        let it6 = n
            .iterations
            .iter()
            .find(|i| i.folder == "iteration_00000006")
            .unwrap();
        assert_eq!(it6.in_progress, 1, "{it6:?}");
        assert_eq!(
            n.safe.as_ref().map(|s| s.folder.as_str()),
            Some("iteration_00000004")
        );
        // the save done again, whole: the tracker names it
        save(&root, &job, 6, Fault::None, &mut launch).unwrap();
        let n = settle(&mut live);
        let loads = serde_json::to_string(&n.per_rank[0]).unwrap();
        assert!(loads.contains("iteration_00000006"), "{loads}");
        assert_eq!(
            n.safe.as_ref().map(|s| s.folder.as_str()),
            Some("iteration_00000006")
        );
        live.h.stop();
    }
}
