//! The shards still waiting for their first check, fed to the verifier pool a little at a
//! time, newest steps first across the whole tree.
//!
//! Queuing every shard of a 16,384-rank tree at once costs a job record, a path and a
//! supersede flag per shard — 150 MB for 327,680 shards, held until the last one is checked.
//! The backlog keeps one small item per folder instead, naming the steps still to check; the
//! pool's queue stays a few thousand jobs long. Folders take turns a step at a time (round 0:
//! every folder's newest step, round 1: the next …), so the steps a resume would use are
//! checked first. A folder with many steps gives up to 1/32 of its remaining files per turn:
//! a folder of 100,000 checkpoints needs a few hundred turns, not 100,000 scans of its
//! listing.

use crate::layout::mindformers::classify::{classify, EntryKind};
use crate::model::{DirNode, Entry};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// Where a file stands in "newest first" order: a weights file whose name carries no step
/// sorts before every step (nothing says it is old).
type Key = (u64, u64);

/// The key of a weights file (one parse of its name: a folder's turns parse it again each
/// time, so this is the backlog's main cost).
fn key(name: &str) -> Option<Key> {
    match classify(name) {
        EntryKind::Checkpoint { name } => Some((name.epoch, name.step)),
        k if k.is_weights() => Some((u64::MAX, u64::MAX)),
        _ => None,
    }
}

/// The least a folder gives from its third turn on.
const LATER_TURN: usize = 256;

#[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Item {
    round: u32,
    seq: u64,
    dir: Arc<str>,
    /// Only files strictly older than this are left (`None`: all of them).
    below: Option<Key>,
}

/// Folders with shards still to hand to the verifier.
#[derive(Default, Debug)]
pub struct Backlog {
    heap: BinaryHeap<Reverse<Item>>,
    seq: u64,
}

impl Backlog {
    /// Check every weights file of `dir` (again: an item already waiting for it is not
    /// removed, and the pool's per-version cache makes a repeated check cheap).
    pub fn add(&mut self, dir: &str) {
        self.push(0, dir.into(), None);
    }

    fn push(&mut self, round: u32, dir: Arc<str>, below: Option<Key>) {
        self.seq += 1;
        self.heap.push(Reverse(Item {
            round,
            seq: self.seq,
            dir,
            below,
        }));
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The next files to check, at least `want` of them when the backlog has that many:
    /// `(folder, entries)` as `node_of` lists the folder now (a folder gone meanwhile gives
    /// nothing).
    pub fn next<'t>(
        &mut self,
        want: usize,
        node_of: impl Fn(&str) -> Option<&'t DirNode>,
    ) -> Vec<(Arc<str>, Vec<Entry>)> {
        let mut out = Vec::new();
        let mut given = 0;
        while given < want {
            let Some(Reverse(item)) = self.heap.pop() else {
                break;
            };
            let Some(node) = node_of(&item.dir) else {
                continue;
            };
            let (files, rest) = turn(node, item.below, item.round);
            given += files.len();
            if let Some(below) = rest {
                self.push(item.round.saturating_add(1), item.dir.clone(), Some(below));
            }
            if !files.is_empty() {
                out.push((item.dir, files));
            }
        }
        out
    }
}

