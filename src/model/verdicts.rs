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
    map: BTreeMap<String, InDir>,
    len: usize,
    /// Per run: how many recorded `ok` files carry `loss_scale`, and `global_batch_size`.
    runs: HashMap<Run, (u32, u32)>,
}

/// One folder's verdicts by file name: a short sorted list while there are few — most folders
/// hold only the one or two verdicts the answer needed, and a B-tree leaf is 280 bytes even
/// for one (16,384 folders: 4.6 MB) — and a B-tree past [`FEW`] (a folder of 100,000 verified
/// shards, where inserting into a sorted list would be quadratic).
#[derive(Clone, Debug)]
pub enum InDir {
    Few(Vec<(Box<str>, VerdictEntry)>),
    Many(BTreeMap<Box<str>, VerdictEntry>),
}

/// Equal by content, whichever form each side has (a folder that grew past [`FEW`] stays a
/// B-tree when it shrinks again).
impl PartialEq for InDir {
    fn eq(&self, o: &InDir) -> bool {
        self.iter().eq(o.iter())
    }
}

/// The most verdicts a folder keeps in a sorted list.
const FEW: usize = 32;

impl InDir {
    pub fn get(&self, file: &str) -> Option<&VerdictEntry> {
        match self {
            InDir::Few(v) => v
                .binary_search_by(|(k, _)| (**k).cmp(file))
                .ok()
                .map(|i| &v[i].1),
            InDir::Many(m) => m.get(file),
        }
    }

    /// The verdicts by file name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &VerdictEntry)> {
        let (few, many) = match self {
            InDir::Few(v) => (Some(v.iter().map(|(k, e)| (&**k, e))), None),
            InDir::Many(m) => (None, Some(m.iter().map(|(k, e)| (&**k, e)))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    /// Insert or replace; the replaced entry is returned.
    fn insert(&mut self, file: &str, e: VerdictEntry) -> Option<VerdictEntry> {
        match self {
            InDir::Few(v) => match v.binary_search_by(|(k, _)| (**k).cmp(file)) {
                Ok(i) => Some(std::mem::replace(&mut v[i].1, e)),
                Err(_) if v.len() == FEW => {
                    let mut m: BTreeMap<_, _> = std::mem::take(v).into_iter().collect();
                    m.insert(file.into(), e);
                    *self = InDir::Many(m);
                    None
                }
                Err(i) => {
                    // exactly as many as held: a folder holds one to a few (a doubling list
                    // would hold room for four 104-byte records where two are needed)
                    v.reserve_exact(1);
                    v.insert(i, (file.into(), e));
                    None
                }
            },
            InDir::Many(m) => match m.get_mut(file) {
                Some(old) => Some(std::mem::replace(old, e)),
                None => m.insert(file.into(), e),
            },
        }
    }

    fn remove(&mut self, file: &str) -> Option<VerdictEntry> {
        match self {
            InDir::Few(v) => {
                let i = v.binary_search_by(|(k, _)| (**k).cmp(file)).ok()?;
                Some(v.remove(i).1)
            }
            InDir::Many(m) => m.remove(file),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            InDir::Few(v) => v.is_empty(),
            InDir::Many(m) => m.is_empty(),
        }
    }
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
        self.map.get(dir)?.get(file)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The verdicts of one folder (looked up once for a pass over its entries).
    pub fn in_dir(&self, dir: &str) -> Option<&InDir> {
        self.map.get(dir)
    }

    /// Every verdict as `((folder, file), entry)`, by folder then file name.
    pub fn iter(&self) -> impl Iterator<Item = ((&str, &str), &VerdictEntry)> {
        self.map
            .iter()
            .flat_map(|(d, m)| m.iter().map(move |(f, e)| ((d.as_str(), f), e)))
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
        self.count(&file, &e, true);
        let old = self
            .map
            .entry(dir)
            .or_insert_with(|| InDir::Few(Vec::new()))
            .insert(&file, e);
        match old {
            Some(old) => self.count(&file, &old, false),
            None => self.len += 1,
        }
    }

    pub fn remove(&mut self, dir: &str, file: &str) -> Option<VerdictEntry> {
        let m = self.map.get_mut(dir)?;
        let old = m.remove(file)?;
        if m.is_empty() {
            self.map.remove(dir);
        }
        self.len -= 1;
        self.count(file, &old, false);
        Some(old)
    }

    /// Keep only the verdicts of folder `dir` that `keep(file, entry)` accepts.
    pub fn retain_in(&mut self, dir: &str, mut keep: impl FnMut(&str, &VerdictEntry) -> bool) {
        let gone: Vec<Box<str>> = match self.map.get(dir) {
            Some(m) => m
                .iter()
                .filter(|(f, e)| !keep(f, e))
                .map(|(f, _)| Box::from(f))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FileId;

    fn entry(n: u64) -> VerdictEntry {
        VerdictEntry {
            id: FileId {
                dev: 1,
                ino: n,
                size: n,
                mtime_ns: 0,
                ctime_ns: 0,
            },
            check: ShardCheck::new(Verdict::Ok, "ok", n),
        }
    }

    /// A folder's verdicts read the same whether kept as a short list or a B-tree, through
    /// growth past the list's size, replacement and removal, in name order.
    #[test]
    fn a_folders_verdicts_read_the_same_in_both_forms() {
        let mut v = Verdicts::default();
        let mut want = BTreeMap::new();
        // a scrambled order of 100 names, each inserted twice (the second replaces)
        for round in 0..2u64 {
            for k in (0..100u64).map(|i| (i * 37) % 100) {
                let f = format!("f{k:03}");
                v.insert("rank_0".into(), f.clone(), entry(k + round));
                assert_eq!(v.get("rank_0", &f).map(|e| e.check.size), Some(k + round));
                want.insert(f, k + round);
                assert_eq!(v.len(), want.len());
            }
        }
        assert!(matches!(v.in_dir("rank_0"), Some(InDir::Many(_))));
        for k in (0..100u64).filter(|k| k % 3 == 0) {
            let f = format!("f{k:03}");
            assert_eq!(
                v.remove("rank_0", &f).map(|e| e.check.size),
                want.remove(&f)
            );
        }
        let got: Vec<(String, u64)> = v
            .iter()
            .map(|((_, f), e)| (f.to_owned(), e.check.size))
            .collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        // a folder of few stays a list, found by name, and goes when emptied
        v.insert("rank_1".into(), "b".into(), entry(2));
        v.insert("rank_1".into(), "a".into(), entry(1));
        assert!(matches!(v.in_dir("rank_1"), Some(InDir::Few(l)) if l.len() == 2));
        assert_eq!(v.get("rank_1", "a").map(|e| e.check.size), Some(1));
        assert!(v.get("rank_1", "c").is_none());
        v.retain_in("rank_1", |_, _| false);
        assert!(v.in_dir("rank_1").is_none());
        // the same verdicts compare equal in either form
        let few = InDir::Few(vec![("a".into(), entry(1))]);
        let many = InDir::Many([("a".into(), entry(1))].into_iter().collect());
        assert_eq!(few, many);
        assert_ne!(few, InDir::Few(vec![("a".into(), entry(2))]));
    }
}
