//! Issue 14, "several roots, one job": a 3-node job whose checkpoint folder is not shared —
//! each node's disk holds its own 8 ranks' folders — given as three roots. One merged view
//! (grid, verify, safe pick), each rank answered as its node sees its own folder.

use crate::common::{self, run_bin as run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Ranks `ranks` of a job saving epochs `epochs` (step 2 each): valid shards whose mtimes
/// follow the epochs (set here: git keeps none), a `meta.json` naming the newest.
pub(crate) fn node(root: &Path, ranks: std::ops::Range<u64>, epochs: &[u64]) {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for r in ranks {
        let d = root.join(format!("rank_{r}"));
        std::fs::create_dir_all(&d).unwrap();
        for &e in epochs {
            let f = d.join(format!("llama_rank_{r}-{e}_2.ckpt"));
            std::fs::write(&f, common::valid_shard(e)).unwrap();
            let file = std::fs::File::options().write(true).open(&f).unwrap();
            file.set_modified(t0 + Duration::from_secs(e)).unwrap();
        }
        let last = epochs.last().unwrap();
        std::fs::write(
            d.join("meta.json"),
            format!("{{\"last_epoch\": {last}, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-{last}_2.ckpt\"}}"),
        )
        .unwrap();
    }
}

/// Three nodes of 8 ranks, steps 10, 15, 20 everywhere.
pub(crate) fn three_nodes(tmp: &Path) -> Vec<PathBuf> {
    (0..3u64)
        .map(|k| {
            let root = tmp.join(format!("node{k}/output/checkpoint"));
            std::fs::create_dir_all(&root).unwrap();
            node(&root, k * 8..k * 8 + 8, &[10, 15, 20]);
            root
        })
        .collect()
}

fn resolve_json(roots: &[PathBuf], extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args: Vec<&str> = vec!["resolve"];
    args.extend(roots.iter().map(|r| r.to_str().unwrap()));
    args.extend(["--world-size", "24", "--device-num-per-node", "8", "--json"]);
    args.extend(extra);
    let (code, out, err) = run(&args);
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, doc, err)
}

/// Rank 9 (node 1) lost its newest file: without a shared folder every rank takes its own
/// newest, so node 1's rank 9 resumes from step 15 while every other rank resumes from 20 —
/// the report says so node by node; the safe pick is 15 on every rank of every root.
#[test]
fn three_roots_give_each_node_its_own_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    let (code, doc, err) = resolve_json(&roots, &[]);
    assert_eq!(code, Some(0), "{doc}{err}");
    assert_eq!(doc["world_size"], 24);
    let per_rank = doc["mindformers"]["per_rank"].as_array().unwrap();
    assert_eq!(per_rank.len(), 24, "{doc}");
    let nodes = doc["nodes"].as_array().unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(nodes.len(), 3, "{doc}");
    for (k, n) in nodes.iter().enumerate() {
        assert_eq!(n["root"], roots[k].to_str().unwrap(), "{n}");
        let want: Vec<u64> = (k as u64 * 8..k as u64 * 8 + 8).collect();
        assert_eq!(n["ranks"], serde_json::json!(want), "{n}");
        assert_eq!(n["rank_folders"], 8, "{n}");
        assert_eq!(n["branch"]["kind"], "not_shared", "{n}");
    }
    // each rank its own newest by mtime: rank 9's is step 15 (the bare form, as the TUI is
    // started, takes the job's flags too: piped, it prints the report)
    let (_, out, _) = run(&[
        roots[0].to_str().unwrap(),
        roots[1].to_str().unwrap(),
        roots[2].to_str().unwrap(),
        "--world-size",
        "24",
        "--device-num-per-node",
        "8",
    ]);
    assert!(out.contains("per node"), "{out}");
    assert!(
        out.contains(&format!(
            "{}: ranks 8–15 (8 rank folders)",
            roots[1].display()
        )),
        "{out}"
    );
    let safe = &doc["safe"];
    assert!(
        safe.to_string().contains("15_2"),
        "the newest step intact on every rank of every root: {safe}"
    );
    // the shard checked for rank 9 is read from node 1's root
    let (code, out, err) = run(&[
        "verify",
        roots[0].to_str().unwrap(),
        roots[1].to_str().unwrap(),
        roots[2].to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["total"], 71, "{}", v["summary"]);
}

