//! `resolve --json` on every shared new-format tree in the oracle's four modes, end to end
//! (job context, scan, session, report): per rank the folder, step and epoch — or the stage,
//! type and message — that MindFormers' real code gave (`MANIFEST.json`), and on the tree
//! with a truncated shard the per-rank weights error the real resumed launch showed (§9).

use serde_json::Value;
use std::path::Path;

use crate::common::run_bin as run;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/mindformers-new")
}

/// The flags of an oracle mode.
fn mode_flags(mode: &str) -> &'static [&'static str] {
    match mode {
        "default" => &[],
        "no_load_optim" => &["--no-load-optim"],
        "health" => &["--health-monitor"],
        "load_ckpt_format_ckpt" => &["--format", "ckpt"],
        other => panic!("unknown oracle mode {other}"),
    }
}

/// What the real loader says a rank hits on `tree` (the trees with a damaged shard the
/// stages before loading do not see): `(rank, message prefix)`.
fn loader_failure(tree: &str) -> Option<(u64, String)> {
    (tree == "tree-truncated-shard").then(|| {
        (
            1,
            "Loaded nothing from '<tree>/checkpoint/iteration_00000010/llama-model-0000001-0000002.safetensors'. 'metadata.json' maps ".to_owned(),
        )
    })
}

#[test]
fn resolve_json_agrees_with_mindformers_on_every_tree_in_four_modes() {
    let dir = fixtures();
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let mut checked = 0;
    for (name, tree) in m["trees"].as_object().unwrap() {
        let base = dir.join(name);
        assert!(base.is_dir(), "fixture missing: {}", base.display());
        let root = base.join("checkpoint");
        let prefix = base.to_str().unwrap();
        for (mode, o) in tree["oracle"].as_object().unwrap() {
            let what = format!("{name} / {mode}");
            let mut args = vec!["resolve", root.to_str().unwrap(), "--json"];
            args.extend(mode_flags(mode));
            let (code, out, err) = run(&args);
            let doc: Value =
                serde_json::from_str(&out).unwrap_or_else(|e| panic!("{what}: {e}: {out}{err}"));
            assert_eq!(doc["layout"], "mindformers-new", "{what}");
            let per_rank = doc["mindformers"]["per_rank"].as_array().unwrap();
            let ranks = o["ranks"].as_array().unwrap().len();
            assert_eq!(per_rank.len(), ranks, "{what}: {out}");
            let want = &o["outcome"];
            let shown = |v: &Value| v.as_str().map(|s| s.replace(prefix, "<tree>"));
            let mut fails = false;
            for (r, got) in per_rank.iter().enumerate() {
                let loader = loader_failure(name)
                    .filter(|(lr, _)| *lr == r as u64 && want["error"].is_null());
                if let Some((_, msg)) = loader {
                    assert_eq!(got["error"]["stage"], "weights", "{what} rank {r}: {got}");
                    assert_eq!(got["error"]["type"], "ValueError", "{what} rank {r}");
                    let m = shown(&got["error"]["message"]).unwrap();
                    assert!(m.starts_with(&msg), "{what} rank {r}: {m}");
                    fails = true;
                    continue;
                }
                match &want["error"] {
                    Value::Null => {
                        assert_eq!(
                            shown(&got["load_path"]),
                            want["load_path_after_context"]
                                .as_str()
                                .filter(|s| !s.is_empty())
                                .map(str::to_owned),
                            "{what} rank {r}: {got}"
                        );
                        assert_eq!(got["initial_step"], want["initial_step"], "{what} rank {r}");
                        assert_eq!(
                            got["initial_epoch"], want["initial_epoch"],
                            "{what} rank {r}"
                        );
                        assert_eq!(
                            doc["data_skip"]["skip_batches"], want["dataset_set_init_step"],
                            "{what}"
                        );
                    }
                    e => {
                        fails = true;
                        assert_eq!(got["error"]["stage"], e["stage"], "{what} rank {r}: {got}");
                        assert_eq!(got["error"]["type"], e["type"], "{what} rank {r}: {got}");
                        let m = shown(&got["error"]["message"]).unwrap();
                        let first = e["message"].as_str().unwrap().lines().next().unwrap();
                        assert_eq!(m, first, "{what} rank {r}");
                    }
                }
            }
            assert_eq!(code, Some(if fails { 1 } else { 0 }), "{what}: {err}");
            checked += 1;
        }
    }
    assert_eq!(checked, 17 * 4, "17 trees × 4 modes");
}

