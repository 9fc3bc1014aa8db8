//! ckptscope never changes a tree it reads: names, sizes, mtimes (ns) and modes of every entry
//! are identical before and after running every command on it.

use crate::common;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, i64, i64, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let md = std::fs::symlink_metadata(&dir).unwrap();
        out.insert(
            dir.clone(),
            (md.size(), md.mtime(), md.mtime_nsec(), md.mode()),
        );
        if !md.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&dir).unwrap() {
            stack.push(e.unwrap().path());
        }
    }
    out
}

#[test]
fn no_command_changes_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    for tree in [
        "tree-seed",
        "tree-safetensors",
        "tree-async",
        "tree-gbs-change",
    ] {
        common::copy_fixture(tree, &tmp.path().join(tree));
    }
    // output_dir content that a by-meta resolution would touch in MindFormers
    std::fs::create_dir_all(tmp.path().join("tree-seed/resume_record")).unwrap();
    std::fs::write(
        tmp.path().join("tree-seed/health_ckpts.json"),
        "[{\"is_health\": 0}]",
    )
    .unwrap();
    let before = snapshot(tmp.path());
    let bin = env!("CARGO_BIN_EXE_ckptscope");
    let seed = tmp.path().join("tree-seed/checkpoint");
    let seed = seed.to_str().unwrap();
    let runs: Vec<Vec<String>> = vec![
        vec!["resolve".into(), seed.into()],
        vec!["resolve".into(), seed.into(), "--json".into()],
        vec![
            "resolve".into(),
            seed.into(),
            "--json".into(),
            "--health-monitor".into(),
        ],
        vec!["resolve".into(), seed.into(), "--by-last-timestamp".into()],
        vec![
            "resolve".into(),
            seed.into(),
            "--resume-training".into(),
            "llama3_1_8b_rank_0-20_2".into(),
        ],
        vec![
            "resolve".into(),
            tmp.path()
                .join("tree-safetensors/checkpoint")
                .to_string_lossy()
                .into(),
            "--format".into(),
            "safetensors".into(),
        ],
        vec![
            "resolve".into(),
            tmp.path()
                .join("tree-async/checkpoint")
                .to_string_lossy()
                .into(),
        ],
        vec![
            "resolve".into(),
            tmp.path()
                .join("tree-gbs-change/checkpoint")
                .to_string_lossy()
                .into(),
            "--global-batch-size".into(),
            "4".into(),
        ],
        vec![
            "resolve".into(),
            seed.into(),
            "--world-size".into(),
            "16".into(),
        ],
    ];
    for args in &runs {
        let o = Command::new(bin).args(args).output().unwrap();
        assert!(
            o.status.code().is_some_and(|c| c <= 1),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // watch (inotify and polling) runs a while on the tree, then is stopped
    for extra in [&[][..], &["--no-inotify", "--poll", "0.2"][..]] {
        let mut child = Command::new(bin)
            .args(["watch", seed, "--ndjson"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("\"event\":\"snapshot\""),
            "watch {extra:?} ran"
        );
    }
    // the demo writes only into its own folder
    let demo_tmp = tempfile::tempdir().unwrap();
    let demo_out = demo_tmp.path().join("demo-out");
    let o = Command::new(bin)
        .args(["demo", "--speed", "50", "--out", demo_out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(demo_out.join("checkpoint/rank_0/meta.json").is_file());
    assert_eq!(before, snapshot(tmp.path()));
}