/// A rank folder under two roots is named (only the first root's is read); a node that
/// believes the folder shared (`--shared-paths` covering every root) follows rank 0's decision,
/// made from rank 0's own root — 8 rank folders, not 24 — and the report says so; messages
/// name the root that holds the folder; the grid's title names every root; a further root
/// that is not there is named when `watch` is asked to watch it.
#[test]
fn conflicts_shared_roots_and_roots_that_are_not_there() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    common::copy_tree(&roots[0].join("rank_3"), &roots[2].join("rank_3"));
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    let (_, doc, err) = resolve_json(&roots, &[]);
    let codes = |doc: &Value| -> Vec<String> {
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        codes(&doc).contains(&"rank_folder_conflict".to_owned()),
        "{doc}{err}"
    );
    assert_eq!(
        doc["nodes"][2]["rank_folders"], 8,
        "the copy is not read: {doc}"
    );
    let shared = tmp.path().to_str().unwrap();
    let (code, doc, err) = resolve_json(&roots, &["--shared-paths", shared]);
    assert_eq!(code, Some(1), "rank 9 fails loading 20_2: {doc}{err}");
    assert!(
        codes(&doc).contains(&"roots_treated_as_shared".to_owned()),
        "{doc}"
    );
    assert_eq!(doc["nodes"][0]["branch"]["kind"], "by_meta", "{doc}");
    assert_eq!(doc["nodes"][1]["follows"], roots[0].to_str().unwrap());
    assert_eq!(
        doc["mindformers"]["rank_entries"], 8,
        "rank 0 counts its own root's: {doc}"
    );
    let missing = common::warning(&doc, "resolved_file_missing").unwrap_or_else(|| panic!("{doc}"));
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{}/rank_9/", roots[1].display())),
        "{missing}"
    );
    let r: Vec<&str> = roots.iter().map(|r| r.to_str().unwrap()).collect();
    let (code, out, err) = run(&["grid", r[0], r[1], r[2], "--world-size", "24"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains(&format!("{} + {} + {} (24 ranks", r[0], r[1], r[2])),
        "{out}"
    );
    // a further root that is not there cannot be watched: said with its name
    let gone = tmp.path().join("node9/output/checkpoint");
    let (code, _, err) = run(&["watch", r[0], gone.to_str().unwrap(), "--ndjson"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(gone.to_str().unwrap()) && err.contains("cannot be read"),
        "{err}"
    );
    let (code, _, err) = run(&["resolve", r[0], r[0]]);
    assert_eq!(code, Some(2));
    assert!(err.contains("the same folder is given twice"), "{err}");
    // the new format keeps one iteration_N/ per node: not merged by name, refused
    let newfmt = common::fixtures()
        .parent()
        .unwrap()
        .join("mindformers-new/tree-healthy-2rank/checkpoint");
    assert!(newfmt.is_dir(), "fixture missing: {}", newfmt.display());
    let (code, _, err) = run(&["resolve", newfmt.to_str().unwrap(), r[1]]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("several roots of the new format are not supported yet"),
        "{err}"
    );
}

/// The merged tree a fresh scan of every root gives (what the watcher must converge to).
fn fresh(ctx: &ckptscope::JobContext) -> ckptscope::Tree {
    use ckptscope::fsys::RealFs;
    let more = ctx
        .more_roots
        .iter()
        .map(|m| {
            let t = ckptscope::scan::scan_at(&RealFs, &m.canonical, &m.root);
            (t, m.canonical.clone())
        })
        .collect();
    ckptscope::scan::scan_at(&RealFs, &ctx.canonical, &ctx.root).merge_roots(
        &ctx.canonical,
        more,
        ctx.node_block(),
    )
}

/// Watching three roots as one tree: each root's watcher keeps its part current, and the
/// merged model equals a fresh scan of all three after every change — a shard lost on node 1
/// (rank 9 then loads step 15 on its node), a copy of rank_3 appearing on node 2 (a conflict,
/// not read) and going again, a rank folder deleted on node 2.
#[test]
fn a_watch_of_three_roots_follows_each_and_stays_one_tree() {
    use ckptscope::fsys::RealFs;
    use ckptscope::watch::{spawn_many, WatchConfig, WatchMsg};
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    let env = ckptscope::Environment::with(&[], tmp.path());
    let flags = ckptscope::JobFlags {
        world_size: Some(24),
        device_num_per_node: Some(8),
        ..Default::default()
    };
    let os: Vec<std::ffi::OsString> = roots.iter().map(|r| r.clone().into_os_string()).collect();
    let ctx = ckptscope::JobContext::gather_roots(&RealFs, &env, &os, &flags).unwrap();
    let poll = Duration::from_millis(500);
    let cfg = WatchConfig::for_job(&ctx, Arc::new(RealFs), Some(poll.as_secs_f64()), false)
        .unwrap()
        .for_roots(&ctx)
        .unwrap();
    assert_eq!(cfg.len(), 3);
    let h = spawn_many(cfg, ctx.node_block());
    let Ok(WatchMsg::Started { tree, .. }) = h.events.recv() else {
        panic!("no first scan")
    };
    let mut s = ckptscope::Session::from_tree(Arc::new(RealFs), ctx.clone(), *tree);
    let converged = |s: &mut ckptscope::Session, what: &str| {
        let deadline = Instant::now() + poll + Duration::from_secs(3);
        loop {
            let want = fresh(&ctx);
            let t = s.tree();
            if t.state == want.state && t.dirs == want.dirs && t.multi == want.multi {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not converged after {what}: state {} dirs {:?} multi {}",
                t.state == want.state,
                want.dirs
                    .keys()
                    .filter(|k| t.dirs.get(*k) != want.dirs.get(*k))
                    .collect::<Vec<_>>(),
                t.multi == want.multi
            );
            if let Ok(m) = h.events.recv_timeout(Duration::from_millis(50)) {
                s.absorb(m).unwrap();
            }
        }
    };
    converged(&mut s, "the start");
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    converged(&mut s, "rank 9's shard was removed on node 1");
    let nodes = s.analysis().nodes.clone();
    assert_eq!(nodes.len(), 3);
    assert!(
        nodes[1]
            .loads
            .iter()
            .any(|l| l.what == "step 15_2" && l.ranks == [9]),
        "{:?}",
        nodes[1].loads
    );
    common::copy_tree(&roots[0].join("rank_3"), &roots[2].join("rank_3"));
    converged(&mut s, "a copy of rank_3 appeared on node 2");
    assert_eq!(s.tree().conflicts().len(), 1);
    assert_eq!(
        s.tree().origin("rank_3"),
        0,
        "the first root's stays the one read"
    );
    assert!(s
        .analysis()
        .warnings
        .iter()
        .any(|w| w.code == "rank_folder_conflict"));
    std::fs::remove_dir_all(roots[2].join("rank_3")).unwrap();
    converged(&mut s, "the copy went again");
    assert!(s.tree().conflicts().is_empty());
    std::fs::remove_dir_all(roots[2].join("rank_20")).unwrap();
    converged(&mut s, "rank_20 was deleted on node 2");
    assert!(!s.tree().dirs.contains_key("rank_20"));
    h.stop();
}

/// A further root must be a node's checkpoint folder: a FIFO (never opened), a missing path
/// (a typo, a subcommand written after the folders), or a new-format root among legacy ones is
/// refused with its name; a SHA256SUMS is written for one root at a time.
#[test]
fn further_roots_that_are_not_node_folders_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    let fifo = tmp.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo is needed");
    let r: Vec<&str> = roots.iter().map(|r| r.to_str().unwrap()).collect();
    let typo = tmp.path().join("nodee1/output/checkpoint");
    let newfmt = common::fixtures()
        .parent()
        .unwrap()
        .join("mindformers-new/tree-healthy-2rank/checkpoint");
    assert!(newfmt.is_dir(), "fixture missing: {}", newfmt.display());
    for (bad, says) in [
        (
            fifo.to_str().unwrap(),
            "is a FIFO (named pipe), not a folder",
        ),
        (
            typo.to_str().unwrap(),
            "cannot be read (No such file or directory",
        ),
        ("resolve", "cannot be read (No such file or directory"),
        (
            newfmt.to_str().unwrap(),
            "several roots of the new format are not supported yet",
        ),
    ] {
        let (code, out, err) = run(&["resolve", r[0], bad, "--world-size", "24"]);
        assert_eq!(code, Some(2), "{bad}: {out}{err}");
        assert!(err.contains(bad) && err.contains(says), "{bad}: {err}");
    }
    let (code, _, err) = run(&[
        "verify",
        r[0],
        r[1],
        "--write-manifest",
        tmp.path().join("SUMS").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--write-manifest takes one checkpoint folder"),
        "{err}"
    );
    assert!(!tmp.path().join("SUMS").exists());
}

/// One name, one entry: a file called `rank_8` in the first root and node 1's folder
/// `rank_8` are a conflict (the first root's entry is what node 0's MindFormers counts), not
/// two entries; a warning about a name in node 1's folder names node 1's root.
#[test]
fn one_name_one_entry_and_messages_name_the_root_that_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    std::fs::write(roots[0].join("rank_8"), b"stray").unwrap();
    std::fs::write(roots[1].join("rank_10/llama_rank_10-30_2.ckpt.tmp"), b"").unwrap();
    let (_, doc, err) = resolve_json(&roots, &[]);
    let conflict =
        common::warning(&doc, "rank_folder_conflict").unwrap_or_else(|| panic!("{doc}{err}"));
    assert!(
        conflict["message"]
            .as_str()
            .unwrap()
            .starts_with("rank_8 is under 2 roots"),
        "{conflict}"
    );
    let stray = common::warning(&doc, "stray_rank_entry").unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(stray["count"], 1, "one entry called rank_8: {stray}");
    let tmpfile = common::warning(&doc, "save_in_progress").unwrap_or_else(|| panic!("{doc}"));
    assert!(
        tmpfile["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/rank_10/", roots[1].display())),
        "{tmpfile}"
    );
}

