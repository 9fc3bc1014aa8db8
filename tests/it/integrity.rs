//! Never lie: verdicts that depend on context, and inputs ckptscope cannot use, reported as
//! what they are.

use crate::common;
use ckptscope::grid::cell::CellState;
use ckptscope::verify::ckpt::walk_detailed;
use ckptscope::writer::run::{run, Launch};
use ckptscope::Verdict;
use serde_json::Value;
use std::path::Path;

fn bin(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(args)
        .output()
        .unwrap()
}

/// Cut `path` at the start of its `global_batch_size` record (a record boundary: the file
/// still parses, with epoch_num, step_num and loss_scale).
fn cut_before_gbs(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let w = walk_detailed(std::io::Cursor::new(&bytes), bytes.len() as u64);
    let at = w
        .record_list
        .iter()
        .find(|r| r.tag == "global_batch_size")
        .expect("a global_batch_size record")
        .offset;
    let mut p = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
    std::fs::set_permissions(path, p).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(at)
        .unwrap();
}

/// A file cut right before `global_batch_size`, alone in its rank folder: the same run's files
/// on the other ranks show the entry belongs there, so it is `incomplete` — in `verify`, in
/// the grid, in `resolve`'s shards and for the safe pick alike.
#[test]
fn a_tail_cut_at_a_record_boundary_is_judged_by_the_run_across_ranks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    let rank2 = root.join("rank_2");
    for e in [10, 15] {
        std::fs::remove_file(rank2.join(format!("llama3_1_8b_rank_2-{e}_2.ckpt"))).unwrap();
    }
    let victim = rank2.join("llama3_1_8b_rank_2-20_2.ckpt");
    cut_before_gbs(&victim);
    let r = root.to_str().unwrap();

    let o = bin(&["verify", r, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let shard = v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["file"] == "llama3_1_8b_rank_2-20_2.ckpt")
        .unwrap();
    assert_eq!(shard["verdict"], "incomplete", "{shard}");
    assert!(shard["detail"]
        .as_str()
        .unwrap()
        .contains("global_batch_size"));
    assert_eq!(o.status.code(), Some(1), "a damaged shard");

    let o = bin(&["resolve", r, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["safe"], Value::Null, "rank 2 has nothing older");
    let why = v["safe_passed_over"][0].as_str().unwrap();
    assert!(
        why.starts_with("20_2: rank 2: llama3_1_8b_rank_2-20_2.ckpt is incomplete"),
        "{why}"
    );
    let shard = v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rank"] == 2 && s["file"] == "llama3_1_8b_rank_2-20_2.ckpt")
        .unwrap();
    assert_eq!(shard["verdict"], "incomplete");

    let mut s = common::session_with(&root, &Default::default());
    common::verify_all(&mut s);
    let g = s.grid();
    let col = g.columns.iter().position(|c| c.label() == "20_2").unwrap();
    assert_eq!(g.cell(2, col), CellState::Incomplete);
    assert_eq!(
        s.tree()
            .verdict("rank_2", "llama3_1_8b_rank_2-20_2.ckpt")
            .unwrap()
            .verdict,
        Verdict::Incomplete
    );
}

/// The same cut on rank 0, the first shard any resolver looks at: the answer must not depend
/// on which files were checked before (MindFormers' context file is rank 0's).
#[test]
fn a_tail_cut_on_rank_0_is_incomplete_before_anything_else_was_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    cut_before_gbs(&root.join("rank_0/llama3_1_8b_rank_0-20_2.ckpt"));
    let o = bin(&["resolve", root.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["safe"]["config"]["resume_training"], "llama3_1_8b_rank_0-15_2.ckpt",
        "{}",
        v["safe"]
    );
    assert_eq!(
        v["mindformers"]["per_rank"][0]["resume_training"], "llama3_1_8b_rank_0-20_2.ckpt",
        "MindFormers still picks it"
    );
}
