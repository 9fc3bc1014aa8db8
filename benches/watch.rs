//! Watcher benchmarks (figures in the README):
//! 1. latency from `rename(tmp → final)` to the session's `shard_added` event (watcher, delta,
//!    session diff): inotify (p50/p95/p99) and polling only (max, against the interval);
//! 2. cost on the 4,096 × 51-file tree of `benches/scan_resolve.rs` (208,896 files): CPU used
//!    while idle with inotify, and per poll interval when polling only.
//!
//! Run: `cargo bench --bench watch` (run `cargo bench --bench scan_resolve` first for part 2).

use ckptscope::fsys::RealFs;
use ckptscope::watch::{spawn, WatchConfig, WatchHandle, WatchMsg};
use ckptscope::{Environment, Event, JobContext, Session};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A watcher on `root` and the session it feeds (as `watch --ndjson` runs them).
fn start(root: &Path, poll: Duration, poll_only: bool, verify: bool) -> (WatchHandle, Session) {
    let env = Environment::with(&[], root.parent().unwrap());
    let ctx = JobContext::gather(&RealFs, &env, root.as_os_str(), &Default::default()).unwrap();
    let mut cfg =
        WatchConfig::for_job(&ctx, Arc::new(RealFs), Some(poll.as_secs_f64()), poll_only).unwrap();
    cfg.verify = verify;
    let h = spawn(cfg);
    let Ok(WatchMsg::Started { tree, .. }) = h.events.recv() else {
        panic!("the watcher did not start")
    };
    let s = Session::from_tree(Arc::new(RealFs), ctx, *tree);
    (h, s)
}

/// CPU time (user + system) of this process so far.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // fields 14 and 15 (utime, stime) are at positions 11 and 12 after the state field
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Rename `n` finished files into place, `gap` apart; return rename → event latencies.
fn latencies(poll_only: bool, poll: Duration, n: usize, gap: Duration) -> Vec<Duration> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    for r in 0..8 {
        std::fs::create_dir_all(root.join(format!("rank_{r}"))).unwrap();
    }
    let (h, mut session) = start(&root, poll, poll_only, false);
    let renamed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (w_root, w_renamed) = (root.clone(), renamed.clone());
    let writer = std::thread::spawn(move || {
        for i in 0..n {
            let dir = w_root.join(format!("rank_{}", i % 8));
            let name = format!("llama_rank_{}-{}_2.ckpt", i % 8, i + 1);
            std::fs::write(
                dir.join(format!("llama_rank_{}-{}_2.tmp", i % 8, i + 1)),
                b"x",
            )
            .unwrap();
            let t = Instant::now();
            std::fs::rename(
                dir.join(format!("llama_rank_{}-{}_2.tmp", i % 8, i + 1)),
                dir.join(&name),
            )
            .unwrap();
            w_renamed.lock().unwrap().insert(name, t);
            std::thread::sleep(gap);
        }
    });
    let mut out = Vec::new();
    let deadline = Instant::now() + gap * n as u32 + poll * 2 + Duration::from_secs(2);
    while out.len() < n && Instant::now() < deadline {
        let Ok(msg) = h.events.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        session.absorb(msg).unwrap();
        for e in session.drain_events() {
            if let Event::ShardAdded {
                file,
                kind: "checkpoint",
                ..
            } = e
            {
                let at = Instant::now();
                if let Some(t) = renamed.lock().unwrap().get(&file) {
                    out.push(at - *t);
                }
            }
        }
    }
    writer.join().unwrap();
    h.stop();
    out
}

fn main() {
    let l = latencies(
        false,
        Duration::from_secs(30),
        400,
        Duration::from_millis(25),
    );
    println!(
        "inotify: {} renames, latency p50 {:.1?}, p95 {:.1?}, p99 {:.1?}, max {:.1?}",
        l.len(),
        pct(l.clone(), 0.5),
        pct(l.clone(), 0.95),
        pct(l.clone(), 0.99),
        pct(l, 1.0)
    );
    let interval = Duration::from_secs(1);
    let l = latencies(true, interval, 30, Duration::from_millis(170));
    println!(
        "poll only ({interval:?}): {} renames, latency p50 {:.1?}, max {:.1?}",
        l.len(),
        pct(l.clone(), 0.5),
        pct(l, 1.0)
    );
    let big = std::env::temp_dir().join("ckptscope-bench-4096x50");
    if !big.join(".complete-4096-50").exists() {
        println!(
            "(run `cargo bench --bench scan_resolve` first for the 208,896-file cost figures)"
        );
        return;
    }
    for (poll_only, poll, idle) in [
        (false, Duration::from_secs(30), Duration::from_secs(35)),
        (true, Duration::from_secs(10), Duration::from_secs(30)),
    ] {
        let t = Instant::now();
        let (h, _session) = start(&big, poll, poll_only, false);
        let ready = t.elapsed();
        std::thread::sleep(Duration::from_secs(1));
        let c0 = cpu();
        std::thread::sleep(idle);
        let used = cpu() - c0;
        h.stop();
        let mode = if poll_only { "poll only" } else { "inotify" };
        let passes = (idle.as_secs_f64() / poll.as_secs_f64()).floor().max(1.0);
        println!(
            "{mode} (interval {poll:?}) on 208,896 files: snapshot after {ready:.2?}; idle {idle:?} used {used:.2?} CPU = {:.2}% of one core (≈{:.2?} per reconcile pass)",
            100.0 * used.as_secs_f64() / idle.as_secs_f64(),
            used / passes as u32
        );
    }
}
