//! Verifying a whole scanned tree: every weights file through the worker pool (highest
//! priority first), and `.tmp` files classified as saves in progress or abandoned. The
//! results are recorded in the model as they arrive, which judges each verdict
//! in the context of its run.

use super::digest::Manifest;
use super::pool::compare_manifest;
use super::verdict::{check_file, CheckOptions};
use crate::layout::mindformers::classify::{classify, EntryKind};
use crate::layout::mindformers::names::{parse_ckpt_name, Fmt};
use crate::layout::rank_dir_number;
use crate::model::{DirNode, Entries, Entry, Tree};
use crate::model::{ShardCheck, ShardResult, Verdict};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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

/// What verification makes of one listed entry.
enum Item {
    /// Reported as it is, never a verdict the model keeps: a `.tmp` file, a shard that cannot
    /// be examined.
    Report(ShardResult),
    /// A weights file to check; its verdict is kept in the model.
    Check(crate::model::Stat),
}

/// What `verify` does with entry `e` of folder `dir` (`None`: not its business). The plan
/// and the report both ask this, so they agree on which shards there are.
fn item(
    dir: &str,
    rank: Option<u64>,
    e: &Entry,
    siblings: &Entries,
    opts: &TreeOptions,
) -> Option<Item> {
    if opts.step.is_some_and(|s| step_of(&e.name) != Some(s)) {
        return None;
    }
    if let Some(r) = tmp_report(dir, rank, e, siblings, opts.now) {
        return Some(Item::Report(r));
    }
    if !classify(&e.name).is_weights() {
        return None;
    }
    Some(match e.stat() {
        Err(err) => Item::Report(report(
            dir,
            rank,
            e,
            0,
            Verdict::Unreadable,
            format!("cannot be examined: {}", err.text),
        )),
        Ok(st) => Item::Check(st.clone()),
    })
}

/// The shards one verification run checks, taken from a tree (its folders shared, not
/// copied), so that the run can record each result in that tree's model as it arrives: the
/// model is the one place results are kept (a 16,384-rank report used to hold its own copy of
/// 327,680 results besides the model's: 60 MB).
pub struct Plan {
    /// Folder name, its path on disk, its listing.
    folders: Vec<(String, PathBuf, Arc<DirNode>)>,
    /// Sorted by priority.
    jobs: Vec<Job>,
    /// Shards already known: reported as they are, or a verdict the model holds for the very
    /// file version.
    known: usize,
}

/// A shard to check: indices, not copies (a 16,384-rank tree has 300,000 of them).
struct Job {
    folder: u32,
    entry: u32,
    priority: u32,
}

/// The shards of `tree` (whose folders are under `root`) to verify; `priority(dir, name)`
/// orders the work (lower first). A cheap pass reuses the verdicts `tree` already holds for
/// the current file versions.
pub fn plan(
    root: &Path,
    tree: &Tree,
    opts: &TreeOptions,
    manifest: &Manifest,
    priority: &dyn Fn(&str, &str) -> u32,
) -> Plan {
    let mut plan = Plan {
        folders: Vec::with_capacity(tree.dirs.len()),
        jobs: Vec::new(),
        known: 0,
    };
    for (dir, node) in &tree.dirs {
        let at = plan.folders.len() as u32;
        let dir_path = tree.path_of(root, dir, None);
        let rank = rank_dir_number(dir);
        let entries = node.listing.entries();
        for (i, e) in entries.iter().enumerate() {
            match item(dir, rank, &e, entries, opts) {
                None => {}
                Some(Item::Report(_)) => plan.known += 1,
                Some(Item::Check(_)) => {
                    let expected = !manifest.expected.is_empty()
                        && manifest.expected.contains_key(&dir_path.join(e.os_name()));
                    // a cheap check of this very file version may already be in the model
                    if !opts.deep && !expected && tree.raw_verdict(dir, &e.name).is_some() {
                        plan.known += 1;
                        continue;
                    }
                    plan.jobs.push(Job {
                        folder: at,
                        entry: i as u32,
                        priority: priority(dir, &e.name),
                    });
                }
            }
        }
        plan.folders.push((dir.clone(), dir_path, node.clone()));
    }
    plan.jobs.sort_by_key(|j| j.priority);
    plan
}

impl Plan {
    /// The shards left to check, `(folder, file)` in the order they would be checked (what a
    /// remote root's host is asked to check).
    pub fn pending(&self) -> Vec<(String, String)> {
        self.jobs
            .iter()
            .map(|j| {
                let (dir, _, node) = &self.folders[j.folder as usize];
                (
                    dir.clone(),
                    node.listing.entries().name(j.entry as usize).to_string(),
                )
            })
            .collect()
    }

