//! Verifying a whole scanned tree: every weights file through the worker pool (highest
//! priority first), and `.tmp` files classified as saves in progress or abandoned. The
//! results are recorded in the model ([`crate::session::record`]), which judges each verdict
//! in the context of its run.

use super::digest::Manifest;
use super::pool::compare_manifest;
use super::verdict::{check_file, CheckOptions};
use crate::layout::mindformers::classify::{classify, EntryKind};
use crate::layout::mindformers::names::{parse_ckpt_name, Fmt};
use crate::layout::rank_dir_number;
use crate::model::{Entry, Tree};
use crate::model::{ShardCheck, ShardResult, Verdict};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What to verify.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    /// CRC and SHA-256 (reads every byte).
    pub deep: bool,
    /// Only shards named `…-E_S.<fmt>` with this (epoch, step).
    pub step: Option<(u64, u64)>,
    /// "Now", for the age of `.tmp` files.
    pub now: SystemTime,
    /// Worker threads (0: one per core).
    pub workers: usize,
}

/// A `.tmp` unchanged for this long is reported as abandoned rather than being written.
pub const TMP_SETTLE: Duration = Duration::from_secs(600);

/// Verify every shard of `tree`, whose folders are under `root` on `fs`; `priority(dir, name)`
/// orders the work (lower first); `progress(done, total)` is called as results arrive. A cheap
/// pass reuses the verdicts `tree` already holds for the current file versions.
pub fn verify_tree(
    fs: std::sync::Arc<dyn crate::fsys::Fs>,
    root: &Path,
    tree: &Tree,
    opts: &TreeOptions,
    manifest: &Manifest,
    priority: &dyn Fn(&str, &str) -> u32,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<ShardResult> {
    let mut out = Vec::new();
    let mut jobs: Vec<Pending> = Vec::new();
    // each folder's path once (not one lookup in the root listing per shard)
    let dir_paths: Vec<std::path::PathBuf> = tree
        .dirs
        .keys()
        .map(|d| tree.path_of(root, d, None))
        .collect();
    for (at, (dir, node)) in tree.dirs.iter().enumerate() {
        let rank = rank_dir_number(dir);
        for e in node.listing.entries() {
            if opts.step.is_some_and(|s| step_of(&e.name) != Some(s)) {
                continue;
            }
            if let Some(r) = tmp_report(dir, rank, e, node.listing.entries(), opts.now) {
                out.push(r);
                continue;
            }
            if !classify(&e.name).is_weights() {
                continue;
            }
            match e.stat() {
                Err(err) => out.push(report(
                    dir,
                    rank,
                    e,
                    0,
                    Verdict::Unreadable,
                    format!("cannot be examined: {}", err.text),
                )),
                Ok(st) => {
                    let expected_sha256 = match manifest.expected.is_empty() {
                        true => None,
                        false => manifest
                            .expected
                            .get(&tree.path_of(root, dir, Some(&e.name)))
                            .map(String::as_str),
                    };
                    // a cheap check of this very file version may already be in the model
                    let known = (!opts.deep && expected_sha256.is_none())
                        .then(|| tree.raw_verdict(dir, &e.name))
                        .flatten();
                    if let Some(check) = known {
                        out.push(ShardResult {
                            rank,
                            dir: dir.clone(),
                            file: e.name.to_string(),
                            check: check.clone(),
                        });
                        continue;
                    }
                    jobs.push(Pending {
                        dir,
                        dir_path: &dir_paths[at],
                        entry: e,
                        stat: st,
                        expected_sha256,
                        priority: priority(dir, &e.name),
                    });
                }
            }
        }
    }
    // what the model already knew counts as done: the total is every shard checked
    let known = out.len();
    let total = known + jobs.len();
    out.reserve_exact(jobs.len());
    progress(known, total);
    jobs.sort_by_key(|j| j.priority);
    let mut finished = known;
    run_batch(&*fs, &jobs, opts, &mut |i, check| {
        let job = &jobs[i];
        out.push(ShardResult {
            rank: rank_dir_number(job.dir),
            dir: job.dir.clone(),
            file: job.entry.name.to_string(),
            check,
        });
        finished += 1;
        progress(finished, total);
    });
    out.sort_by(|a, b| (a.rank, &a.dir, &a.file).cmp(&(b.rank, &b.dir, &b.file)));
    out
}

/// A shard to check, borrowed from the tree (a 16,384-rank tree has 300,000 of them: no
/// copies of names and paths).
struct Pending<'a> {
    dir: &'a String,
    /// The folder's path on disk.
    dir_path: &'a std::path::Path,
    entry: &'a crate::model::Entry,
    stat: &'a crate::model::Stat,
    expected_sha256: Option<&'a str>,
    priority: u32,
}

