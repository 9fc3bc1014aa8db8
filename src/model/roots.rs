//! Several roots, one job. A multi-node job whose output folder is not shared keeps `rank_0 …
//! rank_7` on node 0's disk, `rank_8 … rank_15` on node 1's, and so on: no machine holds the
//! whole picture. The rank folders of every root given are merged into one [`Tree`] (what a
//! shared folder holding them all would show: the grid, `verify` and the safe pick read it),
//! each folder remembering its root; [`Tree::node_view`] gives back one root as the training
//! node that writes it sees it (MindFormers on each node lists only its own folder).

use super::{Entry, Listing, RootState, Tree};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One root of a merged tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TreeRoot {
    /// As given on the command line (messages quote it).
    pub label: String,
    /// Where it is read (the canonical path).
    #[serde(skip)]
    pub base: PathBuf,
    /// Its own state and listing, before the merge.
    #[serde(skip)]
    pub state: RootState,
}

/// A rank folder found under more than one root: only one copy is read ([`owner_of`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conflict {
    pub dir: String,
    /// The roots holding it (indices into [`MultiRoot::roots`]): the one read, then the others
    /// in the order given.
    pub roots: Vec<u16>,
}

/// What a tree merged from several roots keeps beside its folders.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct MultiRoot {
    /// Every root in the order given; the first is the tree's own. (Each folder names its
    /// root: [`super::DirNode::origin`].)
    pub roots: Vec<TreeRoot>,
    pub conflicts: Vec<Conflict>,
}

/// Which of `n` roots a folder `name` is read from, when `holds(k, name)` says which roots
/// hold a folder of that name: the only one; for a rank folder under several, the one holding
/// most of the other folders of its node's block of `block` ranks (a stale copy left on
/// another node's disk loses to the node that runs the rank); ties and other names: the first.
pub fn owner_of(
    name: &str,
    n: usize,
    block: usize,
    holds: impl Fn(usize, &str) -> bool,
) -> Option<usize> {
    let holders: Vec<usize> = (0..n).filter(|&k| holds(k, name)).collect();
    if holders.len() <= 1 {
        return holders.first().copied();
    }
    let Some(r) = crate::layout::rank_dir_number(name) else {
        return holders.first().copied();
    };
    let block = block.max(1) as u64;
    let start = (r / block) * block;
    let score = |k: usize| {
        (start..start.saturating_add(block))
            .filter(|&o| o != r && holds(k, &format!("rank_{o}")))
            .count()
    };
    // the highest score; on a tie the earlier root
    holders
        .iter()
        .copied()
        .max_by(|&a, &b| score(a).cmp(&score(b)).then(b.cmp(&a)))
}

/// The merged root listing of roots in `states` (the first is the job's own), `owners` being
/// every folder name with the root it is read from, in name order: the first root's listing,
/// each name's entry from the root it is read from, then root by root the other roots'
/// folders, each name once. A first root that is missing, not a folder or unlistable stays
/// what it is (its node's answer says so).
pub(crate) fn merged_listing(states: &[&RootState], owners: &[(String, usize)]) -> RootState {
    let Some(RootState::Dir(Listing::Entries(es))) = states.first() else {
        return states.first().map_or(RootState::Missing, |s| (*s).clone());
    };
    let find = |k: usize, name: &str| match states.get(k) {
        Some(RootState::Dir(l)) => l.find(name),
        _ => None,
    };
    let owned = |name: &str| owners.iter().find(|(d, _)| d == name).map(|(_, k)| *k);
    let mut entries: Vec<Entry> = es
        .iter()
        .map(|e| match owned(&e.name) {
            Some(k) if k > 0 => find(k, &e.name).unwrap_or(e),
            _ => e,
        })
        .collect();
    for k in 1..states.len() {
        for (name, _) in owners.iter().filter(|(_, o)| *o == k) {
            if es.find(name).is_none() {
                entries.extend(find(k, name));
            }
        }
    }
    RootState::Dir(Listing::Entries(entries.into()))
}

/// A conflict's roots: the one read first, then the others in the order given.
pub(crate) fn conflict_order(owner: usize, holders: &[usize]) -> Vec<u16> {
    std::iter::once(owner)
        .chain(holders.iter().copied().filter(|&k| k != owner))
        .map(|k| u16::try_from(k).unwrap_or(u16::MAX))
        .collect()
}

/// Whether the root listing `state` has an entry called `name`.
pub(crate) fn base_listing_has(state: &RootState, name: &str) -> bool {
    matches!(state, RootState::Dir(l) if l.find(name).is_some())
}