/// One folder's turn: its newest step not yet given (more steps while fewer than 1/32 of the
/// remaining files were taken), and the bound for its next turn when files remain. From the
/// third turn on, at least [`LATER_TURN`] files: the two newest steps are what a resume looks
/// at first, and every turn parses the folder's names again.
fn turn(node: &DirNode, below: Option<Key>, round: u32) -> (Vec<Entry>, Option<Key>) {
    // by index: only the files taken this turn are built as entries
    let entries = node.listing.entries();
    let mut left: Vec<(Key, usize)> = entries
        .names()
        .enumerate()
        .filter_map(|(i, n)| Some((key(&n)?, i)))
        .filter(|(k, _)| below.is_none_or(|b| *k < b))
        .collect();
    left.sort_unstable_by_key(|(k, _)| Reverse(*k));
    let share = match round {
        0 | 1 => left.len().div_ceil(32),
        _ => left.len().div_ceil(32).max(LATER_TURN),
    };
    let mut taken = 0;
    while taken < left.len() {
        let k = left[taken].0;
        while taken < left.len() && left[taken].0 == k {
            taken += 1;
        }
        if taken >= share {
            break;
        }
    }
    let rest = (taken < left.len()).then(|| left[taken - 1].0);
    let files = left.into_iter().take(taken).map(|(_, i)| entries.get(i));
    (files.collect(), rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Entries, FileKind, Listing, Stat};

    fn node(names: &[&str]) -> DirNode {
        let entries: Entries = names
            .iter()
            .map(|n| Entry::named(std::ffi::OsStr::new(n), Ok(file()), None))
            .collect();
        DirNode {
            stat: None,
            listing: Listing::Entries(entries),
            meta: None,
            probed: Vec::new(),
            control: Vec::new(),
            memo: Default::default(),
            origin: 0,
        }
    }

    fn file() -> Stat {
        Stat {
            kind: FileKind::File,
            size: 1,
            mtime_sec: 0,
            mtime_nsec: 0,
            ino: 1,
            dev: 1,
            mode: 0o644,
            ctime_ns: 0,
        }
    }

    fn names(out: &[(Arc<str>, Vec<Entry>)]) -> Vec<String> {
        out.iter()
            .flat_map(|(d, es)| es.iter().map(move |e| format!("{d}/{}", e.name)))
            .collect()
    }

    #[test]
    fn folders_take_turns_newest_step_first() {
        let a = node(&[
            "m_rank_0-1_2.ckpt",
            "m_rank_0-2_2.ckpt",
            "m_rank_0-3_2.ckpt",
            "m_rank_0-4_2.ckpt",
            "meta.json",
        ]);
        let b = node(&["m_rank_1-2_2.ckpt", "m_rank_1-1_2.ckpt"]);
        let mut q = Backlog::default();
        q.add("rank_0");
        q.add("rank_1");
        let of = |d: &str| Some(if d == "rank_0" { &a } else { &b });
        assert_eq!(
            names(&q.next(2, of)),
            ["rank_0/m_rank_0-4_2.ckpt", "rank_1/m_rank_1-2_2.ckpt"]
        );
        assert_eq!(
            names(&q.next(2, of)),
            ["rank_0/m_rank_0-3_2.ckpt", "rank_1/m_rank_1-1_2.ckpt"]
        );
        // the third turn gives the rest of the folder at once
        assert_eq!(
            names(&q.next(1, of)),
            ["rank_0/m_rank_0-2_2.ckpt", "rank_0/m_rank_0-1_2.ckpt"]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_huge_folder_gives_a_share_per_turn_and_every_file_once() {
        let names_owned: Vec<String> = (1..=1000).map(|s| format!("m_rank_0-{s}_1.ckpt")).collect();
        let refs: Vec<&str> = names_owned.iter().map(String::as_str).collect();
        let n = node(&refs);
        let mut q = Backlog::default();
        q.add("rank_0");
        let mut seen = Vec::new();
        let mut turns = 0;
        while !q.is_empty() {
            let got = names(&q.next(1, |_| Some(&n)));
            assert!(!got.is_empty());
            seen.extend(got);
            turns += 1;
        }
        assert_eq!(seen.len(), 1000);
        seen.dedup();
        assert_eq!(seen.len(), 1000, "no file twice");
        assert_eq!(seen[0], "rank_0/m_rank_0-1000_1.ckpt", "newest first");
        assert!(turns < 300, "{turns} turns for 1,000 files");
    }

    #[test]
    fn a_vanished_folder_gives_nothing() {
        let mut q = Backlog::default();
        q.add("rank_9");
        assert!(q.next(5, |_| None).is_empty());
        assert!(q.is_empty());
    }
}
