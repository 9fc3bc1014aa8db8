//! What polling an `s3://` root costs (issue 14): a bucket of 131,072 objects (2,048 rank
//! folders × 63 checkpoints + `meta.json`) behind `s3s`'s S3 protocol layer on 127.0.0.1 (an
//! in-memory bucket, `common/memstore.rs`: the tests' `s3s-fs` takes minutes per listing at
//! this size), reached through a counting TCP proxy so that the bytes are the ones on the
//! wire. Measured: the first listing and scan (requests, bytes, seconds), a poll of
//! the unchanged bucket, and a poll after one `meta.json` was rewritten — the steady state
//! lists the root again (S3 has no "changed since" listing) and reads only what changed.
//!
//! Run: `cargo bench --bench s3_poll` (env `S3_RANKS`, `S3_STEPS` change the size;
//! `S3_LATENCY_MS` adds a store's own time to every request).

#[path = "common/memstore.rs"]
mod memstore;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "../tests/it/common/s3server.rs"]
#[allow(dead_code)]
mod s3server;

use ckptscope::fsys::{Fs, RealFs};
use ckptscope::objstore::store::Client;
use ckptscope::objstore::{JobFs, S3Settings, S3Url};
use proxy::{proxy, Wire};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// The bucket's objects, in the store's map (uploading 131,072 objects one request each would
/// measure the upload, not the poll).
fn fill(mem: &memstore::Mem, ranks: usize, steps: usize) -> usize {
    let shard = bytes::Bytes::from(ckptscope::writer::ckpt::small_shard(1));
    let t0 = SystemTime::now() - Duration::from_secs(86_400);
    let mut map = mem.objects.write().expect("map");
    for r in 0..ranks {
        let dir = format!("run/checkpoint/rank_{r}");
        for s in 1..=steps {
            let key = format!("{dir}/llama_rank_{r}-{s}_1.ckpt");
            map.insert(
                key,
                (shard.clone(), t0 + Duration::from_secs(s as u64 * 60)),
            );
        }
        let meta = format!("{{\"last_epoch\": {steps}, \"last_step\": 1, \"last_ckpt_file\": \"llama_rank_{r}-{steps}_1.ckpt\"}}");
        map.insert(format!("{dir}/meta.json"), (meta.into(), t0));
    }
    map.len()
}

struct Cost {
    list: u64,
    get: u64,
    head: u64,
    up: u64,
    down: u64,
    secs: f64,
}

fn counts(fs: &JobFs, wire: &Wire) -> [u64; 5] {
    let c = fs.stores()[0].client();
    [
        c.counters.list_requests.load(Relaxed),
        c.counters.get_requests.load(Relaxed),
        c.counters.head_requests.load(Relaxed),
        wire.up.load(Relaxed),
        wire.down.load(Relaxed),
    ]
}

fn measure(fs: &JobFs, wire: &Wire, f: impl FnOnce()) -> Cost {
    let before = counts(fs, wire);
    let t = Instant::now();
    f();
    let secs = t.elapsed().as_secs_f64();
    let after = counts(fs, wire);
    let d = |i: usize| after[i] - before[i];
    Cost {
        list: d(0),
        get: d(1),
        head: d(2),
        up: d(3),
        down: d(4),
        secs,
    }
}

fn show(what: &str, c: &Cost) {
    println!(
        "{what:<44} {:>4} LIST {:>5} GET {:>2} HEAD  {:>9} B up {:>11} B down  {:>7.3} s",
        c.list, c.get, c.head, c.up, c.down, c.secs
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let ranks = env_or("S3_RANKS", 2048);
    let steps = env_or("S3_STEPS", 63);
    let mem = memstore::Mem {
        latency: Duration::from_millis(env_or("S3_LATENCY_MS", 0) as u64),
        ..Default::default()
    };
    let objects = mem.objects.clone();
    let n = fill(&mem, ranks, steps);
    let (endpoint, _rt) = s3server::serve(mem);
    println!("{n} objects ({ranks} rank folders × {steps} checkpoints + meta.json) in s3://bench/run/checkpoint, {} ms added per request", env_or("S3_LATENCY_MS", 0));
    let wire = Arc::new(Wire::default());
    let endpoint = format!(
        "http://{}",
        proxy(
            endpoint.trim_start_matches("http://").to_owned(),
            wire.clone()
        )
    );
    let settings = S3Settings {
        endpoint: Some(endpoint),
        region: "us-east-1".into(),
    };
    let url = S3Url::parse("s3://bench/run/checkpoint")
        .expect("url")
        .expect("valid");
    let creds = || {
        s3::creds::Credentials::new(
            Some(s3server::ACCESS_KEY),
            Some(s3server::SECRET_KEY),
            None,
            None,
            None,
        )
        .expect("credentials")
    };
    let fs = JobFs::build(Arc::new(RealFs), std::slice::from_ref(&url), |b| {
        Client::with_credentials(b, &settings, creds())
    })
    .expect("store");
    let root = Path::new(&url.label).to_path_buf();
    let first = measure(&fs, &wire, || {
        fs.stores()[0].listed().expect("listed");
    });
    show("first listing (a full poll)", &first);
    let mut tree = None;
    let scan = measure(&fs, &wire, || {
        tree = Some(ckptscope::scan::scan_at(&fs, &root, &url.label));
    });
    show("first scan from it (every meta.json read)", &scan);
    let tree = tree.expect("scanned");
    assert_eq!(tree.dirs.len(), ranks, "every rank folder seen");
    let poll = |fs: &JobFs, tree: &ckptscope::model::Tree| {
        fs.refresh(&root).expect("a store").expect("listed");
        for (name, node) in &tree.dirs {
            let _ = ckptscope::scan::rescan_dir(fs, &root.join(name), Some(node));
        }
    };
    let first_poll = measure(&fs, &wire, || poll(&fs, &tree));
    show("a watch's first poll (the scan's listing)", &first_poll);
    assert_eq!(first_poll.list, 0, "the first scan's listing is reused");
    std::thread::sleep(Duration::from_millis(150));
    let mut steady = Vec::new();
    for _ in 0..3 {
        steady.push(measure(&fs, &wire, || poll(&fs, &tree)));
        std::thread::sleep(Duration::from_millis(150));
    }
    steady.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    show("poll, nothing changed (median of 3)", &steady[1]);
    objects.write().expect("map").insert(
        "run/checkpoint/rank_7/meta.json".into(),
        (
            "{\"last_epoch\": 1, \"last_step\": 1, \"last_ckpt_file\": \"llama_rank_7-1_1.ckpt\"}"
                .into(),
            SystemTime::now(),
        ),
    );
    let changed = measure(&fs, &wire, || poll(&fs, &tree));
    show("poll after one meta.json was rewritten", &changed);
    assert_eq!(changed.get, 1, "only the changed object is read");
    println!(
        "a poll lists {} keys per request: {} requests for {n} objects",
        n.div_ceil(steady[1].list.max(1) as usize),
        steady[1].list
    );
}