impl Tree {
    /// Merge the trees of further roots (each with the path it was read from) into this one,
    /// read from `base`. A folder under several roots is read from one ([`owner_of`], with
    /// `block` ranks per node); the clash is kept in [`MultiRoot::conflicts`]. The root
    /// listing gains the other roots' folder entries, so every reader sees one root holding
    /// every rank folder, each name once.
    pub fn merge_roots(self, base: &Path, others: Vec<(Tree, PathBuf)>, block: usize) -> Tree {
        if others.is_empty() {
            return self;
        }
        let mut all = vec![(self, base.to_path_buf())];
        all.extend(others);
        let n = all.len();
        let holds = |k: usize, name: &str| all[k].0.dirs.contains_key(name);
        let names: std::collections::BTreeSet<&String> =
            all.iter().flat_map(|(t, _)| t.dirs.keys()).collect();
        let mut owners: Vec<(String, usize)> = Vec::new();
        let mut conflicts = Vec::new();
        for name in names {
            let listed = base_listing_has(&all[0].0.state, name);
            let owner = match listed && !holds(0, name) {
                // the first root lists it as something else (a file called rank_8)
                true => 0,
                false => owner_of(name, n, block, holds).unwrap_or(0),
            };
            let holders: Vec<usize> = (0..n)
                .filter(|&k| holds(k, name) || (k == 0 && listed))
                .collect();
            if holders.len() > 1 {
                conflicts.push(Conflict {
                    dir: name.clone(),
                    roots: conflict_order(owner, &holders),
                });
            }
            owners.push((name.clone(), owner));
        }
        let mut trees = all.into_iter();
        let (mut first, base) = trees.next().unwrap_or_default();
        let others: Vec<(Tree, PathBuf)> = trees.collect();
        let mut multi = MultiRoot {
            roots: std::iter::once(TreeRoot {
                label: first.root.clone(),
                base,
                state: first.state.clone(),
            })
            .chain(others.iter().map(|(t, b)| TreeRoot {
                label: t.root.clone(),
                base: b.clone(),
                state: t.state.clone(),
            }))
            .collect(),
            conflicts,
        };
        multi.conflicts.sort_by(|a, b| a.dir.cmp(&b.dir));
        let mut dirs = std::collections::BTreeMap::new();
        for (name, k) in &owners {
            let node = match k {
                0 => first.dirs.get(name).cloned(),
                k => others[k - 1].0.dirs.get(name).map(|n| {
                    let mut n = (**n).clone();
                    n.origin = *k as u16;
                    std::sync::Arc::new(n)
                }),
            };
            if let Some(node) = node {
                dirs.insert(name.clone(), node);
            }
        }
        let states: Vec<&RootState> = std::iter::once(&first.state)
            .chain(others.iter().map(|(t, _)| &t.state))
            .collect();
        first.state = merged_listing(&states, &owners);
        first.dirs = dirs;
        first.multi = Some(Box::new(multi));
        first
    }

    /// The roots of a merged tree (empty for a tree of one root).
    pub fn roots(&self) -> &[TreeRoot] {
        self.multi.as_ref().map_or(&[], |m| &m.roots)
    }

    /// The rank folders found under more than one root.
    pub fn conflicts(&self) -> &[Conflict] {
        self.multi.as_ref().map_or(&[], |m| &m.conflicts)
    }

    /// The root folder `dir` was read from (0: the first, or the only one).
    pub fn origin(&self, dir: &str) -> u16 {
        self.dirs.get(dir).map_or(0, |n| n.origin)
    }

    /// Root `k` of a merged tree.
    fn root_of(&self, dir: &str) -> Option<&TreeRoot> {
        // (a tree of one root — every live pass — answers without a lookup)
        let m = self.multi.as_ref()?;
        m.roots.get(usize::from(self.dirs.get(dir)?.origin))
    }

    /// The root folder `dir` is under, as given (the tree's own for a tree of one root).
    pub fn label_of(&self, dir: &str) -> &str {
        self.root_of(dir).map_or(&self.root, |r| &r.label)
    }

    /// Where folder `dir` is read: its root's path, or `base` for the first root's folders.
    pub(crate) fn base_of<'a>(&'a self, base: &'a Path, dir: &str) -> &'a Path {
        match self.root_of(dir) {
            Some(r) if self.origin(dir) != 0 => &r.base,
            _ => base,
        }
    }

    /// Root `k` alone, as the node that writes it sees it: its own listing and folders under
    /// its own name (the first root keeps the root's control files). `None` when the tree has
    /// no root `k`.
    pub fn node_view(&self, k: u16) -> Option<Tree> {
        let r = self.roots().get(usize::from(k))?;
        Some(Tree {
            root: r.label.clone(),
            state: r.state.clone(),
            dirs: self
                .dirs
                .iter()
                .filter(|(d, _)| self.origin(d) == k)
                .map(|(d, n)| (d.clone(), n.clone()))
                .collect(),
            root_files: match k {
                0 => self.root_files.clone(),
                _ => Default::default(),
            },
            verdicts: Default::default(),
            multi: None,
            host_paths: None,
        })
    }
}
