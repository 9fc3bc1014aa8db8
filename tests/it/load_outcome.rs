//! After the resolver: each rank loads what it resolved, and a missing or damaged file, a
//! missing folder or a folder with no file makes that rank raise. The contract's exit status
//! says "every rank would resume" only when none does — and `resolve` and `grid` give the same
//! status for the same tree.

use crate::common::{self, TestTree};
use serde_json::Value;
use std::process::{Command, Output};

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(args)
        .env_remove("RANK_SIZE")
        .env_remove("SHARED_PATHS")
        .env_remove("DEVICE_NUM_PER_NODE")
        .output()
        .expect("run ckptscope")
}

/// `resolve --json` (exit status, document) with `extra` flags; `grid` must exit the same.
fn resolve(t: &TestTree, extra: &[&str]) -> (Option<i32>, Value) {
    let d = t.d();
    let mut args = vec!["resolve", d.as_str(), "--json"];
    args.extend_from_slice(extra);
    let o = bin(&args);
    let mut g = vec!["grid", d.as_str()];
    g.extend_from_slice(extra);
    let grid = bin(&g);
    assert_eq!(
        grid.status.code(),
        o.status.code(),
        "grid and resolve agree: {}",
        String::from_utf8_lossy(&grid.stderr)
    );
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), v)
}

/// The grouped warning with `code`, or a panic listing the codes there are.
fn warning<'a>(v: &'a Value, code: &str) -> &'a Value {
    let ws = v["warnings"].as_array().expect("warnings");
    ws.iter().find(|w| w["code"] == code).unwrap_or_else(|| {
        panic!(
            "no {code} warning in {:?}",
            ws.iter().map(|w| &w["code"]).collect::<Vec<_>>()
        )
    })
}

#[test]
fn a_healthy_tree_resumes_with_exit_0() {
    let mut t = TestTree::new();
    t.seed(4);
    let (code, v) = resolve(&t, &[]);
    assert_eq!(code, Some(0));
    assert!(v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| !w["code"].as_str().unwrap().starts_with("resolved_file")));
}

