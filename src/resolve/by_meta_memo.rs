//! `get_resume_ckpt_list`'s grouping on compact, memoised candidates. The reference path
//! ([`super::by_meta::collect_groups`]) parses every name of every rank folder into Python
//! integers on each computation — 1.6 M names on 8,192 ranks × 200 steps, most of the time a
//! live view spends after a change. Here each folder's candidates (entry, epoch, step, rank
//! id) are parsed once per listing and kept in the folder's [`crate::model::Memo`]; a change
//! re-parses one folder. The answer, the log and every error are the reference path's: a folder
//! whose numbers do not fit 32 bits, or whose rank id does not parse, sends the whole
//! computation down the reference path (`None`), and the property test in this module holds
//! the two paths to the same output.

use super::view::View;
use crate::layout::mindformers::names::{epoch_and_step, rank_id, Fmt};
use crate::model::{Entries, Name};
use crate::py::int::PyInt;
use crate::py::text::slice_before_last;
use crate::py::PyException;

/// A candidate of one folder: its entry, epoch, step and rank id.
#[derive(Clone, Copy, Debug)]
struct Cand {
    idx: u32,
    epoch: u32,
    step: u32,
    rank: u32,
}

/// What one folder gives for one set of parameters.
#[derive(Debug)]
enum Folder {
    Compact(Vec<Cand>),
    /// The first error its names raise (`epoch_and_step`), in listing order.
    Error(PyException),
    /// Numbers too large or a rank id that does not parse: the reference path decides.
    Wide,
}

fn small(v: &PyInt) -> Option<u32> {
    v.to_i64().and_then(|v| u32::try_from(v).ok())
}

/// The folder's candidates, as `collect_groups` reads them (prefix, suffix, then the parse).
fn extract(
    entries: &Entries,
    pr: &str,
    wide: &str,
    health: bool,
    suffix: &str,
    fmt: Fmt,
) -> Folder {
    let mut out = Vec::new();
    for (i, name) in entries.names().enumerate() {
        let name = &*name;
        let matches = name.starts_with(pr) || (health && name.starts_with(wide));
        if !(matches && name.ends_with(suffix)) {
            continue;
        }
        let (ep, st) = match epoch_and_step(name, fmt) {
            Ok(x) => x,
            Err(e) => return Folder::Error(e),
        };
        let Ok(rank) = rank_id(name) else {
            return Folder::Wide;
        };
        let (Some(epoch), Some(step), Some(rank), Ok(idx)) =
            (small(&ep), small(&st), small(&rank), u32::try_from(i))
        else {
            return Folder::Wide;
        };
        out.push(Cand {
            idx,
            epoch,
            step,
            rank,
        });
    }
    Folder::Compact(out)
}

/// A group: `(rank id, entry index, folder entries)` in the order the reference path collects
/// them; a name is read only when it is needed (a group's first file), not 1.6 M times.
pub type Group<'a> = Vec<(u32, u32, &'a Entries)>;

/// The name of a group member.
pub fn name_of(m: &(u32, u32, &Entries)) -> Name {
    match (m.1 as usize) < m.2.len() {
        true => m.2.name(m.1 as usize),
        false => Name::new(""),
    }
}

/// An `(epoch, step)` key and the index of its group.
type KeyGroup = ((u32, u32), usize);

/// The groups of `collect_groups`, or `None` when the reference path must decide.
pub fn groups<'a>(
    v: &View<'a>,
    prefix: &str,
    original: &PyInt,
    last: (&PyInt, &PyInt),
    n: usize,
    fmt: Fmt,
    health: bool,
) -> Option<Result<Vec<Group<'a>>, PyException>> {
    let (last_e, last_s) = (last.0.to_i64()?, last.1.to_i64()?);
    let suffix = format!(".{}", fmt.ext());
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut index: hashbrown::HashMap<(u32, u32), usize> = Default::default();
    // the previous folder's keys and their groups, in order: ranks save the same steps, so
    // the k-th key of a folder is nearly always the previous folder's k-th (no hashing)
    let (mut prev, mut cur): (Vec<KeyGroup>, Vec<KeyGroup>) = Default::default();
    for r in 0..n {
        let f = match super::by_meta::rank_folder(v, prefix, original, r) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        let (pr, wide, dir, entries) = (
            &f.prefix,
            slice_before_last(&f.prefix, '_'),
            &f.dir,
            f.entries,
        );
        let node = v.tree.dirs.get(dir)?;
        let key = format!("by_meta\0{pr}\0{wide}\0{health}\0{suffix}");
        let folder = node
            .memo
            .get_or(&key, || extract(entries, pr, wide, health, &suffix, fmt));
        let cands = match &*folder {
            Folder::Wide => return None,
            Folder::Error(e) => return Some(Err(e.clone())),
            Folder::Compact(c) => c,
        };
        cur.clear();
        for c in cands {
            let (e, s) = (i64::from(c.epoch), i64::from(c.step));
            if !(e < last_e || (e == last_e && s <= last_s)) {
                continue;
            }
            let key = (c.epoch, c.step);
            let g = match prev.get(cur.len()) {
                Some(&(k, g)) if k == key => g,
                _ => *index.entry(key).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                }),
            };
            cur.push((key, g));
            groups[g].push((c.rank, c.idx, entries));
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(Ok(groups))
}