    /// Every shard this run reports (checked or known).
    pub fn total(&self) -> usize {
        self.known + self.jobs.len()
    }

    /// Check every planned shard, handing each result to `done(dir, entry, stat, check)` as it
    /// arrives; `progress(done, total)` counts what the model already knew as done.
    pub fn run(
        &self,
        fs: &dyn crate::fsys::Fs,
        opts: &TreeOptions,
        manifest: &Manifest,
        progress: &mut dyn FnMut(usize, usize),
        done: &mut dyn FnMut(&str, &Entry, &crate::model::Stat, ShardCheck),
    ) {
        let total = self.total();
        progress(self.known, total);
        let mut finished = self.known;
        let shard = |j: &Job| {
            let (dir, path, node) = &self.folders[j.folder as usize];
            (dir, path, node.listing.entries().get(j.entry as usize))
        };
        let check = |j: &Job| {
            let (_, dir_path, e) = shard(j);
            let path = dir_path.join(e.os_name());
            let expected = match manifest.expected.is_empty() {
                true => None,
                false => manifest.expected.get(&path).map(String::as_str),
            };
            let copts = CheckOptions {
                deep: opts.deep || expected.is_some(),
                expected_sha256: None,
                cancel: None,
            };
            let st = e.stat().ok()?;
            let mut check = check_file(fs, &path, st, &copts);
            compare_manifest(&mut check, expected);
            Some(check)
        };
        let workers = match opts.workers {
            0 => crate::fsys::readers(fs),
            w => w,
        };
        run_batch(&self.jobs, opts, workers, &check, &mut |i, c| {
            let (dir, _, e) = shard(&self.jobs[i]);
            if let Ok(st) = e.stat() {
                done(dir, &e, st, c);
            }
            finished += 1;
            progress(finished, total);
        });
    }
}

/// Every shard a run with `opts` reports, from the model of `tree` (in which the run recorded
/// its verdicts), by rank, folder and file name: built one folder at a time, never a list of
/// every result.
pub fn rows<'t>(tree: &'t Tree, opts: &'t TreeOptions) -> impl Iterator<Item = ShardResult> + 't {
    let mut dirs: Vec<(Option<u64>, &String, &Arc<DirNode>)> = tree
        .dirs
        .iter()
        .map(|(d, n)| (rank_dir_number(d), d, n))
        .collect();
    dirs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    dirs.into_iter().flat_map(move |(rank, dir, node)| {
        let entries = node.listing.entries();
        let in_dir = tree.verdicts.in_dir(dir);
        let mut out: Vec<ShardResult> = entries
            .iter()
            .filter_map(|e| match item(dir, rank, &e, entries, opts)? {
                Item::Report(r) => Some(r),
                Item::Check(st) => Some(ShardResult {
                    // a new-format shard names its writer's rank itself
                    rank: rank.or_else(|| {
                        crate::layout::mindformers_new::names::parse_shard_name(&e.name)
                            .map(|n| n.idx)
                    }),
                    dir: dir.clone(),
                    file: e.name.to_string(),
                    check: match tree.verdict_of(in_dir, &e) {
                        Some(c) => c.into_owned(),
                        None => ShardCheck::new(
                            Verdict::Changed,
                            "not checked: the file changed while the tree was verified; run verify again",
                            st.size,
                        ),
                    },
                }),
                })
            .collect();
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    })
}

/// Check every job (sorted, highest priority first) on `workers` threads, handing each
/// `(index, check)` to `done` as it finishes. A batch needs none of the live pool's machinery
/// (superseding, the per-version cache, cancellation): workers just take the next index — no
/// lock, no queue, no allocation per job; results travel in chunks (one channel wake-up per
/// [`CHUNK`] shards, not one per shard).
fn run_batch(
    jobs: &[Job],
    opts: &TreeOptions,
    workers: usize,
    check: &(dyn Fn(&Job) -> Option<ShardCheck> + Sync),
    done: &mut dyn FnMut(usize, ShardCheck),
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    let workers = workers.min(jobs.len().max(1));
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
                    let Some(c) = check(job) else { continue };
                    chunk.push((i, c));
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
    siblings: &Entries,
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
        match final_file.as_ref().and_then(|f| f.stat().ok()) {
            Some(f) if f.mtime_f64() > st.mtime_f64() => format!(
                "abandoned: older than the final file {} (a crashed earlier save of the same step)",
                final_file.as_ref().map_or("", |f| &*f.name)
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