/// The safe pick when MindFormers fails, with the change that gets there (MindFormers never
/// falls back); and the hazards, named by code.
#[test]
fn the_safe_pick_and_the_hazards_of_damaged_trees() {
    let cases = [
        (
            "tree-truncated-shard",
            Some("iteration_00000008"),
            "8",
            vec![],
        ),
        (
            "tree-missing-model-shard",
            Some("iteration_00000008"),
            "8",
            vec![],
        ),
        (
            "tree-no-metadata",
            Some("iteration_00000008"),
            "8",
            vec!["no_metadata"],
        ),
        (
            "tree-tracker-dangling",
            Some("iteration_00000008"),
            "8",
            vec!["tracker_dangling"],
        ),
        (
            "tree-killed-midsave",
            Some("iteration_00000004"),
            "4",
            vec!["save_in_progress"],
        ),
        ("tree-no-tracker", Some("iteration_00000010"), "10", vec![]),
        (
            "tree-healthy-2rank",
            Some("iteration_00000010"),
            "10",
            vec![],
        ),
    ];
    for (name, folder, step, codes) in cases {
        let root = fixtures().join(name).join("checkpoint");
        let (_, out, err) = run(&["resolve", root.to_str().unwrap(), "--json"]);
        let doc: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}: {err}"));
        let safe = &doc["safe"];
        assert_eq!(safe["folder"].as_str(), folder, "{name}: {safe}");
        assert_eq!(safe["initial_step"], step, "{name}: {safe}");
        let loads = doc["mindformers"]["per_rank"][0]["load_path"].as_str();
        let there = root.join(folder.unwrap());
        match loads == Some(there.to_str().unwrap()) && doc["outcome"]["status"] == "resumes" {
            true => assert!(safe["change"].is_null(), "{name}: {safe}"),
            false => {
                let change = safe["change"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: no change: {safe}"));
                assert!(change.contains(there.to_str().unwrap()), "{name}: {change}");
                assert!(
                    change.contains("latest_checkpointed_iteration.txt"),
                    "{name}: {change}"
                );
            }
        }
        let got: Vec<&str> = doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w["code"].as_str())
            .collect();
        for c in codes {
            assert!(got.contains(&c), "{name}: {c} not in {got:?}");
        }
        assert!(got.contains(&"load_ckpt_format_assumed"), "{name}: {got:?}");
    }
}