/// `resume_training` naming a file no rank has: the resolver returns the name (the contract's
/// per_rank is unchanged) and every rank then raises FileNotFoundError (L2).
#[test]
fn a_named_file_that_does_not_exist_fails_every_rank() {
    let mut t = TestTree::new();
    t.seed(4);
    let (code, v) = resolve(&t, &["--resume-training", "llama_rank_0-99_2.ckpt"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        v["mindformers"]["per_rank"][3]["resume_training"],
        "llama_rank_3-99_2.ckpt"
    );
    let w = warning(&v, "resolved_file_missing");
    assert_eq!(w["count"], 4);
    assert_eq!(w["ranks"], serde_json::json!([[0, 3]]));
}

/// `True` (by last timestamp) on a rank folder without a checkpoint: L9 (TypeError).
#[test]
fn newest_by_mtime_in_an_empty_folder_fails_that_rank() {
    let mut t = TestTree::new();
    t.seed(4);
    for e in [10, 15, 20] {
        t.rm(&format!("rank_3/llama_rank_3-{e}_2.ckpt"));
    }
    let (code, v) = resolve(&t, &["--by-last-timestamp"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["mindformers"]["per_rank"][3]["resume_training"], true);
    let w = warning(&v, "no_file_to_load");
    assert_eq!(w["ranks"], serde_json::json!([[3, 3]]));
    assert!(w["message"].as_str().unwrap().contains("TypeError"), "{w}");
}

/// `True` where a rank's entry is a file, not a folder: M14 when it loads.
#[test]
fn newest_by_mtime_where_the_rank_is_not_a_folder_fails_that_rank() {
    let mut t = TestTree::new();
    t.seed(3);
    std::fs::remove_dir_all(t.path("rank_2")).unwrap();
    t.file("rank_2", b"not a folder");
    let (code, v) = resolve(&t, &["--by-last-timestamp", "--world-size", "3"]);
    assert_eq!(code, Some(1));
    let w = warning(&v, "rank_folder_missing");
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("NotADirectoryError"),
        "{w}"
    );
}

/// A resolved file that is damaged: zero bytes fails; a file cut between its append entries
/// loads silently wrong — both exit 1, and the text report's headline says so.
#[test]
fn a_damaged_pick_fails_or_misleads_and_the_headline_says_so() {
    let mut t = TestTree::new();
    t.seed(4);
    t.file("rank_1/llama_rank_1-20_2.ckpt", b"");
    let (code, v) = resolve(&t, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        warning(&v, "resolved_file_damaged")["ranks"],
        serde_json::json!([[1, 1]])
    );
    let o = bin(&["resolve", &t.d()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("then: 1 rank (1) would fail when loading what it picked"),
        "{text}"
    );
    // cut just before the last append entry: parses, step counter restored as 0
    let whole = common::valid_shard(20);
    let len = whole.len() as u64;
    let walk = ckptscope::verify::ckpt::walk_detailed(std::io::Cursor::new(&whole), len);
    let cut = walk
        .record_list
        .iter()
        .find(|r| r.tag == "step_num")
        .expect("a step_num record")
        .offset;
    t.file("rank_1/llama_rank_1-20_2.ckpt", &whole[..cut as usize]);
    let (code, v) = resolve(&t, &[]);
    let w = warning(&v, "resolved_file_damaged");
    assert_eq!(code, Some(1), "{w}");
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("silently restart the step counter"),
        "{w}"
    );
    let o = bin(&["resolve", &t.d()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("would load a damaged file silently"),
        "{text}"
    );
}

/// A shard that is a dangling symlink or a link loop is `unreadable` in every view: `verify`
/// says so, and the grid shows `!`, not "present, not verified".
#[test]
fn dangling_and_looping_links_are_unreadable_everywhere() {
    let mut t = TestTree::new();
    t.seed(3);
    std::os::unix::fs::symlink("nothing", t.path("rank_1/llama_rank_1-25_2.ckpt")).unwrap();
    std::os::unix::fs::symlink(
        "llama_rank_2-25_2.ckpt",
        t.path("rank_2/llama_rank_2-25_2.ckpt"),
    )
    .unwrap();
    let v = bin(&["verify", &t.d()]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(text.contains("unreadable ×2 on ranks 1–2"), "{text}");
    let g = bin(&["grid", &t.d()]);
    let grid = String::from_utf8_lossy(&g.stdout);
    for r in [1, 2] {
        let row = grid
            .lines()
            .find(|l| l.starts_with(&format!("rank {r} ")))
            .unwrap();
        assert!(row.contains('!'), "{grid}");
    }
    assert!(!grid.contains("not verified"), "{grid}");
}

/// When ckptscope cannot tell what MindFormers does (a FIFO as rank 0's meta.json), the safe
/// pick says that — not "MindFormers does not resume".
#[test]
fn the_safe_pick_does_not_guess_what_mindformers_does() {
    let mut t = TestTree::new();
    t.seed(2);
    std::fs::remove_file(t.path("rank_0/meta.json")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(t.path("rank_0/meta.json"))
        .status()
        .is_ok_and(|s| s.success()));
    let o = bin(&["resolve", &t.d(), "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let reasons = v["safe"]["reasons"]
        .as_array()
        .expect("a safe pick with reasons");
    let r = reasons[0].as_str().unwrap();
    assert!(
        r.starts_with("ckptscope cannot tell what MindFormers does"),
        "{r}"
    );
}

/// A pick cut just before `global_batch_size` keeps the step counter: the consequence named is
/// the ignored batch-size change, not a restart at step 0.
#[test]
fn a_pick_cut_before_the_batch_size_names_the_right_consequence() {
    let mut t = TestTree::new();
    t.seed(4);
    let whole = common::valid_shard(20);
    let len = whole.len() as u64;
    let walk = ckptscope::verify::ckpt::walk_detailed(std::io::Cursor::new(&whole), len);
    let cut = walk
        .record_list
        .iter()
        .find(|r| r.tag == "global_batch_size")
        .expect("a global_batch_size record")
        .offset;
    t.file("rank_1/llama_rank_1-20_2.ckpt", &whole[..cut as usize]);
    let (code, v) = resolve(&t, &[]);
    assert_eq!(code, Some(1));
    let w = warning(&v, "resolved_file_damaged");
    let m = w["message"].as_str().unwrap();
    assert!(m.contains("ignore a batch-size change"), "{m}");
    assert!(!m.contains("restart the step counter"), "{m}");
}

/// The folder one level too high (no rank folders, no world size) is no answer at all: exit 2
/// with the likely fix, from `resolve` and `grid` alike — not "nothing: world size 0", exit 0.
#[test]
fn the_folder_above_the_checkpoint_is_a_usage_error_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_fixture("tree-seed", tmp.path());
    let above = tmp.path().to_str().unwrap();
    for cmd in ["resolve", "grid"] {
        let o = bin(&[cmd, above]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("holds no rank_* folder"), "{cmd}: {err}");
        assert!(
            err.contains(&format!("did you mean {above}/checkpoint?")),
            "{cmd}: {err}"
        );
    }
}

/// A reader that stops early (`| head`) does not turn a failing answer into exit 0.
#[test]
fn a_closed_pipe_keeps_the_exit_status() {
    let mut t = TestTree::new();
    t.seed(2);
    t.file("rank_1/llama_rank_1-20_2.ckpt", b"");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["resolve", &t.d(), "--json", "--all"])
        .env_remove("RANK_SIZE")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

/// `load_checkpoint` as one file: every rank loads that file, so a damaged one is exit 1 with
/// the warning, an intact one exit 0; the grid says it shows folders.
#[test]
fn a_single_file_is_checked_like_a_pick() {
    let files = common::fixtures().join("files");
    for (name, code) in [
        ("valid.ckpt", 0),
        ("damaged_garbage.ckpt", 1),
        ("damaged_zero_bytes.ckpt", 1),
    ] {
        let f = files.join(name);
        let o = bin(&["resolve", f.to_str().unwrap(), "--json"]);
        assert_eq!(o.status.code(), Some(code), "{name}");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        if code == 1 {
            assert_eq!(warning(&v, "resolved_file_damaged")["count"], 1, "{name}");
            assert_eq!(v["outcome"]["status"], "fails");
        }
    }
    let o = bin(&["grid", files.join("valid.ckpt").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is a single file"));
}

/// A big job's resolved files are checked as a batch on all cores before the load prediction
/// reads them (from 64 unchecked shards on): the answer is the one the one-by-one checks give —
/// every damaged pick named, every checked shard listed once, the same whatever the order the
/// checks finished in.
#[test]
fn a_batch_of_resolved_files_checked_at_once_gives_the_same_answer() {
    let mut t = TestTree::new();
    t.seed(96);
    t.file("rank_7/llama_rank_7-20_2.ckpt", b"");
    t.file(
        "rank_70/llama_rank_70-20_2.ckpt",
        &common::valid_shard(20)[..100],
    );
    let mut first: Option<Value> = None;
    for _ in 0..3 {
        let (code, v) = resolve(&t, &[]);
        assert_eq!(code, Some(1));
        assert_eq!(
            warning(&v, "resolved_file_damaged")["ranks"],
            serde_json::json!([[7, 7], [70, 70]])
        );
        let resolved: Vec<&Value> = v["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .filter(|s| s["file"].as_str().unwrap().contains("-20_2"))
            .collect();
        assert_eq!(resolved.len(), 96, "each resolved file checked once");
        match &first {
            None => first = Some(v),
            Some(f) => assert_eq!(f, &v, "the same answer every time"),
        }
    }
    // the batch is read on all cores only where there are two: this machine must have them,
    // or the test would not be about the batch
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(cores >= 2, "{cores} core(s): the batch path needs two");
    // the same answer as one by one: a session whose shards were all verified first checks
    // none itself
    let root = std::path::PathBuf::from(t.d());
    let batch = common::resolve_dir(&root);
    let mut s = common::session_with(&root, &Default::default());
    common::verify_all(&mut s);
    let one_by_one = s.analysis().clone();
    let doc =
        |a: &ckptscope::Analysis| serde_json::json!([a.mindformers, a.load, a.safe, a.warnings]);
    assert_eq!(doc(&batch), doc(&one_by_one));
}
