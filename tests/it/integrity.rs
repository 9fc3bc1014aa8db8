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

/// Every rank's newest shard cut the same way (8 ranks): only older steps show the run carries
/// `global_batch_size`. `resolve`, `verify` and the session's verdict events agree.
#[test]
fn a_cut_on_every_rank_is_found_through_older_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(
        &root,
        &Launch {
            ranks: 8,
            ..Launch::seed()
        },
        |_| true,
    )
    .unwrap();
    for r in 0..8 {
        cut_before_gbs(&root.join(format!("rank_{r}/llama3_1_8b_rank_{r}-20_2.ckpt")));
    }
    let r = root.to_str().unwrap();
    let v: Value = serde_json::from_slice(&bin(&["resolve", r, "--json"]).stdout).unwrap();
    assert_eq!(
        v["safe"]["config"]["resume_training"],
        "llama3_1_8b_rank_0-15_2.ckpt"
    );
    let v: Value = serde_json::from_slice(&bin(&["verify", r, "--json"]).stdout).unwrap();
    let cut: Vec<&Value> = v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["file"].as_str().unwrap().ends_with("-20_2.ckpt"))
        .collect();
    assert_eq!(cut.len(), 8);
    assert!(cut.iter().all(|s| s["verdict"] == "incomplete"), "{cut:?}");
    let mut s = common::session_with(&root, &Default::default());
    s.analysis();
    let events = s.drain_events();
    let verdicts: Vec<(String, Verdict)> = events
        .iter()
        .filter_map(|e| match e {
            ckptscope::Event::Verdict { file, verdict, .. } => Some((file.clone(), *verdict)),
            _ => None,
        })
        .filter(|(f, _)| f.ends_with("-20_2.ckpt"))
        .collect();
    assert!(!verdicts.is_empty());
    assert!(
        verdicts.iter().all(|(_, v)| *v == Verdict::Incomplete),
        "events carry the verdict as judged in the run: {verdicts:?}"
    );
}

/// A file rewritten in place with its size and modification time restored (`cp -p`,
/// `rsync -t`) is a new version: its old verdict does not survive (the status-change time
/// moved).
#[test]
fn a_rewrite_that_restores_size_and_mtime_drops_the_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    let mut s = common::session_with(&root, &Default::default());
    common::verify_all(&mut s);
    let f = root.join("rank_1/llama3_1_8b_rank_1-10_2.ckpt");
    assert!(s
        .tree()
        .verdict("rank_1", "llama3_1_8b_rank_1-10_2.ckpt")
        .is_some());
    let md = std::fs::metadata(&f).unwrap();
    let mut p = md.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
    std::fs::set_permissions(&f, p).unwrap();
    let zeros = vec![0u8; md.len() as usize];
    std::fs::write(&f, &zeros).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(md.modified().unwrap())
        .unwrap();
    let node = ckptscope::scan::scan_dir(&ckptscope::fsys::RealFs, &root.join("rank_1"));
    s.apply(ckptscope::Delta::Dir("rank_1".into(), Some(node.into())));
    assert!(
        s.tree()
            .verdict("rank_1", "llama3_1_8b_rank_1-10_2.ckpt")
            .is_none(),
        "the old verdict is gone"
    );
}

