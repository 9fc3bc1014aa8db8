//! The scan tolerates races, loops, odd file types and unreadable folders: each is recorded
//! where it happened, nothing is opened that should not be, and the resolver sees what
//! MindFormers' `os.path` calls would see.

use crate::common;
use ckptscope::fsys::{FaultyFs, Fs, RealFs};
use ckptscope::model::{FileKind, FileRead, Listing, RootState};
use ckptscope::scan::scan;
use common::TestTree;

#[test]
fn a_file_vanishing_between_listing_and_stat_is_recorded_not_fatal() {
    let mut t = TestTree::new();
    t.seed(2);
    let gone = t.path("rank_1/llama_rank_1-20_2.ckpt");
    let fs = FaultyFs {
        vanish: vec![gone],
        ..Default::default()
    };
    let tree = scan(&fs, &t.d());
    let e = tree.dirs["rank_1"]
        .listing
        .find("llama_rank_1-20_2.ckpt")
        .unwrap();
    assert_eq!(e.lstat.as_ref().unwrap_err().errno, 2);
    assert!(!e.exists());
    // the other entries are intact
    assert!(tree.dirs["rank_1"]
        .listing
        .find("llama_rank_1-15_2.ckpt")
        .unwrap()
        .exists());
}

#[test]
fn symlink_loops_and_broken_links_are_entries_with_errors() {
    let mut t = TestTree::new();
    t.seed(2);
    std::os::unix::fs::symlink("loop_b", t.path("rank_0/loop_a.ckpt")).unwrap();
    std::os::unix::fs::symlink("loop_a.ckpt", t.path("rank_0/loop_b")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", t.path("rank_1/dangling.ckpt")).unwrap();
    std::os::unix::fs::symlink(".", t.path("rank_9")).unwrap(); // a rank "folder" that is the root itself
    let tree = scan(&RealFs, &t.d());
    let a = tree.dirs["rank_0"].listing.find("loop_a.ckpt").unwrap();
    assert_eq!(a.lstat.as_ref().unwrap().kind, FileKind::Symlink);
    assert_eq!(a.stat().unwrap_err().errno, 40, "ELOOP");
    let d = tree.dirs["rank_1"].listing.find("dangling.ckpt").unwrap();
    assert_eq!(d.stat().unwrap_err().errno, 2);
    assert!(
        tree.dirs.contains_key("rank_9"),
        "a symlinked folder is followed one level, not recursively"
    );
    // NO_META on this tree: getmtime of the broken link raises as in Python
    for r in 0..2 {
        t.rm(&format!("rank_{r}/meta.json"));
    }
    t.rm("rank_9");
    let r = t.resolve();
    common::assert_err(
        &r,
        &format!(
            "[Errno 40] Too many levels of symbolic links: '{}/rank_0/loop_a.ckpt'",
            t.d()
        ),
    );
}

#[test]
fn non_regular_files_are_recorded_and_never_opened() {
    let mut t = TestTree::new();
    t.seed(1);
    let fifo = t.path("rank_0/x.ckpt");
    if !std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let tree = scan(&RealFs, &t.d());
    assert_eq!(
        tree.dirs["rank_0"]
            .listing
            .find("x.ckpt")
            .unwrap()
            .stat()
            .unwrap()
            .kind,
        FileKind::Fifo
    );
    assert_eq!(
        RealFs.read_small(&fifo, ckptscope::scan::SMALL_FILE_LIMIT),
        FileRead::NotRegular(FileKind::Fifo)
    );
}

#[test]
fn unreadable_folder_is_recorded_per_path() {
    let mut t = TestTree::new();
    t.seed(3);
    let fs = FaultyFs {
        faults: vec![(t.path("rank_2"), 13)],
        ..Default::default()
    };
    let tree = scan(&fs, &t.d());
    assert!(matches!(&tree.dirs["rank_2"].listing, Listing::Error(e) if e.errno == 13));
    assert!(matches!(&tree.dirs["rank_1"].listing, Listing::Entries(e) if e.len() == 4));
}

#[test]
fn root_states() {
    let t = TestTree::new();
    assert_eq!(
        scan(&RealFs, &format!("{}/missing", t.d())).state,
        RootState::Missing
    );
    let f = t.path("file.ckpt");
    std::fs::write(&f, b"x").unwrap();
    assert!(matches!(
        scan(&RealFs, f.to_str().unwrap()).state,
        RootState::File(_)
    ));
    let fs = FaultyFs {
        faults: vec![(t.root.clone(), 13)],
        ..Default::default()
    };
    assert!(matches!(
        scan(&fs, &t.d()).state,
        RootState::Dir(Listing::Error(_))
    ));
}

#[test]
fn listing_keeps_readdir_order() {
    let mut t = TestTree::new();
    t.seed(1);
    let want: Vec<String> = std::fs::read_dir(t.path("rank_0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let tree = scan(&RealFs, &t.d());
    let got: Vec<String> = tree.dirs["rank_0"]
        .listing
        .entries()
        .iter()
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(got, want);
}

/// Verifier results enter the model as deltas and follow the files: a result for an older
/// version is ignored, a rescan that finds the file changed drops it.
#[test]
fn verdicts_are_deltas_that_follow_file_versions() {
    use ckptscope::model::Delta;
    use ckptscope::model::Verdict;
    use ckptscope::verify::pool::{Job, Pool};
    let mut t = TestTree::new();
    let bytes = ckptscope::writer::ckpt::checkpoint_bytes(
        0,
        1,
        &ckptscope::writer::ckpt::AppendEntries {
            epoch_num: 1,
            step_num: 2,
            loss_scale: 1.0,
            global_batch_size: Some(8),
            resumed: false,
        },
    );
    t.file("rank_0/llama_rank_0-1_2.ckpt", &bytes);
    let mut tree = scan(&RealFs, &t.d());
    let path = t.path("rank_0/llama_rank_0-1_2.ckpt");
    let stat = tree.dirs["rank_0"]
        .listing
        .find("llama_rank_0-1_2.ckpt")
        .unwrap()
        .stat()
        .unwrap()
        .clone();
    let pool = Pool::new(1, std::sync::Arc::new(ckptscope::fsys::RealFs));
    pool.submit(Job {
        dir: "rank_0".into(),
        name: "llama_rank_0-1_2.ckpt".into(),
        path: path.clone(),
        stat,
        deep: false,
        expected_sha256: None,
        priority: 0,
    });
    let result = pool.results().recv().unwrap();
    // the file changes on disk before the result is applied
    std::fs::write(&path, &bytes[..100]).unwrap();
    t.touch("rank_0/llama_rank_0-1_2.ckpt");
    let rescanned = ckptscope::scan::scan_dir(&RealFs, &t.path("rank_0"));
    let stale = ckptscope::Delta::Verdict(result.clone());
    tree.apply(Delta::Dir("rank_0".into(), Some(rescanned.into())));
    tree.apply(stale);
    assert!(
        tree.verdict("rank_0", "llama_rank_0-1_2.ckpt").is_none(),
        "a verdict for the old version is ignored"
    );
    // the result for the current version is kept, and dropped when the file changes again
    let stat = tree.dirs["rank_0"]
        .listing
        .find("llama_rank_0-1_2.ckpt")
        .unwrap()
        .stat()
        .unwrap()
        .clone();
    pool.submit(Job {
        dir: "rank_0".into(),
        name: "llama_rank_0-1_2.ckpt".into(),
        path,
        stat,
        deep: false,
        expected_sha256: None,
        priority: 0,
    });
    tree.apply(ckptscope::Delta::Verdict(pool.results().recv().unwrap()));
    assert_eq!(
        tree.verdict("rank_0", "llama_rank_0-1_2.ckpt")
            .unwrap()
            .verdict,
        Verdict::Truncated
    );
    t.rm("rank_0/llama_rank_0-1_2.ckpt");
    tree.apply(Delta::Dir(
        "rank_0".into(),
        Some(ckptscope::scan::scan_dir(&RealFs, &t.path("rank_0")).into()),
    ));
    assert!(tree.verdicts.is_empty());
}
