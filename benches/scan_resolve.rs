//! Benchmark: full scan + MindFormers resolution of a synthetic tree of 4,096 ranks × 50
//! checkpoint files + meta.json each, against `find ROOT -printf '%s %T@ %p\n'` over the same
//! tree in the same run (both warm-cache, median of several alternating runs).
//!
//! Run: `cargo bench --bench scan_resolve` (env `CKPTSCOPE_BENCH_RANKS`, `..._FILES`,
//! `..._ROUNDS` to change the size). The tree is generated once under the system temp folder.

use ckptscope::fsys::RealFs;
use ckptscope::resolve::config::{EnvFacts, PathFacts, ResumeConfig};
use ckptscope::resolve::context::RunSettings;
use ckptscope::resolve::mindformers::RankResult;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// 4096 × (50 shards + meta.json); shard contents are tiny (the scan reads none of them).
fn generate(root: &Path, ranks: usize, files: usize) {
    let marker = root.join(format!(".complete-{ranks}-{files}"));
    if marker.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(root);
    for r in 0..ranks {
        let dir = root.join(format!("rank_{r}"));
        std::fs::create_dir_all(&dir).unwrap();
        for e in 1..=files {
            std::fs::write(dir.join(format!("llama3_1_8b_rank_{r}-{e}_2.ckpt")), b"x").unwrap();
        }
        let meta = format!(
            "{{\"last_epoch\": {files}, \"last_step\": 2, \"last_ckpt_file\": \"llama3_1_8b_rank_{r}-{files}_2.ckpt\"}}"
        );
        std::fs::write(dir.join("meta.json"), meta).unwrap();
    }
    std::fs::write(marker, b"").unwrap();
}

fn ckptscope_once(root: &str, ranks: u64) -> (Duration, RankResult) {
    let t = Instant::now();
    let tree = ckptscope::scan::scan(&RealFs, root);
    let cfg = ResumeConfig {
        load_checkpoint: Some(root.into()),
        ..Default::default()
    };
    let env = EnvFacts {
        world_size: ranks,
        device_num_per_node: 8,
        shared_paths: Some(root.into()),
        ..Default::default()
    };
    let paths = PathFacts {
        abspath: root.into(),
        realpath: root.into(),
        shared_realpaths: vec![(root.into(), root.into())],
        ..Default::default()
    };
    let scanned = t.elapsed();
    let read = |file: &str| {
        ckptscope::verify::read_append(&Path::new(root).join("rank_0").join(file), cfg.fmt)
    };
    let a = ckptscope::resolve::analyze(
        &tree,
        &cfg,
        &env,
        &paths,
        &RunSettings::default(),
        &read,
        None,
    );
    if std::env::var_os("CKPTSCOPE_BENCH_SPLIT").is_some() {
        let total = t.elapsed();
        let t2 = Instant::now();
        let inputs = ckptscope::resolve::mindformers::Inputs {
            tree: &tree,
            config: &cfg,
            env: &env,
            paths: &paths,
        };
        let _ = ckptscope::resolve::mindformers::resolve(&inputs);
        eprintln!(
            "  scan {scanned:.3?}, analyze {:.3?} (of which the resolver alone {:.3?})",
            total - scanned,
            t2.elapsed()
        );
    }
    (t.elapsed(), a.mindformers.per_rank[0].clone())
}

fn find_once(root: &str) -> Duration {
    let t = Instant::now();
    let st = Command::new("find")
        .args([root, "-printf", "%s %T@ %p\n"])
        .stdout(Stdio::null())
        .status()
        .expect("find");
    assert!(st.success());
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let ranks = env_or("CKPTSCOPE_BENCH_RANKS", 4096);
    let files = env_or("CKPTSCOPE_BENCH_FILES", 50);
    let rounds = env_or("CKPTSCOPE_BENCH_ROUNDS", 7);
    let root = std::env::temp_dir().join(format!("ckptscope-bench-{ranks}x{files}"));
    let t = Instant::now();
    generate(&root, ranks, files);
    eprintln!(
        "tree: {} ({} entries), ready in {:.1?}",
        root.display(),
        ranks * (files + 1),
        t.elapsed()
    );
    let r = root.to_string_lossy().into_owned();
    if let Some(n) = std::env::var("CKPTSCOPE_BENCH_PROFILE_RESOLVER")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // for `perf record`: the resolver alone, n times, on one scan
        let tree = ckptscope::scan::scan(&RealFs, &r);
        let cfg = ResumeConfig {
            load_checkpoint: Some(r.clone()),
            ..Default::default()
        };
        let env = EnvFacts {
            world_size: ranks as u64,
            device_num_per_node: 8,
            shared_paths: Some(r.clone()),
            ..Default::default()
        };
        let paths = PathFacts {
            abspath: r.clone(),
            realpath: r.clone(),
            shared_realpaths: vec![(r.clone(), r.clone())],
            ..Default::default()
        };
        for _ in 0..n {
            let _ = ckptscope::resolve::mindformers::resolve(
                &ckptscope::resolve::mindformers::Inputs {
                    tree: &tree,
                    config: &cfg,
                    env: &env,
                    paths: &paths,
                },
            );
        }
        return;
    }
    let (_, pick) = ckptscope_once(&r, ranks as u64); // warm the cache
    find_once(&r);
    assert_eq!(
        pick,
        RankResult::File(format!("llama3_1_8b_rank_0-{files}_2.ckpt"))
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(ckptscope_once(&r, ranks as u64).0);
        theirs.push(find_once(&r));
    }
    let (o, f) = (median(ours), median(theirs));
    println!("scan+resolve {ranks} ranks x {files} files: ckptscope {o:.3?}, find -printf {f:.3?}, ratio {:.2}", o.as_secs_f64() / f.as_secs_f64());
}
