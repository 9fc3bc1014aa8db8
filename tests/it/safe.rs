//! The safe resume step: MindFormers picks a damaged shard, the safe pick is the newest step
//! intact on every rank, and the report says why and how to get there.

use crate::common;
use common::{copy_fixture, fixtures};
use serde_json::Value;
use std::process::Command;

fn resolve_json(root: &std::path::Path) -> (Option<i32>, Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["resolve", root.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    (o.status.code(), serde_json::from_slice(&o.stdout).unwrap())
}

#[test]
fn truncated_rank2_shard_moves_the_safe_pick_to_15_2() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture("tree-seed-run1", tmp.path());
    let victim = tmp
        .path()
        .join("checkpoint/rank_2/llama3_1_8b_rank_2-20_2.ckpt");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap();
    f.set_len(8_000).unwrap();
    let (code, v) = resolve_json(&tmp.path().join("checkpoint"));
    assert_eq!(
        code,
        Some(1),
        "MindFormers resolves without error, then rank 2 fails to load its pick"
    );
    let w = v["warnings"].as_array().unwrap();
    let damaged = w
        .iter()
        .find(|w| w["code"] == "resolved_file_damaged")
        .expect("a resolved_file_damaged warning");
    assert_eq!(damaged["ranks"], serde_json::json!([[2, 2]]));
    assert_eq!(
        v["mindformers"]["per_rank"][2]["resume_training"],
        "llama3_1_8b_rank_2-20_2.ckpt"
    );
    let safe = &v["safe"];
    assert_eq!(
        (
            safe["epoch"].as_u64(),
            safe["step"].as_u64(),
            safe["restart"].as_u64()
        ),
        (Some(15), Some(2), Some(0))
    );
    assert_eq!(safe["same_as_mindformers"], false);
    assert_eq!(
        safe["config"]["resume_training"],
        "llama3_1_8b_rank_0-15_2.ckpt"
    );
    assert_eq!(
        safe["config"]["load_checkpoint"],
        tmp.path().join("checkpoint").to_str().unwrap()
    );
    assert_eq!(
        safe["per_rank"][3],
        serde_json::json!({"rank": 3, "file": "llama3_1_8b_rank_3-15_2.ckpt"})
    );
    let reasons = safe["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    let r = reasons[0].as_str().unwrap();
    assert!(
        r.starts_with("rank 2: llama3_1_8b_rank_2-20_2.ckpt is truncated at byte 7,642 of 8,000"),
        "{r}"
    );
    assert!(
        r.contains("MindFormers would pick it and fail with 'Failed to read the checkpoint file"),
        "{r}"
    );
    assert_eq!(safe["data_skip"]["first_printed_step"], 32);
    let shards = v["shards"].as_array().unwrap();
    assert!(shards
        .iter()
        .any(|s| s["file"] == "llama3_1_8b_rank_2-20_2.ckpt" && s["verdict"] == "truncated"));
}

#[test]
fn async_tree_recommends_the_newer_complete_step() {
    let ft_async = crate::common::fixture_tree("tree-async");
    let (_, v) = resolve_json(&ft_async.root.clone());
    assert_eq!(
        v["mindformers"]["per_rank"][0]["resume_training"],
        "llama3_1_8b_rank_0-15_2.ckpt"
    );
    let safe = &v["safe"];
    assert_eq!(
        (safe["epoch"].as_u64(), safe["step"].as_u64()),
        (Some(20), Some(2))
    );
    assert_eq!(
        safe["config"]["resume_training"],
        "llama3_1_8b_rank_0-20_2.ckpt"
    );
    assert!(
        safe["reasons"][0].as_str().unwrap().contains("meta.json"),
        "{safe}"
    );
    assert_eq!(safe["data_skip"]["first_printed_step"], 42);
}

#[test]
fn intact_trees_agree_with_mindformers() {
    let fx = fixtures();
    for (tree, file) in [
        ("tree-seed-run1", "llama3_1_8b_rank_0-20_2.ckpt"),
        ("tree-seed", "llama3_1_8b_rank_0_1-30_2.ckpt"),
        ("tree-gbs-change", "llama3_1_8b_rank_0_1-20_2.ckpt"),
    ] {
        let (_, v) = resolve_json(&fx.join(tree).join("checkpoint"));
        assert_eq!(
            v["safe"]["same_as_mindformers"], true,
            "{tree}: {}",
            v["safe"]
        );
        assert_eq!(v["safe"]["config"]["resume_training"], file, "{tree}");
        assert!(v["safe"]["reasons"].as_array().unwrap().is_empty());
    }
}

#[test]
fn older_run_is_the_safe_pick_when_the_latest_run_is_broken() {
    let mut t = common::TestTree::new();
    let write = |t: &mut common::TestTree, rank: u64, name: &str, step: i64, resumed: bool| {
        let bytes = ckptscope::writer::ckpt::checkpoint_bytes(
            rank,
            1,
            &ckptscope::writer::ckpt::AppendEntries {
                epoch_num: step / 2,
                step_num: step,
                loss_scale: 1.0,
                global_batch_size: Some(8),
                resumed,
            },
        );
        t.file(&format!("rank_{rank}/{name}"), &bytes);
    };
    for r in 0..2 {
        write(&mut t, r, &format!("llama_rank_{r}-20_2.ckpt"), 40, false);
        write(&mut t, r, &format!("llama_rank_{r}_1-25_2.ckpt"), 50, true);
        t.meta(r, 25, 2, &format!("llama_rank_{r}_1-25_2.ckpt"));
    }
    std::fs::write(t.path("rank_1/llama_rank_1_1-25_2.ckpt"), b"").unwrap();
    let (code, v) = resolve_json(&t.root);
    assert_eq!(code, Some(1), "rank 1 fails to load its zero-byte pick");
    assert_eq!(
        v["mindformers"]["per_rank"][1]["resume_training"],
        "llama_rank_1_1-25_2.ckpt"
    );
    assert_eq!(
        v["safe"]["config"]["resume_training"],
        "llama_rank_0-20_2.ckpt"
    );
    assert!(
        v["safe"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("zero byte"),
        "{}",
        v["safe"]
    );
}

#[test]
fn no_intact_step_is_null_with_reasons() {
    let mut t = common::TestTree::new();
    t.seed(2);
    for r in 0..2 {
        for e in [10, 15, 20] {
            t.file(&format!("rank_{r}/llama_rank_{r}-{e}_2.ckpt"), b"x");
        }
    }
    let (code, v) = resolve_json(&t.root);
    assert_eq!(code, Some(1), "every rank would fail to load 20_2");
    assert!(v["safe"].is_null());
    assert_eq!(v["safe_passed_over"].as_array().unwrap().len(), 3);
}

/// `resume_training` naming an older file: the safe pick's reason says MindFormers loads what
/// it is told — not "by-mtime rule … typical of async_save", which the TUI used to show after
/// `r` set a file name.
#[test]
fn an_explicit_older_name_is_explained_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture("tree-seed-run1", tmp.path());
    let root = tmp.path().join("checkpoint");
    let o = Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args([
            "resolve",
            root.to_str().unwrap(),
            "--json",
            "--resume-training",
            "llama3_1_8b_rank_0-15_2.ckpt",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["mindformers"]["per_rank"][0]["resume_training"],
        "llama3_1_8b_rank_0-15_2.ckpt"
    );
    let reasons = v["safe"]["reasons"].to_string();
    assert!(
        reasons.contains("resume_training names an older file"),
        "{reasons}"
    );
    assert!(
        !reasons.contains("async_save") && !reasons.contains("mtime"),
        "{reasons}"
    );
}
