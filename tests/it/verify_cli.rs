//! `ckptscope verify`: verdicts for a tree, a rank folder and one file; exit codes; JSON;
//! manifests (checked, written only outside the tree); and the verifier pool's guarantees.

use crate::common;
use ckptscope::fsys::stat_of;
use ckptscope::verify::pool::{Job, Pool};
use common::{copy_fixture, fixtures};
use serde_json::Value;
use std::process::{Command, Output};

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn tree_rank_folder_and_file() {
    let fx = fixtures();
    let ft_seed = crate::common::fixture_tree("tree-seed");
    let tree = ft_seed.root.clone();
    let o = bin(&["verify", tree.to_str().unwrap(), "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["total"], 20);
    assert_eq!(v["summary"]["by_verdict"]["ok"], 20);
    let s = &v["shards"][0];
    for k in [
        "rank", "file", "size", "verdict", "detail", "append", "sha256",
    ] {
        assert!(s.get(k).is_some(), "shard key {k}");
    }
    for k in [
        "epoch_num",
        "step_num",
        "global_step",
        "loss_scale",
        "global_batch_size",
    ] {
        assert!(s["append"].get(k).is_some(), "append key {k}");
    }
    let o = bin(&[
        "verify",
        tree.join("rank_2").to_str().unwrap(),
        "--json",
        "--step",
        "15_2",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["total"], 1);
    assert_eq!(v["shards"][0]["file"], "llama3_1_8b_rank_2-15_2.ckpt");
    let o = bin(&[
        "verify",
        fx.join("files/damaged_garbage.ckpt").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("not_a_checkpoint"));
    assert_eq!(bin(&["verify", "/nonexistent/x"]).status.code(), Some(2));
    assert_eq!(
        bin(&["verify", tree.to_str().unwrap(), "--step", "bad"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn hash_checks_crc_and_manifests() {
    let fx = fixtures();
    let o = bin(&[
        "verify",
        fx.join("files/damaged_crc_bitflip_in_tensor_data.ckpt")
            .to_str()
            .unwrap(),
        "--hash",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("crc_mismatch"));
    // a manifest written outside the tree, then used inside a copy with one wrong line
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("tree");
    copy_fixture("tree-async", &copy);
    let root = copy.join("checkpoint");
    let inside = root.join("SHA256SUMS");
    let o = bin(&[
        "verify",
        root.to_str().unwrap(),
        "--write-manifest",
        inside.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "refuses to write inside the tree");
    assert!(String::from_utf8_lossy(&o.stderr).contains("inside the checkpoint tree"));
    assert!(!inside.exists());
    let outside = tmp.path().join("sums.txt");
    assert_eq!(
        bin(&[
            "verify",
            root.to_str().unwrap(),
            "--write-manifest",
            outside.to_str().unwrap()
        ])
        .status
        .code(),
        Some(0)
    );
    let sums = std::fs::read_to_string(&outside).unwrap();
    assert_eq!(sums.lines().count(), 6);
    assert!(sums.contains("  rank_0/llama3_1_8b_rank_0-10_2.ckpt"));
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(&outside)
        .current_dir(&root)
        .output();
    if let Ok(c) = check {
        assert!(
            c.status.success(),
            "sha256sum -c agrees: {}",
            String::from_utf8_lossy(&c.stdout)
        );
    }
    let bad = sums.replacen(&sums[..64], &"0".repeat(64), 1);
    std::fs::write(root.join("SHA256SUMS"), bad).unwrap();
    let o = bin(&["verify", root.to_str().unwrap(), "--hash", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["by_verdict"]["hash_mismatch"], 1, "{v:#}");
}

#[test]
fn tmp_files_are_in_progress_and_say_which() {
    let mut t = common::TestTree::new();
    t.seed(1);
    t.file("rank_0/llama_rank_0-25_2.tmp", b"partial");
    t.file("rank_0/llama_rank_0-10_2.tmp", b"old");
    // make the 10_2 tmp older than its final file
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(t.path("rank_0/llama_rank_0-10_2.tmp"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let o = bin(&["verify", &t.d(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let find = |f: &str| {
        v["shards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["file"] == f)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("llama_rank_0-10_2.tmp")["verdict"], "in_progress");
    assert!(find("llama_rank_0-10_2.tmp")["detail"]
        .as_str()
        .unwrap()
        .contains("older than the final file"));
    assert_eq!(find("llama_rank_0-25_2.tmp")["verdict"], "in_progress");
}

fn job(p: &std::path::Path, name: &str, priority: u32) -> Job {
    Job {
        dir: "d".into(),
        name: name.into(),
        path: p.to_path_buf(),
        stat: stat_of(&std::fs::metadata(p).unwrap()),
        deep: true,
        expected_sha256: None,
        priority,
    }
}

/// A valid 64 MiB checkpoint: its deep check (SHA-256 of every byte) keeps a worker busy for
/// long enough that jobs submitted meanwhile are all queued.
fn blocker(dir: &std::path::Path) -> std::path::PathBuf {
    use ckptscope::writer::ckpt::{record, AppendEntries, Tensor};
    let p = dir.join("big.ckpt");
    let t = Tensor {
        tag: "w".into(),
        dims: vec![16 << 20],
        tensor_type: "Float32",
        content: vec![7; 64 << 20],
    };
    let mut bytes = record(&t);
    let tail = AppendEntries {
        epoch_num: 1,
        step_num: 2,
        loss_scale: 1.0,
        global_batch_size: Some(8),
        resumed: false,
    };
    bytes.extend(tail.tensors().iter().flat_map(record));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn pool_runs_by_priority_supersedes_and_caches() {
    let ft_seed = crate::common::fixture_tree("tree-seed");
    let files: Vec<_> = std::fs::read_dir(ft_seed.root.join("rank_0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let big = blocker(tmp.path());
    let pool = Pool::new(1, std::sync::Arc::new(ckptscope::fsys::RealFs));
    pool.submit(job(&big, "blocker", 0));
    for (i, f) in files.iter().enumerate() {
        pool.submit(job(f, &format!("p{}", 10 - i), (10 - i) as u32));
    }
    let first = pool.results().recv().unwrap();
    assert_eq!(
        (first.file.as_str(), first.check.verdict),
        ("blocker", ckptscope::model::Verdict::Ok)
    );
    let names: Vec<String> = (0..files.len())
        .map(|_| pool.results().recv().unwrap().file)
        .collect();
    let prio = |n: &String| n[1..].parse::<u32>().unwrap();
    let mut sorted = names.clone();
    sorted.sort_by_key(prio);
    assert_eq!(names, sorted, "lower priority value first");
    // a job superseded while it waits produces no result (a second blocker, not the first:
    // the first one's result is cached and would free the worker at once)
    let sub = tmp.path().join("second");
    std::fs::create_dir(&sub).unwrap();
    let big = blocker(&sub);
    pool.submit(job(&big, "blocker", 0));
    let (done_before, _) = pool.progress();
    pool.submit(job(&files[0], "again", 5));
    pool.submit(job(&files[0], "again", 5));
    assert_eq!(pool.results().recv().unwrap().file, "blocker");
    let r = pool
        .results()
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap();
    assert_eq!(r.file, "again");
    assert!(
        pool.results()
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err(),
        "only the newest submission reports"
    );
    let (done, total) = pool.progress();
    assert_eq!((done, total), (done_before + 3, files.len() + 4));
}

#[test]
fn verification_order_starts_with_mindformers_pick_then_newest() {
    let ft_async = crate::common::fixture_tree("tree-async");
    let tree = ckptscope::scan::scan(
        &ckptscope::fsys::RealFs,
        ft_async.root.clone().to_str().unwrap(),
    );
    let d = crate::common::resolve_dir(&ft_async.root.clone());
    let p = ckptscope::verify::priorities(&tree, Some(&d.mindformers));
    let get = |dir: &str, f: &str| p.of(dir, f);
    assert_eq!(
        get("rank_1", "llama3_1_8b_rank_1-15_2.ckpt"),
        0,
        "MindFormers' pick first"
    );
    assert!(
        get("rank_1", "llama3_1_8b_rank_1-20_2.ckpt")
            < get("rank_1", "llama3_1_8b_rank_1-10_2.ckpt"),
        "then newest to oldest"
    );
}

/// A shard a manifest names that is gone from the tree is reported `missing` (exit 1), as
/// `sha256sum -c` fails on it — in text and in JSON.
#[test]
fn a_manifest_file_missing_from_the_tree_fails_verify() {
    let tmp = tempfile::tempdir().unwrap();
    crate::common::copy_fixture("tree-seed", tmp.path());
    let root = tmp.path().join("checkpoint");
    let r = root.to_str().unwrap();
    let sums = tmp.path().join("SUMS");
    let o = bin(&["verify", r, "--write-manifest", sums.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    // a line naming a shard through `..` names that shard
    let text = std::fs::read_to_string(&sums)
        .unwrap()
        .replace("  rank_1/", "  rank_1/../rank_1/");
    std::fs::write(root.join("SHA256SUMS"), text).unwrap();
    // narrowed to one step, or one shard: the manifest's other lines are not missing
    let one = root.join("rank_0/llama3_1_8b_rank_0-10_2.ckpt");
    for args in [
        vec!["verify", r, "--hash"],
        vec!["verify", r, "--hash", "--step", "10_2"],
        vec!["verify", one.to_str().unwrap(), "--hash"],
    ] {
        let o = bin(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    std::fs::remove_file(root.join("rank_2/llama3_1_8b_rank_2-15_2.ckpt")).unwrap();
    let o = bin(&["verify", r, "--hash"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("missing ×1: named in a manifest but not in the tree"),
        "{text}"
    );
    assert!(
        text.contains("rank_2/llama3_1_8b_rank_2-15_2.ckpt"),
        "{text}"
    );
    let o = bin(&["verify", r, "--hash", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["missing"][0]["path"],
        "rank_2/llama3_1_8b_rank_2-15_2.ckpt"
    );
    assert_eq!(v["missing"][0]["rank"], 2);
    assert_eq!(v["summary"]["missing"], 1);
}