/// A node whose disk was wiped (its root is empty): MindFormers there sees an empty
/// `load_checkpoint` folder and starts from random initialisation (A1) while the other nodes
/// resume — the roots, given in node order, pair that node's ranks with the empty root, the
/// report says "not resuming" for them, and `nodes_differ` names the split.
#[test]
fn a_wiped_node_starts_from_scratch_and_the_split_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    std::fs::remove_dir_all(&roots[2]).unwrap();
    std::fs::create_dir_all(&roots[2]).unwrap();
    let (code, doc, err) = resolve_json(&roots, &[]);
    assert_eq!(code, Some(0), "nothing fails: {doc}{err}");
    let per_rank = doc["mindformers"]["per_rank"].as_array().unwrap();
    for (r, v) in per_rank.iter().enumerate().skip(16) {
        assert_eq!(v["resume_training"], false, "rank {r}: {doc}");
    }
    assert_eq!(per_rank[8]["resume_training"], true);
    let n2 = &doc["nodes"][2];
    assert_eq!(n2["rank_folders"], 0, "{n2}");
    assert_eq!(n2["branch"]["kind"], "not_resuming", "{n2}");
    assert_eq!(n2["loads"][0]["what"], "not resuming", "{n2}");
    let mismatch = common::warning(&doc, "rank_count_mismatch")
        .unwrap_or_else(|| panic!("16 folders, world size 24: {doc}"));
    assert!(
        mismatch["message"]
            .as_str()
            .unwrap()
            .contains("or start afresh on a node whose folder is empty"),
        "{mismatch}"
    );
    let differ = common::warning(&doc, "nodes_differ").unwrap_or_else(|| panic!("{doc}"));
    let m = differ["message"].as_str().unwrap();
    assert!(
        m.contains(&format!(
            "8 ranks under {}: not resuming",
            roots[2].display()
        )) && m.contains("step 20_2"),
        "{m}"
    );
}