/// `check_checkpoints_by_rank` on a compact group: sorted by rank id (stable), `true` when the
/// ids are exactly `0 … n−1`; else a "not found" line per missing id, as MindFormers logs them.
pub fn check_by_rank(files: &mut Group, n: usize, log: &mut Vec<String>) -> bool {
    if files.is_empty() {
        return false;
    }
    files.sort_by_key(|f| f.0);
    let mut ids: Vec<u32> = files.iter().map(|f| f.0).collect();
    ids.dedup();
    if ids.len() == n && ids.last().map(|&l| i64::from(l)) == Some(n as i64 - 1) {
        return true;
    }
    let (id0, first) = (ids[0], name_of(&files[0]));
    for i in 0..n {
        if u32::try_from(i).map_or(true, |i| ids.binary_search(&i).is_err()) {
            log.push(format!(
                "{} is not found.",
                first.replace(&format!("rank_{id0}"), &format!("rank_{i}"))
            ));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::by_meta::{resume_ckpt_list, resume_ckpt_list_reference};
    use super::*;
    use crate::model::{DirNode, Entry, FileKind, Listing, RootState, Stat, Tree};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn stat(kind: FileKind) -> Stat {
        Stat {
            kind,
            size: 1,
            mtime_sec: 1,
            mtime_nsec: 0,
            ino: 1,
            dev: 1,
            mode: 0o644,
            ctime_ns: 0,
        }
    }

    fn tree(folders: &[Vec<String>]) -> Tree {
        let entry = |n: &str, k| Entry::named(std::ffi::OsStr::new(n), Ok(stat(k)), None);
        let mut dirs = std::collections::BTreeMap::new();
        let mut root = Vec::new();
        for (r, names) in folders.iter().enumerate() {
            let d = format!("rank_{r}");
            root.push(entry(&d, FileKind::Dir));
            let node = DirNode {
                stat: None,
                listing: Listing::Entries(names.iter().map(|n| entry(n, FileKind::File)).collect()),
                meta: None,
                probed: Vec::new(),
                control: Vec::new(),
                memo: Default::default(),
                origin: 0,
            };
            dirs.insert(d, Arc::new(node));
        }
        Tree {
            root: "/job/ckpt".into(),
            state: RootState::Dir(Listing::Entries(root.into_iter().collect())),
            dirs,
            root_files: Default::default(),
            verdicts: Default::default(),
            multi: None,
            host_paths: None,
        }
    }

    /// Names a rank folder may hold: its own shards, another rank's, another run's, leading
    /// zeros, numbers past 32 bits, an exception save, names that only look like shards.
    fn name(rank: usize) -> impl Strategy<Value = String> {
        let n = prop_oneof![
            8 => (1u64..6).prop_map(|v| v.to_string()),
            1 => Just("007".to_string()),
            1 => Just("4294967296".to_string()),
            1 => Just("99999999999999999999999".to_string()),
        ];
        let r =
            prop_oneof![6 => Just(rank.to_string()), 1 => (0usize..4).prop_map(|r| r.to_string())];
        let stem = prop_oneof![4 => Just("llama"), 1 => Just("llama_b"), 1 => Just("gpt")];
        prop_oneof![
            10 => (stem, r, n.clone(), n).prop_map(|(p, r, e, s)| format!("{p}_rank_{r}-{e}_{s}.ckpt")),
            1 => (1u64..6).prop_map(move |e| format!("llama_rank_{rank}-{e}_2_breakpoint.ckpt")),
            1 => Just("llama_rank_x-1_1.ckpt".to_string()),
            1 => Just(format!("llama_rank_{rank}-3_2.safetensors")),
            1 => Just("meta.json".to_string()),
        ]
    }

    fn folders() -> impl Strategy<Value = Vec<Vec<String>>> {
        (1usize..5).prop_flat_map(|n| {
            (0..n)
                .map(|r| prop::collection::vec(name(r), 0..8))
                .collect::<Vec<_>>()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn the_memoised_path_answers_and_logs_as_the_reference(
            folders in folders(),
            last in (1u64..6, 1u64..6),
            health in any::<bool>(),
        ) {
            let t = tree(&folders);
            let n = folders.len();
            let base = format!("llama_rank_0-{}_{}.ckpt", last.0, last.1);
            let v = View::new(&t);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let fast = resume_ckpt_list(&v, &base, n, Fmt::Ckpt, health, &mut a);
            let slow = resume_ckpt_list_reference(&v, &base, n, Fmt::Ckpt, health, &mut b);
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(&a, &b);
            // and again from the memo
            let mut c = Vec::new();
            prop_assert_eq!(&resume_ckpt_list(&v, &base, n, Fmt::Ckpt, health, &mut c), &slow);
            prop_assert_eq!(&c, &b);
        }
    }
}