/// `verify ROOT` on a new-format root checks every iteration folder's shards, names the
/// folder of each, and takes the rank from the shard's name (`--ranks` narrows by it).
#[test]
fn verify_covers_every_iteration_folder() {
    let root = fixtures().join("tree-truncated-shard").join("checkpoint");
    let (code, out, err) = run(&["verify", root.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("12 shards: 11 ok, 1 truncated"), "{out}");
    assert!(out.contains("iteration_00000010 truncated"), "{out}");
    let (_, out, _) = run(&["verify", root.to_str().unwrap(), "--ranks", "1", "--json"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let shards = doc["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 6, "{doc}");
    assert!(
        shards
            .iter()
            .all(|s| s["rank"] == 1 && s["dir"].as_str().unwrap().starts_with("iteration_")),
        "{doc}"
    );
}

/// `--config`: a YAML with a `checkpoint:` section selects the new format, and its
/// `load_ckpt_format` (MindFormers' default `ckpt` when it says none) is the job's — the
/// preload trap fails every rank; one without the section keeps the legacy format (the tree is
/// then named for what it is).
#[test]
fn the_config_selects_the_format_and_its_load_ckpt_format() {
    let root = fixtures().join("tree-healthy-2rank").join("checkpoint");
    let tmp = tempfile::tempdir().unwrap();
    let yaml = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let trap = yaml(
        "trap.yaml",
        "resume_training: True\ncheckpoint:\n  save_max: 3\n",
    );
    let (code, out, err) = run(&[
        "resolve",
        root.to_str().unwrap(),
        "--json",
        "--config",
        &trap,
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["layout"], "mindformers-new");
    let e = &doc["mindformers"]["per_rank"][1]["error"];
    assert_eq!(e["stage"], "context");
    assert_eq!(
        e["message"],
        format!("{}/iteration_00000010 is not a valid path to load checkpoint when auto_trans_ckpt is False.", root.display())
    );
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "load_ckpt_format_ckpt"),
        "{doc}"
    );
    let works = yaml("works.yaml", "load_ckpt_format: safetensors\nresume_training: True\ncheckpoint:\n  save_max: 3\n  no_load_optim: True\n");
    let (code, out, _) = run(&[
        "resolve",
        root.to_str().unwrap(),
        "--json",
        "--config",
        &works,
    ]);
    assert_eq!(code, Some(0), "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["mindformers"]["per_rank"][0]["initial_step"], 0,
        "weights only: {doc}"
    );
    let legacy = yaml(
        "legacy.yaml",
        "load_ckpt_format: safetensors\nresume_training: True\n",
    );
    let (code, _, err) = run(&["resolve", root.to_str().unwrap(), "--config", &legacy]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("new checkpoint format"), "{err}");
}

/// `verify` checks what MindFormers' own checks reject in a new-format tree, beside the
/// shards: a folder whose `metadata.json` lists a missing file, a multi-rank folder without
/// `metadata.json`, a folder without `common.json`, a tracker naming no folder — each a
/// finding and exit 1; a healthy tree has none.
#[test]
fn verify_reports_folders_and_trackers_mindformers_rejects() {
    for (tree, dir, needle) in [
        (
            "tree-missing-opt-shard",
            "iteration_00000010",
            "MindFormers' verification fails: FileNotFoundError",
        ),
        (
            "tree-no-metadata",
            "iteration_00000010",
            "no metadata.json in a multi-rank folder",
        ),
        ("tree-no-common", "iteration_00000010", "no common.json"),
        (
            "tree-tracker-dangling",
            "latest_checkpointed_iteration.txt",
            "names iteration_00000010, which does not exist",
        ),
    ] {
        let root = fixtures().join(tree).join("checkpoint");
        let (code, out, err) = run(&["verify", root.to_str().unwrap(), "--json"]);
        assert_eq!(code, Some(1), "{tree}: {out}{err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        let f = doc["unreadable_folders"].as_array().unwrap();
        assert!(
            f.iter()
                .any(|f| f["dir"] == dir && f["detail"].as_str().unwrap().contains(needle)),
            "{tree}: {doc}"
        );
    }
    let root = fixtures().join("tree-healthy-2rank").join("checkpoint");
    let (code, out, _) = run(&["verify", root.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("problem"), "{out}");
}

/// `load_checkpoint` may be the root, one `iteration_*` folder (MindFormers then loads that
/// folder as it is: the way to resume from an older save; ckptscope still scans the whole
/// root) or a file (a config-stage error), as §6.1 says.
#[test]
fn load_checkpoint_may_be_an_iteration_folder_or_a_file() {
    let root = fixtures().join("tree-healthy-2rank").join("checkpoint");
    let folder = root.join("iteration_00000008");
    let (code, out, err) = run(&["resolve", folder.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["load_checkpoint"], folder.to_str().unwrap());
    assert_eq!(
        doc["mindformers"]["per_rank"][1]["load_path"],
        folder.to_str().unwrap()
    );
    assert_eq!(doc["mindformers"]["per_rank"][1]["initial_step"], 8);
    assert_eq!(
        doc["iterations"].as_array().unwrap().len(),
        3,
        "the whole root is scanned"
    );
    let change = doc["safe"]["change"].as_str().unwrap();
    assert!(
        change.contains("iteration_00000010") && !change.contains("latest_checkpointed"),
        "{change}"
    );
    let file = folder.join("llama-model-0000000-0000002.safetensors");
    let (code, out, _) = run(&["resolve", file.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(1), "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["layout"], "mindformers-new");
    assert_eq!(
        doc["mindformers"]["per_rank"][0]["error"]["message"],
        format!("checkpoint_path is not a directory: {}", file.display())
    );
}

/// A control file over ckptscope's limits (a sparse 65 MiB `metadata.json`) is not read: the
/// answer is "unknown" (exit 2, each rank `{"rank", "unknown"}`), never passed off as
/// MindFormers' error.
#[test]
fn an_unread_metadata_json_makes_the_answer_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    crate::common::copy_tree(&fixtures().join("tree-healthy-2rank"), tmp.path());
    let root = tmp.path().join("checkpoint");
    let meta = root.join("iteration_00000010").join("metadata.json");
    std::fs::File::options()
        .write(true)
        .open(&meta)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let (code, out, err) = run(&["resolve", root.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("68,157,440 bytes: ckptscope reads a control file of at most 64 MiB"),
        "{err}"
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["outcome"]["status"], "unknown");
    let r0 = &doc["mindformers"]["per_rank"][0];
    assert!(r0["error"].is_null() && r0["unknown"].is_string(), "{r0}");
}

/// Hostile names and settings stay cheap and honest: a shard name claiming ten million ranks
/// makes one row; a damaged shard in a resume to another world size (resharding) leaves the
/// answer unknown rather than "loads".
#[test]
fn hostile_names_and_resharding_stay_honest() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    for i in 0..200 {
        let d = root.join(format!("iteration_{i:08}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("model-9999999-9999999.safetensors"), b"").unwrap();
    }
    let (resolved, out, err) = run(&["resolve", root.to_str().unwrap(), "--json"]);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(doc["world_size"], 1, "{}", doc["world_size"]);
    let (code, out, _) = run(&["grid", root.to_str().unwrap()]);
    // the grid says what resolve says, in a few lines
    assert!(
        code == resolved && out.lines().count() < 20,
        "{code:?} {resolved:?}\n{out}"
    );
    // the truncated-shard tree resumed by a 4-rank job: which rank reads the damaged file is
    // not modelled when resharding
    let damaged = fixtures().join("tree-truncated-shard").join("checkpoint");
    let (code, out, _) = run(&[
        "resolve",
        damaged.to_str().unwrap(),
        "--json",
        "--world-size",
        "4",
    ]);
    assert_eq!(code, Some(2), "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(
        doc["mindformers"]["per_rank"][3]["unknown"]
            .as_str()
            .unwrap()
            .contains("resharding"),
        "{doc}"
    );
}

/// From a second review: health mode's safe pick is a healthy folder (and needs no change
/// when MindFormers' health pick is it); a rank that certainly fails fails the job even when
/// another rank's answer is unknown (exit 1); a `common.json` batch size that is not whole,
/// with no new one given, leaves the step unknown (exit 2); a stray copy from another job
/// does not change the world size.
#[test]
fn health_safe_pick_mixed_unknowns_and_odd_batch_sizes() {
    let (code, out, _) = run(&[
        "resolve",
        fixtures().join("tree-health/checkpoint").to_str().unwrap(),
        "--json",
        "--health-monitor",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["safe"]["folder"], "iteration_00000004", "{doc}");
    assert!(doc["safe"]["change"].is_null(), "{doc}");
    let tmp = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let to = tmp.path().join(name);
        crate::common::copy_tree(&fixtures().join(name), &to);
        to.join("checkpoint")
    };
    // rank 0's model shard unreadable (a directory in its place), rank 1's truncated
    let root = copy("tree-truncated-shard");
    let shard = root.join("iteration_00000010/llama-model-0000000-0000002.safetensors");
    std::fs::remove_file(&shard).unwrap();
    std::fs::create_dir(&shard).unwrap();
    let (code, out, _) = run(&["resolve", root.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(1), "rank 1 fails whatever rank 0 does: {out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(
        doc["mindformers"]["per_rank"][0]["unknown"].is_string(),
        "{doc}"
    );
    assert_eq!(
        doc["mindformers"]["per_rank"][1]["error"]["stage"],
        "weights"
    );
    // a batch size of 8.5 and none given
    let root = copy("tree-healthy-2rank");
    let common = root.join("iteration_00000010/common.json");
    let before = std::fs::read_to_string(&common).unwrap();
    let text = before.replace("\"global_batch_size\": 8", "\"global_batch_size\": 8.5");
    assert_ne!(
        text, before,
        "the fixture's common.json spells global_batch_size otherwise"
    );
    std::fs::write(&common, text).unwrap();
    let (code, _, err) = run(&["resolve", root.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pass --global-batch-size"), "{err}");
    let (code, out, _) = run(&[
        "resolve",
        root.to_str().unwrap(),
        "--global-batch-size",
        "17",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    // a stray copy named for a 10-rank job
    let it = root.join("iteration_00000008");
    std::fs::copy(
        it.join("llama-model-0000001-0000002.safetensors"),
        it.join("llama-model-0000009-0000010.safetensors"),
    )
    .unwrap();
    let (_, out, _) = run(&[
        "resolve",
        root.to_str().unwrap(),
        "--json",
        "--global-batch-size",
        "8",
    ]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["world_size"], 2, "{doc}");
}

/// The safe pick's change and the rotation hazard read the settings as the config stage fills
/// them, not the YAML again: a truthy `checkpoint:` that is not a mapping with
/// `resume_training: False` is a weights-only load (`no_load_optim` ← `not False`), where
/// health mode does not apply — the change must not ask to turn it off; `keep_checkpoint_max`
/// is the `save_max` of a section that does not set one.
#[test]
fn the_change_and_the_rotation_hazard_follow_the_config_stage() {
    let tmp = tempfile::tempdir().unwrap();
    crate::common::copy_tree(
        &fixtures().join("tree-truncated-shard"),
        &tmp.path().join("t"),
    );
    let root = tmp.path().join("t/checkpoint");
    let config = tmp.path().join("job.yaml");
    let resolve_with = |yaml: &str| -> Value {
        std::fs::write(&config, yaml).unwrap();
        let (_, out, err) = run(&[
            "resolve",
            root.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--json",
        ]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"))
    };
    let unrotated = |doc: &Value, why: &str| -> String {
        crate::common::warning(doc, "unrotated_folders").unwrap_or_else(|| panic!("{why}: {doc}"))
            ["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let doc = resolve_with("resume_training: False\ncheckpoint: True\nload_ckpt_format: safetensors\nuse_checkpoint_health_monitor: True\ncallbacks:\n  - type: CheckpointMonitor\n    keep_checkpoint_max: 1\n");
    assert_eq!(doc["mindformers"]["no_load_optim"], true, "{doc}");
    let change = doc["safe"]["change"]
        .as_str()
        .unwrap_or_else(|| panic!("a change is needed: {doc}"));
    assert!(
        change.contains("iteration_00000008") && !change.contains("health"),
        "{change}"
    );
    let m = unrotated(&doc, "3 folders, keep_checkpoint_max 1");
    assert!(m.contains("save_max 1 (keep_checkpoint_max)"), "{m}");
    // a float save_max counts as the config stage counts it (rounded down), not as unset
    let doc = resolve_with("checkpoint:\n  save_max: 2.0\nload_ckpt_format: safetensors\n");
    let m = unrotated(&doc, "3 folders, save_max 2.0");
    assert!(m.contains("save_max 2 (checkpoint.save_max)"), "{m}");
}
