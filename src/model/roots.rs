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

/// A rank folder found under more than one root: only the first root's is read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conflict {
    pub dir: String,
    /// The roots holding it (indices into [`MultiRoot::roots`]), the one read first.
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

/// Whether the root listing `state` has an entry called `name`.
pub(crate) fn base_listing_has(state: &RootState, name: &str) -> bool {
    matches!(state, RootState::Dir(l) if l.find(name).is_some())
}

impl Tree {
    /// Merge the trees of further roots (each with the path it was read from) into this one,
    /// read from `base`. A folder already present stays the first root's; the clash is kept
    /// in [`MultiRoot::conflicts`]. The root listing gains the other roots' folder entries, so
    /// every reader sees one root holding every rank folder.
    pub fn merge_roots(mut self, base: &Path, others: Vec<(Tree, PathBuf)>) -> Tree {
        if others.is_empty() {
            return self;
        }
        let mut multi = MultiRoot {
            roots: vec![TreeRoot {
                label: self.root.clone(),
                base: base.to_path_buf(),
                state: self.state.clone(),
            }],
            ..Default::default()
        };
        let mut added: Vec<Entry> = Vec::new();
        for (i, (other, base)) in others.into_iter().enumerate() {
            let k = u16::try_from(i + 1).unwrap_or(u16::MAX);
            for (name, node) in &other.dirs {
                // a folder of that name read already, or an entry of that name in the first
                // root (a file called rank_8): one name, one entry
                let held = match self.dirs.get(name) {
                    Some(n) => Some(n.origin),
                    None => base_listing_has(&self.state, name).then_some(0),
                };
                if let Some(first) = held {
                    match multi.conflicts.iter_mut().find(|c| &c.dir == name) {
                        Some(c) => c.roots.push(k),
                        None => multi.conflicts.push(Conflict {
                            dir: name.clone(),
                            roots: vec![first, k],
                        }),
                    }
                    continue;
                }
                added.extend(other.root_entry(name));
                let mut node = (**node).clone();
                node.origin = k;
                self.dirs.insert(name.clone(), node.into());
            }
            multi.roots.push(TreeRoot {
                label: other.root.clone(),
                base,
                state: other.state,
            });
        }
        // the first root's listing gains the others' folders; a first root that is missing,
        // not a folder or unlistable stays what it is (its node's answer says so)
        if let RootState::Dir(Listing::Entries(es)) = &self.state {
            if !added.is_empty() {
                let mut entries: Vec<Entry> = es.iter().collect();
                entries.extend(added);
                self.state = RootState::Dir(Listing::Entries(entries.into()));
            }
        }
        // by name, as a watch keeps them
        multi.conflicts.sort_by(|a, b| a.dir.cmp(&b.dir));
        self.multi = Some(Box::new(multi));
        self
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
        let k = self.dirs.get(dir)?.origin;
        self.multi.as_ref()?.roots.get(usize::from(k))
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
        })
    }
}