/// A data-parallel YAML's global batch size needs the job's world size: without
/// `--world-size`/`RANK_SIZE` the batch size is assumed unchanged (and the report says why),
/// never computed from a count of folders.
#[test]
fn a_data_parallel_yaml_needs_the_world_size() {
    let ft = common::fixture_tree("tree-seed-run1");
    let yaml = ft.base.join("run.yaml");
    std::fs::write(
        &yaml,
        "runner_config:\n  batch_size: 4\n  sink_mode: True\n  sink_size: 2\nparallel:\n  parallel_mode: 0\n",
    )
    .unwrap();
    let r = ft.root.to_str().unwrap();
    let y = yaml.to_str().unwrap();
    let v: Value =
        serde_json::from_slice(&bin(&["resolve", r, "--json", "--config", y]).stdout).unwrap();
    assert_eq!(v["data_skip"]["scale"], 1.0, "{}", v["data_skip"]);
    let notes = v["context"]["notes"].to_string();
    assert!(notes.contains("needs the world size"), "{notes}");
    let v: Value = serde_json::from_slice(
        &bin(&["resolve", r, "--json", "--config", y, "--world-size", "4"]).stdout,
    )
    .unwrap();
    assert_eq!(
        v["data_skip"]["scale"], 0.5,
        "4 × 4 = 16, was 8: {}",
        v["data_skip"]
    );
}

/// A 16,384-rank job with a handful of problems, on an in-memory filesystem: the text report
/// fits on a screen — per-rank results grouped, warnings grouped with counts and rank ranges,
/// ranks in numeric order.
#[test]
fn the_report_of_16384_ranks_fits_on_a_screen() {
    use crate::common::memfs::MemFs;
    use ckptscope::writer::ckpt::{encode, Tensor};
    use std::sync::Arc;
    let fs = Arc::new(MemFs::default());
    let root = Path::new("/job/checkpoint");
    let shard = |e: i64| {
        let mut t = vec![Tensor::f32s("w", &[2], [1.0, 2.0])];
        t.extend(
            ckptscope::writer::ckpt::AppendEntries {
                epoch_num: e,
                step_num: 2 * e,
                loss_scale: 1.0,
                global_batch_size: Some(8),
                resumed: false,
            }
            .tensors(),
        );
        encode(&t)
    };
    let bodies: Vec<Vec<u8>> = [10, 15, 20].into_iter().map(shard).collect();
    for r in 0..16_384u32 {
        for (i, e) in [10, 15, 20].into_iter().enumerate() {
            if (r, e) == (4000, 20) {
                continue; // rank 4000 lost its newest shard
            }
            let mut b = bodies[i].clone();
            if (r, e) == (900, 15) {
                b.truncate(b.len() / 2);
            }
            if (r, e) == (7, 10) {
                b.clear();
            }
            fs.write(
                &root.join(format!("rank_{r}/llama_rank_{r}-{e}_2.ckpt")),
                &b,
            );
        }
        if (10_000..10_003).contains(&r) {
            fs.write(
                &root.join(format!("rank_{r}/llama_rank_{r}-25_2.tmp")),
                b"x",
            );
        }
        let meta = format!("{{\"last_epoch\": 20, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-20_2.ckpt\"}}");
        fs.write(&root.join(format!("rank_{r}/meta.json")), meta.as_bytes());
    }
    let env = ckptscope::Environment::with(&[], "/job");
    let flags = ckptscope::JobFlags {
        shared_paths: Some("/job".into()),
        ..Default::default()
    };
    let ctx = ckptscope::JobContext::gather(&*fs, &env, "/job/checkpoint", &flags).unwrap();
    let mut s = ckptscope::Session::open(fs, ctx);
    let text = ckptscope::report::text::render(s.analysis(), &Default::default());
    assert!(
        text.lines().count() < 45,
        "{} lines:\n{text}",
        text.lines().count()
    );
    insta::assert_snapshot!("report_16384_ranks", text);
}

