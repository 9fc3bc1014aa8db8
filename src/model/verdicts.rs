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

type Key = (String, String);
type Run = (String, u64);

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdicts {
    map: BTreeMap<Key, VerdictEntry>,
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
        self.map.get(&(dir.to_owned(), file.to_owned()))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &VerdictEntry)> {
        self.map.iter()
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
        self.map.insert((dir, file), e);
    }

    pub fn remove(&mut self, dir: &str, file: &str) -> Option<VerdictEntry> {
        let old = self.map.remove(&(dir.to_owned(), file.to_owned()))?;
        self.count(file, &old, false);
        Some(old)
    }

    /// Keep only the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Key, &VerdictEntry) -> bool) {
        let gone: Vec<Key> = self
            .map
            .iter()
            .filter(|(k, v)| !keep(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for (d, f) in gone {
            self.remove(&d, &f);
        }
    }

    /// How many recorded `ok` files of `file`'s run carry `loss_scale`, `global_batch_size`.
    pub fn run_evidence(&self, file: &str) -> (u32, u32) {
        run_of(file)
            .and_then(|r| self.runs.get(&r).copied())
            .unwrap_or_default()
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
    c.detail = format!("lacks {} while other files of the same run have it: cut inside its tail at a record boundary; MindFormers would silently ignore a batch-size change", missing.join(" and "));
    Cow::Owned(c)
}

/// The run (stem, restart suffix) a file name belongs to.
pub fn run_key(file: &str) -> Option<(String, u64)> {
    run_of(file)
}
