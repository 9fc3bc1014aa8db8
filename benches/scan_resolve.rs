//! Benchmark: job context, full scan and the session's analysis (MindFormers' resolution, data
//! skip, warnings, safe pick) of a synthetic tree of 4,096 ranks × 50 checkpoint files +
//! meta.json each (valid small `.ckpt` files, see `common/disk.rs`), against
//! `find ROOT -printf '%s %T@ %p\n'` over the same tree in the same run (both warm-cache,
//! median of several alternating runs).
//!
//! Run: `cargo bench --bench scan_resolve` (env `CKPTSCOPE_BENCH_RANKS`, `..._FILES`,
//! `..._ROUNDS` to change the size). The tree is generated once under the system temp folder.

#[path = "common/disk.rs"]
mod disk;

use ckptscope::fsys::RealFs;
use ckptscope::resolve::mindformers::RankResult;
use ckptscope::{Environment, JobContext, JobFlags, Session};
use disk::generate;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// The job context every command gathers, for a `ranks`-rank job whose folder is shared.
fn context(root: &str, ranks: u64) -> JobContext {
    let flags = JobFlags {
        world_size: Some(ranks),
        shared_paths: Some(root.into()),
        ..Default::default()
    };
    let env = Environment::with(&[], "/");
    JobContext::gather(&RealFs, &env, root, &flags).expect("job context")
}

/// Scan, then the session's whole analysis (MindFormers, data skip, warnings, and the safe
/// pick with the cheap check of every shard it needs) — what `resolve` does.
fn ckptscope_once(root: &str, ranks: u64) -> (Duration, RankResult) {
    let t = Instant::now();
    let ctx = context(root, ranks);
    let mut session = Session::open(Arc::new(RealFs), ctx);
    let scanned = t.elapsed();
    let pick = session.analysis().mindformers.per_rank[0].clone();
    if std::env::var_os("CKPTSCOPE_BENCH_SPLIT").is_some() {
        let total = t.elapsed();
        let t2 = Instant::now();
        let ctx = session.ctx();
        let inputs = ckptscope::resolve::mindformers::Inputs {
            tree: session.tree(),
            config: &ctx.config,
            env: &ctx.env,
            paths: &ctx.paths,
        };
        let _ = ckptscope::resolve::mindformers::resolve(&inputs);
        eprintln!(
            "  scan {scanned:.3?}, analyze {:.3?} (of which the resolver alone {:.3?})",
            total - scanned,
            t2.elapsed()
        );
    }
    (t.elapsed(), pick)
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
        let ctx = context(&r, ranks as u64);
        let tree = ckptscope::scan::scan(&RealFs, &r);
        for _ in 0..n {
            let _ = ckptscope::resolve::mindformers::resolve(
                &ckptscope::resolve::mindformers::Inputs {
                    tree: &tree,
                    config: &ctx.config,
                    env: &ctx.env,
                    paths: &ctx.paths,
                },
            );
        }
        return;
    }
    let (_, pick) = ckptscope_once(&r, ranks as u64); // warm the cache
    find_once(&r);
    assert_eq!(
        pick,
        RankResult::File(format!("llama_rank_0-{files}_2.ckpt"))
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(ckptscope_once(&r, ranks as u64).0);
        theirs.push(find_once(&r));
    }
    let (o, f) = (median(ours), median(theirs));
    println!("scan+resolve {ranks} ranks x {files} files: ckptscope {o:.3?}, find -printf {f:.3?}, ratio {:.2}", o.as_secs_f64() / f.as_secs_f64());
}
