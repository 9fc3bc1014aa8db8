//! Incremental re-resolution (issue 11): on an in-memory 8,192-rank × 200-step tree (1.6 M
//! shards), one folder changes — a new save on one rank, a shard deleted, a meta.json moving
//! on — and the session's answer and grid are brought up to date. Reported: the first full
//! computation, and the median and worst time per change.
//!
//! Run: `cargo bench --bench incremental` (env `INC_RANKS`, `INC_STEPS` change the size).

#[path = "common/tree.rs"]
mod common;

use ckptscope::fsys::RealFs;
use ckptscope::model::{Delta, Listing};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() {
    let ranks = env_or("INC_RANKS", 8192);
    let steps = env_or("INC_STEPS", 200);
    let env = ckptscope::Environment::with(&[], "/");
    let flags = ckptscope::JobFlags {
        world_size: Some(ranks),
        device_num_per_node: Some(ranks as i64),
        ..Default::default()
    };
    let ctx = ckptscope::JobContext::gather(&RealFs, &env, "/bench/checkpoint", &flags).unwrap();
    let t = Instant::now();
    let mut s = ckptscope::Session::from_tree(Arc::new(RealFs), ctx, common::tree(ranks, steps))
        .without_disk_checks();
    s.derived();
    s.grid();
    let first = t.elapsed();
    let mut times: Vec<Duration> = Vec::new();
    for i in 0..30u64 {
        let r = (i * 977) % ranks;
        let dir = format!("rank_{r}");
        // alternately: rank r saves one step more (files + meta), or loses its newest shard
        let node = if i % 2 == 0 {
            common::rank_dir(r, steps + 1)
        } else {
            let mut n = common::rank_dir(r, steps);
            if let Listing::Entries(e) = &mut n.listing {
                let newest = format!("llama_rank_{r}-{steps}_2.ckpt");
                e.retain(|x| *x.name != *newest);
            }
            n
        };
        let t = Instant::now();
        s.apply(Delta::Dir(dir, Some(node.into())));
        s.derived();
        s.grid();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{ranks} ranks × {steps} steps: first answer {first:.2?}; one folder changed: median {:.2?}, worst {:.2?} (30 changes)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
