//! The verifier's results as the model keeps them: one per file version, plus what each run's
//! files carry, so a verdict is read in the context of its run (spec §9.7, §11.8).
//!
//! A shard cut exactly at a record boundary inside its tail parses and may still hold
//! `epoch_num` and `step_num`, but not `loss_scale` or `global_batch_size`. Only the other files
//! of the same run (same stem and restart suffix, on any rank) show that those entries belong
//! there: then the shard is `incomplete` (MindFormers would silently ignore a batch-size
//! change). Every view reads verdicts through [`Verdicts::judged`], so `verify`, the grid, the
//! safe pick and the TUI agree.

use super::{ShardCheck, Verdict, VerdictEntry};
use crate::layout::mindformers::names::parse_ckpt_name;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

type Run = (String, u64);

/// Verdicts by folder, then by file name: a lookup allocates nothing, and what a folder's
/// rescan drops is found in that folder alone (not by a pass over the whole tree).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdicts {
    /// Values boxed: a B-tree node then holds 11 pointers, not 11 records, which matters for
    /// the many folders that hold only the one or two verdicts the answer needed.
    map: BTreeMap<String, BTreeMap<Box<str>, Box<VerdictEntry>>>,
    len: usize,
    /// Per run: how many recorded `ok` files carry `loss_scale`, and `global_batch_size`.
    runs: HashMap<Run, (u32, u32)>,
}

fn run_of(file: &str) -> Option<Run> {
    parse_ckpt_name(file).map(|n| (n.stem, n.restart))
}

/// What a file contributes to its run's evidence.
fn carries(e: &VerdictEntry) -> (u32, u32) {
    match (&e.check.verdict, &e.check.append) {
        (Verdict::Ok, Some(a)) => (
            u32::from(a.loss_scale.is_some()),
            u32::from(a.global_batch_size.is_some()),
        ),
        _ => (0, 0),
    }
}

impl Verdicts {
    pub fn get(&self, dir: &str, file: &str) -> Option<&VerdictEntry> {
        self.map.get(dir)?.get(file).map(|b| &**b)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The verdicts of one folder (looked up once for a pass over its entries).
    pub fn in_dir(&self, dir: &str) -> Option<&BTreeMap<Box<str>, Box<VerdictEntry>>> {
        self.map.get(dir)
    }

    /// Every verdict as `((folder, file), entry)`, by folder then file name.
    pub fn iter(&self) -> impl Iterator<Item = ((&str, &str), &VerdictEntry)> {
        self.map
            .iter()
            .flat_map(|(d, m)| m.iter().map(move |(f, e)| ((d.as_str(), &**f), &**e)))
    }

    fn count(&mut self, file: &str, e: &VerdictEntry, add: bool) {
        let (ls, gbs) = carries(e);
        if ls + gbs == 0 {
            return;
        }
        let Some(run) = run_of(file) else { return };
        let c = self.runs.entry(run.clone()).or_default();
        if add {
            *c = (c.0 + ls, c.1 + gbs);
        } else {
            *c = (c.0.saturating_sub(ls), c.1.saturating_sub(gbs));
            if *c == (0, 0) {
                self.runs.remove(&run);
            }
        }
    }

    pub fn insert(&mut self, dir: String, file: String, e: VerdictEntry) {
        self.remove(&dir, &file);
        self.count(&file, &e, true);
        self.map
            .entry(dir)
            .or_default()
            .insert(file.into_boxed_str(), Box::new(e));
        self.len += 1;
    }

    pub fn remove(&mut self, dir: &str, file: &str) -> Option<VerdictEntry> {
        let m = self.map.get_mut(dir)?;
        let old = m.remove(file)?;
        if m.is_empty() {
            self.map.remove(dir);
        }
        self.len -= 1;
        self.count(file, &old, false);
        Some(*old)
    }

    /// Keep only the verdicts of folder `dir` that `keep(file, entry)` accepts.
    pub fn retain_in(&mut self, dir: &str, mut keep: impl FnMut(&str, &VerdictEntry) -> bool) {
        let gone: Vec<Box<str>> = match self.map.get(dir) {
            Some(m) => m
                .iter()
                .filter(|(f, e)| !keep(f, e))
                .map(|(f, _)| f.clone())
                .collect(),
            None => return,
        };
        for f in gone {
            self.remove(dir, &f);
        }
    }

    /// How many recorded `ok` files of `file`'s run carry `loss_scale`, `global_batch_size`.
    pub fn run_evidence(&self, file: &str) -> (u32, u32) {
        run_of(file)
            .and_then(|r| self.runs.get(&r).copied())
            .unwrap_or_default()
    }

    /// Which runs have files known to carry `loss_scale` and `global_batch_size`: what every
    /// judged verdict of a run depends on beyond its own check (a change of this can re-judge
    /// files in any folder).
    pub fn evidence(&self) -> std::collections::BTreeSet<(Run, bool, bool)> {
        self.runs
            .iter()
            .map(|(r, (a, b))| (r.clone(), *a > 0, *b > 0))
            .collect()
    }

    /// `check` (the verdict of `file`) read in the context of its run.
    pub fn judged<'a>(&self, file: &str, check: &'a ShardCheck) -> Cow<'a, ShardCheck> {
        judge(check, self.run_evidence(file))
    }
}

/// Whether an `ok` check lacks an entry its run's files may carry (then the run decides).
pub fn lacks_tail_entries(check: &ShardCheck) -> bool {
    matches!((check.verdict, &check.append), (Verdict::Ok, Some(a))
        if a.loss_scale.is_none() || a.global_batch_size.is_none())
}

/// `check` judged with its run's evidence `(ok files with loss_scale, with global_batch_size)`.
pub fn judge(check: &ShardCheck, evidence: (u32, u32)) -> Cow<'_, ShardCheck> {
    let (Verdict::Ok, Some(a)) = (check.verdict, &check.append) else {
        return Cow::Borrowed(check);
    };
    let (ls, gbs) = evidence;
    let mut missing = Vec::new();
    if ls > 0 && a.loss_scale.is_none() {
        missing.push("loss_scale");
    }
    if gbs > 0 && a.global_batch_size.is_none() {
        missing.push("global_batch_size");
    }
    if missing.is_empty() {
        return Cow::Borrowed(check);
    }
    let mut c = check.clone();
    c.verdict = Verdict::Incomplete;
    c.detail = format!("lacks {} while other files of the same run have it: cut inside its tail at a record boundary; MindFormers would silently ignore a batch-size change", missing.join(" and ")).into();
    Cow::Owned(c)
}

/// The run (stem, restart suffix) a file name belongs to.
pub fn run_key(file: &str) -> Option<(String, u64)> {
    run_of(file)
}