/// A stale copy of a rank folder on another node's disk loses to the node that runs the rank:
/// an empty `rank_9` under node 0's root (which holds ranks 0–7) and the real one under node 1's
/// (ranks 8–15) — rank 9 is read and answered from node 1, and the conflict says which copy
/// is read.
#[test]
fn a_stale_copy_on_another_node_loses_to_the_ranks_own_node() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    std::fs::create_dir(roots[0].join("rank_9")).unwrap();
    let (code, doc, err) = resolve_json(&roots, &[]);
    assert_eq!(code, Some(0), "{doc}{err}");
    assert_eq!(
        doc["nodes"][0]["ranks"],
        serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7])
    );
    assert!(
        doc["nodes"][1]["loads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["what"] == "step 20_2" && l["ranks"].as_array().unwrap().len() == 8),
        "{doc}"
    );
    let conflict = common::warning(&doc, "rank_folder_conflict").unwrap_or_else(|| panic!("{doc}"));
    assert!(
        conflict["message"]
            .as_str()
            .unwrap()
            .contains(&format!("ckptscope reads {}'s", roots[1].display())),
        "{conflict}"
    );
}

/// `verify --hash` of a job given as several roots reads each root's own `SHA256SUMS` (names
/// relative to that node's folder), not only the first's: a digest recorded on node 1 that the
/// shard no longer has is found.
#[test]
fn hash_reads_every_roots_manifest() {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    let name = "rank_9/llama_rank_9-15_2.ckpt";
    let digest = format!(
        "{:x}",
        sha2::Sha256::digest(std::fs::read(roots[1].join(name)).unwrap())
    );
    let wrong: String = digest.chars().rev().collect();
    std::fs::write(roots[1].join("SHA256SUMS"), format!("{wrong}  {name}\n")).unwrap();
    let mut args: Vec<&str> = vec!["verify"];
    args.extend(roots.iter().map(|r| r.to_str().unwrap()));
    args.extend([
        "--world-size",
        "24",
        "--device-num-per-node",
        "8",
        "--hash",
        "--json",
    ]);
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(1), "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let shard = doc["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dir"] == "rank_9" && s["file"] == "llama_rank_9-15_2.ckpt")
        .unwrap();
    assert_eq!(shard["verdict"], "hash_mismatch", "{shard}");
    let manifests = doc["summary"]["manifests"].to_string();
    assert!(
        manifests.contains("node1/output/checkpoint/SHA256SUMS"),
        "{manifests}"
    );
}
