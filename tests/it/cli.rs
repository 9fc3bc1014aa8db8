//! The `ckptscope` binary: the contract's flags, JSON keys and exit codes, and clear messages
//! (path + cause) for inputs it cannot use.

use crate::common;
use ckptscope::cli::{resolve_cmd, Cli, Command};
use ckptscope::fsys::FaultyFs;
use clap::Parser;
use common::TestTree;
use serde_json::Value;
use std::process::{Command as Proc, Output};

fn bin(args: &[&str]) -> Output {
    Proc::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(args)
        .env_remove("RANK_SIZE")
        .env_remove("SHARED_PATHS")
        .env_remove("DEVICE_NUM_PER_NODE")
        .output()
        .expect("run ckptscope")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn json_has_the_contract_keys() {
    let mut t = TestTree::new();
    t.seed(4).rm("rank_3/llama_rank_3-20_2.ckpt");
    let o = bin(&["resolve", &t.d(), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v = json(&o);
    assert_eq!(v["load_checkpoint"], t.d());
    assert_eq!(v["layout"], "mindformers-legacy");
    assert_eq!(v["world_size"], 4);
    let pr = v["mindformers"]["per_rank"].as_array().unwrap();
    assert_eq!(pr.len(), 4);
    assert_eq!(
        pr[3],
        serde_json::json!({"rank": 3, "resume_training": "llama_rank_3-15_2.ckpt"})
    );
    assert!(v["mindformers"]["record"]
        .as_str()
        .unwrap()
        .ends_with("llama_rank_0-15_2.ckpt\n"));
    for k in [
        "scale",
        "initial_step",
        "initial_epoch",
        "skip_batches",
        "first_printed_step",
    ] {
        assert!(v["data_skip"].get(k).is_some(), "data_skip.{k}");
    }
    assert!(v["warnings"].is_array());
}

#[test]
fn errors_exit_1_with_type_and_first_line() {
    let mut t = TestTree::new();
    t.seed(4).file("rank_notes.txt", b"x");
    let o = bin(&["resolve", &t.d(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    let e = &v["mindformers"]["per_rank"][0]["error"];
    assert_eq!(e["type"], "ValueError");
    assert_eq!(
        e["message"],
        format!(
            "Get resume-able checkpoint failed, due to Error: {}/rank_4 is not found!",
            t.d()
        )
    );
}

#[test]
fn flags_and_env_follow_the_contract() {
    let mut t = TestTree::new();
    t.seed(12);
    let d = t.d();
    // 12 ranks on one "node" of 8: not shared → newest by mtime
    let o = bin(&["resolve", &d, "--json"]);
    assert_eq!(
        json(&o)["mindformers"]["per_rank"][11]["resume_training"],
        true
    );
    // SHARED_PATHS from the environment, overridden by the flag
    let o = Proc::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["resolve", &d, "--json"])
        .env("SHARED_PATHS", &d)
        .output()
        .unwrap();
    assert_eq!(
        json(&o)["mindformers"]["per_rank"][11]["resume_training"],
        "llama_rank_11-20_2.ckpt"
    );
    let o = bin(&["resolve", &d, "--json", "--device-num-per-node", "16"]);
    assert_eq!(
        json(&o)["mindformers"]["per_rank"][11]["resume_training"],
        "llama_rank_11-20_2.ckpt"
    );
    let o = Proc::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["resolve", &d, "--json", "--world-size", "2"])
        .env("RANK_SIZE", "12")
        .output()
        .unwrap();
    assert_eq!(json(&o)["world_size"], 2);
    let o = bin(&[
        "resolve",
        &d,
        "--json",
        "--resume-training",
        "llama_rank_0-10_2",
    ]);
    assert_eq!(
        json(&o)["mindformers"]["per_rank"][5]["resume_training"],
        "llama_rank_5-10_2.ckpt"
    );
    let o = bin(&["resolve", &d, "--json", "--resume-training", "false"]);
    assert_eq!(
        json(&o)["mindformers"]["per_rank"][0]["resume_training"],
        false
    );
}

#[test]
fn data_skip_flags() {
    let mut t = TestTree::new();
    t.seed(2);
    let d = t.d();
    // the seed tree's files are placeholders: the stored values are unknown, say so with nulls
    let v = json(&bin(&["resolve", &d, "--json"]));
    assert!(
        v["data_skip"]["first_printed_step"].is_number()
            || v["data_skip"]["first_printed_step"].is_null()
    );
    let ft_seed_run1 = common::fixture_tree("tree-seed-run1");
    let root = ft_seed_run1.root.clone();
    let r = root.to_str().unwrap();
    let v = json(&bin(&["resolve", r, "--json"]));
    assert_eq!(
        v["data_skip"],
        serde_json::json!({"scale": 1.0, "initial_step": 40, "initial_epoch": 20, "skip_batches": 40, "first_printed_step": 42})
    );
    let v = json(&bin(&["resolve", r, "--json", "--global-batch-size", "16"]));
    assert_eq!(
        v["data_skip"],
        serde_json::json!({"scale": 0.5, "initial_step": 20, "initial_epoch": 10, "skip_batches": 20, "first_printed_step": 22})
    );
    let v = json(&bin(&["resolve", r, "--json", "--ignore-data-skip"]));
    assert_eq!(v["data_skip"]["skip_batches"], 0);
    assert_eq!(v["data_skip"]["first_printed_step"], 42);
    let v = json(&bin(&["resolve", r, "--json", "--data-skip-steps", "2"]));
    assert_eq!(v["data_skip"]["skip_batches"], 2);
}

#[test]
fn yaml_config_is_read_and_flags_win() {
    let ft_seed_run1 = common::fixture_tree("tree-seed-run1");
    let root = ft_seed_run1.root.clone();
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("run.yaml");
    std::fs::write(
        &yaml,
        format!(
            "load_checkpoint: '{}'\nresume_training: True\nrunner_config:\n  batch_size: 2\n  sink_mode: True\n  sink_size: 2\nparallel:\n  parallel_mode: 1\nparallel_config:\n  data_parallel: 4\n  pipeline_stage: 1\ncallbacks:\n  - type: CheckpointMonitor\n    prefix: llama3_1_8b\n",
            root.display()
        ),
    )
    .unwrap();
    let r = root.to_str().unwrap();
    let y = yaml.to_str().unwrap();
    let v = json(&bin(&["resolve", r, "--json", "--config", y]));
    // global batch size 2 × 4 = 8 = stored: unchanged
    assert_eq!(v["data_skip"]["first_printed_step"], 42);
    let v = json(&bin(&[
        "resolve",
        r,
        "--json",
        "--config",
        y,
        "--global-batch-size",
        "16",
    ]));
    assert_eq!(v["data_skip"]["first_printed_step"], 22);
    std::fs::write(&yaml, "resume_training: 1\n").unwrap();
    let o = bin(&["resolve", r, "--json", "--config", y]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        json(&o)["mindformers"]["per_rank"][0]["error"]["message"],
        "resume_training must be bool or str, but get 1"
    );
    let o = bin(&["resolve", r, "--config", "/nonexistent/run.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/run.yaml"));
}

#[test]
fn missing_root_is_exit_2_with_path_and_cause() {
    let t = TestTree::new();
    let missing = format!("{}/nope", t.d());
    let o = bin(&["resolve", &missing]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&missing) && err.contains("no such file or directory"),
        "{err}"
    );
}

#[test]
fn root_that_is_a_file_loads_that_file_everywhere() {
    let mut t = TestTree::new();
    t.file("weights.ckpt", &common::valid_shard(1));
    let f = t.path("weights.ckpt");
    let o = bin(&[
        "resolve",
        f.to_str().unwrap(),
        "--json",
        "--world-size",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v = json(&o);
    assert_eq!(v["mindformers"]["per_rank"][1]["resume_training"], true);
    assert_eq!(v["mindformers"]["branch"]["kind"], "single_file");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(bin(&["resolve"]).status.code(), Some(2));
    assert_eq!(
        bin(&["resolve", ".", "--format", "pt"]).status.code(),
        Some(2)
    );
    assert_eq!(
        bin(&["resolve", ".", "--world-size", "x"]).status.code(),
        Some(2)
    );
}

#[test]
fn non_utf8_names_are_named_in_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let mut t = TestTree::new();
    t.seed(2);
    let odd = t
        .path("rank_1")
        .join(std::ffi::OsStr::from_bytes(b"notes-\xff.txt"));
    std::fs::write(&odd, b"x").unwrap();
    let o = bin(&["resolve", &t.d(), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v = json(&o);
    let w: Vec<&Value> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "non_utf8_name")
        .collect();
    assert_eq!(w.len(), 1, "{v:#}");
    assert!(w[0]["message"].as_str().unwrap().contains("rank_1/notes-"));
    // A candidate-looking non-UTF-8 name fails MindFormers' epoch/step regex, as in Python.
    std::fs::write(
        t.path("rank_1")
            .join(std::ffi::OsStr::from_bytes(b"llama_rank_1-\xff_2.ckpt")),
        b"x",
    )
    .unwrap();
    let o = bin(&["resolve", &t.d(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let msg = json(&o)["mindformers"]["per_rank"][0]["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("Can't match epoch and step from checkpoint file: llama_rank_1-"),
        "{msg}"
    );
}

/// An unreadable rank folder, through the filesystem seam (root cannot make one with chmod).
#[test]
fn unreadable_rank_folder_is_exit_2_with_path_and_cause() {
    let mut t = TestTree::new();
    t.seed(2);
    let Some(Command::Resolve(args)) = Cli::parse_from(["ckptscope", "resolve", &t.d()]).command
    else {
        unreachable!()
    };
    let fs = FaultyFs {
        faults: vec![(t.path("rank_1"), 13)],
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let env = ckptscope::Environment::with(&[], t.tmp.path());
    let code = resolve_cmd(&args, std::sync::Arc::new(fs), &env, &mut out, &mut err);
    assert_eq!(code, 2);
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains(&format!("{}/rank_1", t.d())) && err.contains("Permission denied"),
        "{err}"
    );
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains(&format!("[Errno 13] Permission denied: '{}/rank_1'", t.d())),
        "{out}"
    );
    // the safe pick says why it passed a step over: the folder could not be read, not that a
    // file is missing from it
    assert!(
        out.contains("rank 1: rank_1/ cannot be listed (Permission denied)"),
        "{out}"
    );
    assert!(!out.contains("rank 1: llama"), "{out}");
    // the JSON says what the exit status says
    let Some(Command::Resolve(args)) =
        Cli::parse_from(["ckptscope", "resolve", &t.d(), "--json"]).command
    else {
        unreachable!()
    };
    let fs = FaultyFs {
        faults: vec![(t.path("rank_1"), 13)],
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = resolve_cmd(&args, std::sync::Arc::new(fs), &env, &mut out, &mut err);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["outcome"]["status"], "unknown", "{v}");
}

/// The same with a real `chmod`, where the OS enforces it (not as root).
#[test]
fn unreadable_rank_folder_for_real_when_not_root() {
    use std::os::unix::fs::PermissionsExt;
    let mut t = TestTree::new();
    t.seed(2);
    std::fs::set_permissions(t.path("rank_1"), std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(t.path("rank_1")).is_ok() {
        eprintln!("SKIPPED: running as root, chmod 000 does not stop reading; the FaultyFs test covers this path");
        std::fs::set_permissions(t.path("rank_1"), std::fs::Permissions::from_mode(0o750)).unwrap();
        return;
    }
    let o = bin(&["resolve", &t.d()]);
    std::fs::set_permissions(t.path("rank_1"), std::fs::Permissions::from_mode(0o750)).unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rank_1"));
}

#[test]
fn human_report_names_the_decision() {
    let ft_seed_run1 = common::fixture_tree("tree-seed-run1");
    let o = bin(&["resolve", ft_seed_run1.root.clone().to_str().unwrap()]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("resume from llama3_1_8b_rank_0-20_2.ckpt"),
        "{s}"
    );
    assert!(s.contains("first printed step: 42"), "{s}");
}

#[test]
fn hazard_warnings_name_the_files() {
    let mut t = TestTree::new();
    t.seed(2);
    for r in 0..2 {
        t.file(&format!("rank_{r}/llama_rank_{r}_1-25_3.ckpt"), b"x");
        t.file(&format!("rank_{r}/llama_rank_{r}_1-26_3.ckpt"), b"x");
        t.meta(r, 25, 3, &format!("llama_rank_{r}_1-25_3.ckpt"));
    }
    t.file("rank_1/llama_rank_1-30_2_breakpoint.ckpt", b"x")
        .file("rank_0/llama_rank_0_1-27_3.tmp", b"")
        .file("stray.ckpt", b"x");
    t.file("rank_0/llama_rank_0-5_2.ckpt", b"");
    let v = json(&bin(&["resolve", &t.d(), "--json"]));
    let codes: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    for want in [
        "sink_size_changed",
        "breakpoint_file",
        "save_in_progress",
        "root_ckpt_hijacks_weights",
        "zero_byte_shard",
        "meta_lags_files",
    ] {
        assert!(codes.contains(&want), "{want} missing from {codes:?}");
    }
}

/// `ckptscope DIR` prints the report when stdout is not a terminal (here: a pipe).
#[test]
fn bare_dir_without_a_terminal_prints_the_report() {
    let ft_seed_run1 = common::fixture_tree("tree-seed-run1");
    let o = bin(&[ft_seed_run1.root.clone().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("MindFormers 2.1.0 would: resume from llama3_1_8b_rank_0-20_2.ckpt"),
        "{s}"
    );
    assert_eq!(
        bin(&[]).status.code(),
        Some(2),
        "no folder and no command is a usage error"
    );
}

/// A meta.json whose integer has more than 4,300 digits is skipped, as CPython 3.11's
/// `json.load` raises ValueError on it (the real resolver, run on this tree, resumes every
/// rank from 20_2 from the other metas).
#[test]
fn a_meta_with_a_5000_digit_integer_is_skipped_like_python() {
    let mut t = TestTree::new();
    t.seed(4);
    t.meta_raw(
        1,
        &format!(
            "{{\"last_epoch\": -{}, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_1-20_2.ckpt\"}}",
            "1".repeat(4400)
        ),
    );
    let o = bin(&["resolve", &t.d(), "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(
        v["mindformers"]["per_rank"][3]["resume_training"],
        "llama_rank_3-20_2.ckpt"
    );
    let text = String::from_utf8_lossy(&bin(&["resolve", &t.d()]).stdout).into_owned();
    assert!(
        text.contains("failed due to: Exceeds the limit (4300 digits)"),
        "{text}"
    );
}

/// `grid --ascii` prints no symbol of ambiguous width (CJK-locale terminals draw them wide).
#[test]
fn grid_ascii_prints_ascii_only() {
    let mut t = TestTree::new();
    t.seed(4).rm("rank_3/llama_rank_3-20_2.ckpt");
    let o = bin(&["grid", "--ascii", &t.d()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.is_ascii(), "{out}");
    assert!(out.contains("rank 3") && out.contains('.'), "{out}");
    let plain = bin(&["grid", &t.d()]);
    assert!(String::from_utf8_lossy(&plain.stdout).contains('·'));
}

/// A folder of many checkpoints keeps the report short: the newest complete candidates (the
/// one MindFormers takes is the last) and how many older ones `--all` would list.
#[test]
fn the_candidate_list_shows_the_newest_unless_all() {
    let tmp = tempfile::tempdir().unwrap();
    for r in 0..2 {
        let dir = tmp.path().join(format!("rank_{r}"));
        std::fs::create_dir_all(&dir).unwrap();
        for e in 1..=30 {
            std::fs::write(
                dir.join(format!("m_rank_{r}-{e}_2.ckpt")),
                common::valid_shard(e),
            )
            .unwrap();
        }
        let meta = format!(
            r#"{{"last_epoch": 30, "last_step": 2, "last_ckpt_file": "m_rank_{r}-30_2.ckpt"}}"#
        );
        std::fs::write(dir.join("meta.json"), meta).unwrap();
    }
    let root = tmp.path().to_str().unwrap();
    let listed = |out: &str| -> Vec<String> {
        out.lines()
            .skip_while(|l| !l.starts_with("candidates complete"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(str::to_owned)
            .collect()
    };
    let (code, out, err) = common::run_bin(&["resolve", root, "--world-size", "2"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let short = listed(&out);
    assert_eq!(short[0], "  … 25 older (--all lists them)", "{out}");
    assert_eq!(short.len(), 6, "{out}");
    assert!(short[5].ends_with("rank_0/m_rank_0-30_2.ckpt"), "{out}");
    assert!(short[1].ends_with("rank_0/m_rank_0-26_2.ckpt"), "{out}");
    let (_, all, _) = common::run_bin(&["resolve", root, "--world-size", "2", "--all"]);
    let full = listed(&all);
    assert_eq!(full.len(), 30, "{all}");
    assert!(full[0].ends_with("rank_0/m_rank_0-1_2.ckpt"), "{all}");
}