/// A file that keeps growing while it is hashed (here: a reader that never ends after the
/// valid checkpoint it starts with) is read only up to the size it had when opened — the deep
/// pass ends, and the re-stat afterwards decides whether the file changed.
#[test]
fn the_deep_pass_reads_no_further_than_the_size_at_open() {
    use ckptscope::fsys::{Fs, RawEntry, ReadSeek, RealFs};
    use ckptscope::model::{FileRead, Stat};
    use ckptscope::writer::ckpt::{encode, AppendEntries, Tensor};
    use std::io::{Read, Seek, SeekFrom};
    struct Endless {
        data: std::sync::Arc<Vec<u8>>,
        pos: u64,
    }
    impl ReadSeek for Endless {}
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let at = self.pos as usize;
            let n = buf.len();
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.data.get(at + i).copied().unwrap_or(0);
            }
            self.pos += n as u64;
            Ok(n)
        }
    }
    impl Seek for Endless {
        fn seek(&mut self, p: SeekFrom) -> std::io::Result<u64> {
            self.pos = match p {
                SeekFrom::Start(n) => n,
                SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
                SeekFrom::End(d) => (self.data.len() as u64).saturating_add_signed(d),
            };
            Ok(self.pos)
        }
    }
    struct Growing(Stat, std::sync::Arc<Vec<u8>>);
    impl Fs for Growing {
        fn stat(&self, _: &Path) -> std::io::Result<Stat> {
            Ok(self.0.clone())
        }
        fn read_dir(&self, p: &Path) -> std::io::Result<Vec<RawEntry>> {
            RealFs.read_dir(p)
        }
        fn read_small(&self, p: &Path, limit: u64) -> FileRead {
            RealFs.read_small(p, limit)
        }
        fn open(&self, _: &Path) -> std::io::Result<(Box<dyn ReadSeek>, Stat)> {
            let r = Endless {
                data: self.1.clone(),
                pos: 0,
            };
            Ok((Box::new(r), self.0.clone()))
        }
        fn canonicalize(&self, p: &Path) -> std::io::Result<std::path::PathBuf> {
            Ok(p.to_path_buf())
        }
    }
    let mut t = vec![Tensor::f32s(
        "w",
        &[200_000],
        (0..200_000).map(|i| i as f32),
    )];
    t.extend(
        AppendEntries {
            epoch_num: 1,
            step_num: 2,
            loss_scale: 1.0,
            global_batch_size: Some(8),
            resumed: false,
        }
        .tensors(),
    );
    let bytes = encode(&t);
    assert!(
        bytes.len() > 256 << 10,
        "past the whole-read size: the streaming path"
    );
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("x_rank_0-1_1.ckpt");
    std::fs::write(&f, &bytes).unwrap();
    let st = RealFs.stat(&f).unwrap();
    let opts = ckptscope::verify::verdict::CheckOptions {
        deep: true,
        ..Default::default()
    };
    let fs = Growing(st.clone(), std::sync::Arc::new(bytes));
    let check = ckptscope::verify::verdict::check_file(&fs, &f, &st, &opts);
    assert_eq!(check.verdict, Verdict::Ok, "{check:?}");
    assert!(
        check.sha256.is_some(),
        "the deep pass ran to the end: {check:?}"
    );
}

/// A world size counted from `rank_*` entries is bounded like the flag: 131,073 files named
/// `rank_N` are no answer at all (unknown, with the fix), not 131,073 answers.
#[test]
fn too_many_rank_entries_is_unknown_not_an_answer_per_entry() {
    use crate::common::memfs::MemFs;
    use std::sync::Arc;
    let fs = Arc::new(MemFs::default());
    let root = Path::new("/job/checkpoint");
    fs.write(&root.join("rank_0/meta.json"), b"{}");
    for r in 1..=ckptscope::job::MAX_WORLD_SIZE {
        fs.write(&root.join(format!("rank_{r}")), b"");
    }
    let env = ckptscope::Environment::with(&[], "/job");
    let ctx =
        ckptscope::JobContext::gather(&*fs, &env, "/job/checkpoint", &Default::default()).unwrap();
    let mut s = ckptscope::Session::open(fs, ctx);
    let a = s.analysis();
    assert!(a.mindformers.per_rank.is_empty());
    match a.outcome() {
        ckptscope::resolve::Outcome::Unknown(why) => {
            assert!(why.contains("131073 rank_* entries"), "{why}");
            assert!(why.contains("--world-size"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}