/// Check every job (sorted, highest priority first) on `opts.workers` threads, handing each
/// `(index, check)` to `done` as it finishes. A batch needs none of the live pool's machinery
/// (superseding, the per-version cache, cancellation): workers just take the next index — no
/// lock, no queue, no allocation per job; results travel in chunks (one channel wake-up per
/// [`CHUNK`] shards, not one per shard).
fn run_batch(
    fs: &dyn crate::fsys::Fs,
    jobs: &[Pending],
    opts: &TreeOptions,
    done: &mut dyn FnMut(usize, ShardCheck),
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    let workers = match opts.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        w => w,
    }
    .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Vec<(usize, ShardCheck)>>();
    std::thread::scope(|sc| {
        for _ in 0..workers {
            let (tx, next) = (tx.clone(), &next);
            sc.spawn(move || {
                let mut chunk = Vec::with_capacity(CHUNK);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let opts = CheckOptions {
                        deep: opts.deep || job.expected_sha256.is_some(),
                        expected_sha256: None,
                        cancel: None,
                    };
                    let path = job.dir_path.join(job.entry.os_name());
                    let mut check = check_file(fs, &path, job.stat, &opts);
                    compare_manifest(&mut check, job.expected_sha256);
                    chunk.push((i, check));
                    // a deep check takes long: its result goes at once, for the progress bar
                    if chunk.len() == CHUNK || opts.deep {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        if tx.send(full).is_err() {
                            return;
                        }
                    }
                }
                let _ = tx.send(chunk);
            });
        }
        drop(tx);
        for chunk in rx.iter() {
            for (i, check) in chunk {
                done(i, check);
            }
        }
    });
}

/// Results per channel message in [`run_batch`].
const CHUNK: usize = 64;

/// `(epoch, step)` of a shard name, or of the shard a `.tmp` will become (any format).
fn step_of(name: &str) -> Option<(u64, u64)> {
    let kind = classify(name);
    let n = kind
        .shard(Fmt::Ckpt)
        .or_else(|| kind.shard(Fmt::Safetensors))?;
    Some((n.epoch, n.step))
}

fn report(
    dir: &str,
    rank: Option<u64>,
    e: &Entry,
    size: u64,
    verdict: Verdict,
    detail: String,
) -> ShardResult {
    ShardResult {
        rank,
        dir: dir.into(),
        file: e.name.to_string(),
        check: ShardCheck::new(verdict, detail, size),
    }
}

/// `<stem>.tmp` next to (or instead of) its final file; `tmpXXXXXXXX` is meta.json in flight.
fn tmp_report(
    dir: &str,
    rank: Option<u64>,
    e: &Entry,
    siblings: &[Entry],
    now: SystemTime,
) -> Option<ShardResult> {
    let (meta_tmp, stem) = match classify(&e.name) {
        EntryKind::MetaTmp => (true, None),
        EntryKind::Tmp { stem } => (false, Some(stem)),
        _ => return None,
    };
    let st = e.stat().ok()?;
    let age = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64() - st.mtime_f64())
        .unwrap_or(0.0);
    let stale = age > TMP_SETTLE.as_secs_f64();
    let detail = if meta_tmp {
        if stale {
            format!(
                "meta.json replacement left behind {:.0} s ago: the writer died before renaming it",
                age
            )
        } else {
            "meta.json is being replaced".into()
        }
    } else {
        let stem = stem.unwrap_or_default();
        let stem = stem.as_str();
        let final_file = siblings.iter().find(|s| {
            *s.name == format!("{stem}.ckpt") || *s.name == format!("{stem}.safetensors")
        });
        match final_file.and_then(|f| f.stat().ok()) {
            Some(f) if f.mtime_f64() > st.mtime_f64() => format!(
                "abandoned: older than the final file {} (a crashed earlier save of the same step)",
                final_file.map_or("", |f| f.name.as_ref())
            ),
            _ if stale => format!(
                "abandoned: unchanged for {:.0} s and no newer final file (the save was killed)",
                age
            ),
            _ => "being written (its final file is not there yet)".into(),
        }
    };
    Some(ShardResult {
        rank,
        dir: dir.into(),
        file: e.name.to_string(),
        check: ShardCheck::new(Verdict::InProgress, detail, st.size),
    })
}

/// Counts per verdict, for summaries.
pub fn summary(shards: &[ShardResult]) -> std::collections::BTreeMap<&'static str, usize> {
    let mut m = std::collections::BTreeMap::new();
    for s in shards {
        *m.entry(s.check.verdict.name()).or_default() += 1;
    }
    m
}

/// The verifier's order: the files MindFormers would load first (0), then every canonical
/// shard by step, newest first (the safe candidate is the newest step intact everywhere, so it
/// comes next), then everything else. Kept as the step order and the few first files, not a
/// table of every shard (a 16,384-rank tree has hundreds of thousands).
#[derive(Clone, Debug, Default)]
pub struct Priorities {
    steps: HashMap<(u64, u64, u64), u32>,
    first: HashMap<String, String>,
}

impl Priorities {
    /// The priority of shard `name` in folder `dir` (lower first).
    pub fn of(&self, dir: &str, name: &str) -> u32 {
        if self.first.get(dir).is_some_and(|f| f == name) {
            return 0;
        }
        parse_ckpt_name(name)
            .and_then(|n| self.steps.get(&(n.restart, n.epoch, n.step)).copied())
            .unwrap_or(u32::MAX)
    }
}

pub fn priorities(
    tree: &Tree,
    mf: Option<&crate::resolve::mindformers::MfResolution>,
) -> Priorities {
    use crate::resolve::mindformers::RankResult;
    let mut steps: Vec<(u64, u64, u64)> = tree
        .dirs
        .values()
        .flat_map(|d| {
            d.listing
                .entries()
                .iter()
                .filter_map(|e| parse_ckpt_name(&e.name))
        })
        .map(|n| (n.restart, n.epoch, n.step))
        .collect();
    steps.sort_unstable_by(|a, b| b.cmp(a));
    steps.dedup();
    let steps = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32 + 1))
        .collect();
    let first = mf
        .map(|m| m.per_rank.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(r, res)| match res {
            RankResult::File(f) => Some((format!("rank_{r}"), f.clone())),
            _ => None,
        })
        .collect();
    Priorities { steps, first }
}
