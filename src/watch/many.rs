//! Watching a job given as several roots (each node's copy of the checkpoint folder): one
//! watcher per root, merged into the stream one watcher sends — for the merged tree
//! ([`Tree::merge_roots`]). The watchers decide nothing; this only keeps the merge rule (a
//! folder is the first root's that holds it; the others' copies are named conflicts) while
//! folders come and go, and routes requests to the root that holds each folder.

use super::run::{spawn, Request, WatchConfig, WatchHandle, WatchMsg};
use super::Mode;
use crate::model::{Conflict, Delta, DirNode, Listing, MultiRoot, RootState, Tree, TreeRoot};
use crossbeam_channel::{unbounded, Select, Sender};
use std::collections::BTreeMap;
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Watch every root of `cfgs` (the first is the job's own) as one tree, `block` ranks per node
/// (which root a folder under several is read from: [`crate::model::roots::owner_of`]). One
/// root: [`spawn`]. No root: a handle whose only message says so.
pub fn spawn_many(mut cfgs: Vec<WatchConfig>, block: usize) -> WatchHandle {
    if cfgs.len() == 1 {
        return spawn(cfgs.remove(0));
    }
    let (out, events) = unbounded();
    let (requests, req_rx) = unbounded::<Request>();
    let stopping = Arc::new(AtomicBool::new(false));
    let thread = std::thread::spawn(move || {
        if cfgs.is_empty() {
            let _ = out.send(WatchMsg::Failed(super::WatchError::Died {
                why: "no folder to watch was given".into(),
            }));
            return;
        }
        let children: Vec<WatchHandle> = cfgs.iter().cloned().map(spawn).collect();
        let mut m = Merge::new(&cfgs, block);
        if let Err(msg) = m.start(&children) {
            let _ = out.send(msg);
            children.into_iter().for_each(WatchHandle::stop);
            return;
        }
        let _ = out.send(WatchMsg::Started {
            tree: Box::new(m.tree()),
            mode: m.mode.clone().unwrap_or(Mode::Inotify { poll_secs: 30.0 }),
        });
        // a panic here is reported, never swallowed (as a single watcher's is)
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            m.follow(&children, &req_rx, &out)
        }));
        if run.is_err() {
            let _ = out.send(WatchMsg::Failed(super::WatchError::Died {
                why: "merging the roots' changes failed (a panic)".into(),
            }));
        }
        children.into_iter().for_each(WatchHandle::stop);
    });
    WatchHandle {
        events,
        requests,
        stopping,
        thread: Some(thread),
    }
}

/// What the merge keeps of each root.
struct Root {
    /// As given (messages and headers name it: an `ssh://` URL for a remote root).
    label: String,
    /// The path as MindFormers on its node is given it (the tree's `root`): the label, for a
    /// local root.
    root: String,
    /// Its host's path facts (a remote root's `hello`): the first root's are the job's.
    host_paths: Option<Box<crate::resolve::config::PathFacts>>,
    base: PathBuf,
    state: RootState,
    dirs: BTreeMap<String, Arc<DirNode>>,
    root_files: BTreeMap<String, crate::model::FileRead>,
    /// How this root is watched now.
    mode: Option<Mode>,
}

struct Merge {
    roots: Vec<Root>,
    /// Ranks per node.
    block: usize,
    mode: Option<Mode>,
    /// Folders whose owner changed (`(new owner, folder)`): their verdicts came from the old
    /// owner's copy, so the new owner's watcher is asked to check them.
    reverify: Vec<(usize, String)>,
}

impl Merge {
    fn new(cfgs: &[WatchConfig], block: usize) -> Merge {
        Merge {
            block,
            roots: cfgs
                .iter()
                .map(|c| Root {
                    label: c.label.clone(),
                    root: c.label.clone(),
                    host_paths: None,
                    base: c.root.clone(),
                    state: RootState::Missing,
                    dirs: BTreeMap::new(),
                    root_files: BTreeMap::new(),
                    mode: None,
                })
                .collect(),
            mode: None,
            reverify: Vec::new(),
        }
    }

    /// Every watcher's first scan (the first failure ends the watch, naming its root).
    fn start(&mut self, children: &[WatchHandle]) -> Result<(), WatchMsg> {
        for (k, c) in children.iter().enumerate() {
            match c.events.recv() {
                Ok(WatchMsg::Started { tree, mode }) => {
                    let r = &mut self.roots[k];
                    r.root = tree.root;
                    r.host_paths = tree.host_paths;
                    r.state = tree.state;
                    r.dirs = tree.dirs;
                    r.root_files = tree.root_files;
                    r.mode = Some(mode);
                    self.mode = self.view_mode();
                }
                Ok(WatchMsg::Failed(e)) => {
                    return Err(WatchMsg::Failed(super::WatchError::Died {
                        why: format!("{}: {e}", self.roots[k].label),
                    }))
                }
                _ => {
                    return Err(WatchMsg::Failed(super::WatchError::Died {
                        why: format!("{}: no first scan", self.roots[k].label),
                    }))
                }
            }
        }
        Ok(())
    }

    /// The view's mode: the first polled root's (one polled root makes the view polled), else
    /// the first root's.
    fn view_mode(&self) -> Option<Mode> {
        let modes = self.roots.iter().filter_map(|r| r.mode.as_ref());
        // a root that is not watched at all (its connection is down) says most of the view
        let lost = modes
            .clone()
            .find(|m| matches!(m, Mode::Disconnected { .. }));
        let polled = modes.clone().find(|m| matches!(m, Mode::Poll { .. }));
        lost.or(polled).or(self.roots[0].mode.as_ref()).cloned()
    }

    /// The root that holds folder `dir` (the first that has it), if any; a name the first
    /// root lists as something else (a file called rank_8) is the first root's.
    fn owner(&self, dir: &str) -> Option<usize> {
        let holds = |k: usize, d: &str| self.roots[k].dirs.contains_key(d);
        match crate::model::roots::base_listing_has(&self.roots[0].state, dir) && !holds(0, dir) {
            true => Some(0),
            false => crate::model::roots::owner_of(dir, self.roots.len(), self.block, holds),
        }
    }

    /// The folders whose owner a change of `dir` can move: it and the other rank folders of
    /// its node's block, on any root.
    fn block_of(&self, dir: &str) -> Vec<String> {
        let Some(r) = crate::layout::rank_dir_number(dir) else {
            return vec![dir.to_owned()];
        };
        let b = self.block.max(1) as u64;
        let start = (r / b) * b;
        let mut out: Vec<String> = (start..start.saturating_add(b))
            .map(|o| format!("rank_{o}"))
            .filter(|d| d == dir || self.roots.iter().any(|x| x.dirs.contains_key(d)))
            .collect();
        if !out.iter().any(|d| d == dir) {
            out.push(dir.to_owned());
        }
        out
    }

    /// Folder `dir` as the merged tree holds it: its owner's, marked with the owner's index.
    fn merged_dir(&self, dir: &str) -> Option<Arc<DirNode>> {
        let k = self.owner(dir)?;
        let node = self.roots[k].dirs.get(dir)?;
        Some(match node.origin == k as u16 {
            true => node.clone(),
            false => {
                let mut n = (**node).clone();
                n.origin = k as u16;
                Arc::new(n)
            }
        })
    }

    /// The merged tree (as [`Tree::merge_roots`] builds it).
    fn tree(&self) -> Tree {
        let one = |r: &Root| Tree {
            root: r.root.clone(),
            state: r.state.clone(),
            dirs: r.dirs.clone(),
            root_files: r.root_files.clone(),
            verdicts: Default::default(),
            multi: None,
            host_paths: r.host_paths.clone(),
        };
        let others = self.roots[1..]
            .iter()
            .map(|r| (one(r), r.base.clone()))
            .collect();
        let mut t = one(&self.roots[0]).merge_roots(&self.roots[0].base, others, self.block);
        // (each root named as given: a remote root by its URL, not its path there)
        if let Some(m) = t.multi.as_mut() {
            for (tr, r) in m.roots.iter_mut().zip(&self.roots) {
                tr.label.clone_from(&r.label);
            }
        }
        t
    }

    /// The merged root listing: the first root's, plus each other root's entries for the
    /// folders it owns.
    fn merged_state(&self) -> RootState {
        let names: std::collections::BTreeSet<&String> =
            self.roots.iter().flat_map(|r| r.dirs.keys()).collect();
        let owners: Vec<(String, usize)> = names
            .into_iter()
            .filter_map(|d| Some((d.clone(), self.owner(d)?)))
            .collect();
        let states: Vec<&RootState> = self.roots.iter().map(|r| &r.state).collect();
        crate::model::roots::merged_listing(&states, &owners)
    }

    fn multi(&self) -> MultiRoot {
        let mut names: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for (k, r) in self.roots.iter().enumerate() {
            for d in r.dirs.keys() {
                let ks = names.entry(d).or_default();
                // the first root lists it as something else (a file called rank_8)
                let listed = crate::model::roots::base_listing_has(&self.roots[0].state, d);
                if ks.is_empty() && k > 0 && listed {
                    ks.push(0);
                }
                ks.push(k as u16);
            }
        }
        MultiRoot {
            roots: self
                .roots
                .iter()
                .map(|r| TreeRoot {
                    label: r.label.clone(),
                    base: r.base.clone(),
                    state: r.state.clone(),
                })
                .collect(),
            conflicts: names
                .into_iter()
                .filter(|(_, ks)| ks.len() > 1)
                .map(|(d, ks)| {
                    let holders: Vec<usize> = ks.iter().map(|&k| usize::from(k)).collect();
                    let owner = self.owner(d).unwrap_or(0);
                    Conflict {
                        dir: d.to_owned(),
                        roots: crate::model::roots::conflict_order(owner, &holders),
                    }
                })
                .collect(),
        }
    }

    /// Root `k`'s change as changes of the merged tree.
    fn translate(&mut self, k: usize, d: Delta, out: &mut Vec<Delta>) {
        match d {
            Delta::Dir(name, node) => {
                let mates = self.block_of(&name);
                let before: Vec<Option<usize>> = mates.iter().map(|d| self.owner(d)).collect();
                let existed = self.roots[k].dirs.contains_key(&name);
                let exists = node.is_some();
                match node {
                    Some(n) => self.roots[k].dirs.insert(name.clone(), n),
                    None => self.roots[k].dirs.remove(&name),
                };
                let mut moved = false;
                for (d, was) in mates.iter().zip(before) {
                    let now = self.owner(d);
                    if let Some(j) = now.filter(|_| was != now) {
                        self.reverify.push((j, d.clone()));
                    }
                    // the changed folder itself when its root is the one read, and any folder
                    // whose root moved
                    if (d == &name && (was == Some(k) || now == Some(k))) || was != now {
                        out.push(Delta::Dir(d.clone(), self.merged_dir(d)));
                        moved |= was != now;
                    }
                }
                // the listings and the conflicts change only when a folder comes or goes, or is
                // read from another root (a folder's own times come as `RootEntry`): not on
                // each of the many writes inside a folder
                if existed != exists || moved {
                    out.push(Delta::Root(self.merged_state()));
                    out.push(Delta::Roots(Box::new(self.multi())));
                }
            }
            Delta::Root(state) => {
                self.roots[k].state = state;
                out.push(Delta::Root(self.merged_state()));
                out.push(Delta::Roots(Box::new(self.multi())));
            }
            Delta::RootEntry(e) => {
                if let RootState::Dir(Listing::Entries(es)) = &mut self.roots[k].state {
                    es.replace(e.clone());
                }
                if self.owner(&e.name) == Some(k) || (k == 0 && self.owner(&e.name).is_none()) {
                    out.push(Delta::RootEntry(e));
                } else {
                    // a copy not read (a conflict): only its root's own listing moved
                    out.push(Delta::Roots(Box::new(self.multi())));
                }
            }
            Delta::RootFile(name, read) => {
                match &read {
                    Some(r) => self.roots[k].root_files.insert(name.clone(), r.clone()),
                    None => self.roots[k].root_files.remove(&name),
                };
                if k == 0 {
                    out.push(Delta::RootFile(name, read));
                }
            }
            Delta::Verdict(v) => {
                if self.owner(&v.dir) == Some(k) {
                    out.push(Delta::Verdict(v));
                }
            }
            Delta::Roots(_) => {}
        }
    }

    /// Checks asked for, each sent to the watcher of the root holding its folder (`hash`: whole
    /// files).
    fn route(&self, children: &[WatchHandle], files: Vec<(String, String)>, hash: bool) {
        let mut by_root: Vec<Vec<(String, String)>> = vec![Vec::new(); children.len()];
        for (d, f) in files {
            if let Some(k) = self.owner(&d) {
                by_root[k].push((d, f));
            }
        }
        for (c, fs) in children.iter().zip(by_root) {
            match (fs.is_empty(), hash) {
                (true, _) => {}
                (false, true) => c.hash_now(fs),
                (false, false) => c.verify_now(fs),
            }
        }
    }

    /// Forward the watchers' messages (translated) and the listener's requests (routed) until
    /// asked to stop or the listener goes away.
    fn follow(
        &mut self,
        children: &[WatchHandle],
        requests: &crossbeam_channel::Receiver<Request>,
        out: &Sender<WatchMsg>,
    ) {
        loop {
            let mut sel = Select::new();
            for c in children {
                sel.recv(&c.events);
            }
            let req = sel.recv(requests);
            let op = sel.select();
            let i = op.index();
            if i == req {
                match op.recv(requests) {
                    Ok(Request::Resync) => children.iter().for_each(WatchHandle::resync),
                    Ok(Request::Verify(files)) => self.route(children, files, false),
                    Ok(Request::Hash(files)) => self.route(children, files, true),
                    Ok(Request::Stop) | Err(_) => return,
                }
                continue;
            }
            let label = self.roots[i].label.clone();
            let msg = match op.recv(&children[i].events) {
                Ok(m) => m,
                Err(_) => WatchMsg::Failed(super::WatchError::Died {
                    why: format!("{label}: its watcher's channel closed"),
                }),
            };
            let forward = match msg {
                WatchMsg::Deltas(ds) => {
                    let mut merged = Vec::new();
                    ds.into_iter()
                        .for_each(|d| self.translate(i, d, &mut merged));
                    (!merged.is_empty()).then_some(WatchMsg::Deltas(merged))
                }
                WatchMsg::Mode { mode, reason } => {
                    // one root's mode changed: the view's changes only if it is now another
                    self.roots[i].mode = Some(mode);
                    let now = self.view_mode();
                    (now != self.mode).then(|| {
                        self.mode = now.clone();
                        WatchMsg::Mode {
                            mode: now.unwrap_or(Mode::Inotify { poll_secs: 30.0 }),
                            reason: format!("{label}: {reason}"),
                        }
                    })
                }
                WatchMsg::Rescan { reason } => Some(WatchMsg::Rescan {
                    reason: format!("{label}: {reason}"),
                }),
                WatchMsg::Failed(e) => Some(WatchMsg::Failed(super::WatchError::Died {
                    why: format!("{label}: {e}"),
                })),
                WatchMsg::Started { .. } => None,
            };
            for (j, dir) in std::mem::take(&mut self.reverify) {
                let files: Vec<(String, String)> = self.roots[j]
                    .dirs
                    .get(&dir)
                    .map(|n| {
                        n.listing
                            .entries()
                            .names()
                            .filter(|f| f.ends_with(".ckpt") || f.ends_with(".safetensors"))
                            .map(|f| (dir.clone(), f.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                if !files.is_empty() {
                    children[j].verify_now(files);
                }
            }
            if let Some(m) = forward {
                let failed = matches!(m, WatchMsg::Failed(_));
                if out.send(m).is_err() || failed {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(n: usize) -> Merge {
        let root = |k: usize| Root {
            label: format!("r{k}"),
            root: format!("r{k}"),
            host_paths: None,
            base: PathBuf::from(format!("/r{k}")),
            state: RootState::Missing,
            dirs: BTreeMap::new(),
            root_files: BTreeMap::new(),
            mode: None,
        };
        Merge {
            roots: (0..n).map(root).collect(),
            block: 8,
            mode: None,
            reverify: Vec::new(),
        }
    }

    /// One polled root makes the view polled; when it is watched again, the view is too.
    #[test]
    fn the_view_is_as_watched_as_its_least_watched_root() {
        let mut m = merge(3);
        let inotify = Mode::Inotify { poll_secs: 30.0 };
        let poll = Mode::Poll {
            interval_secs: 10.0,
            reason: "NFS".into(),
            degraded: false,
        };
        for r in &mut m.roots {
            r.mode = Some(inotify.clone());
        }
        assert_eq!(m.view_mode(), Some(inotify.clone()));
        m.roots[2].mode = Some(poll.clone());
        assert_eq!(m.view_mode(), Some(poll));
        m.roots[2].mode = Some(inotify.clone());
        assert_eq!(m.view_mode(), Some(inotify));
    }

    /// A stale copy of a rank folder on another node's root loses to the rank's own node; a
    /// name the first root lists as a file stays the first root's.
    #[test]
    fn a_folder_is_read_from_its_nodes_root() {
        let mut m = merge(2);
        let node = || {
            Arc::new(crate::scan::scan_dir(
                &crate::fsys::RealFs,
                Path::new("/nonexistent"),
            ))
        };
        for r in 8..16 {
            m.roots[1].dirs.insert(format!("rank_{r}"), node());
        }
        m.roots[0].dirs.insert("rank_9".into(), node());
        m.roots[0].dirs.insert("rank_0".into(), node());
        assert_eq!(m.owner("rank_9"), Some(1));
        assert_eq!(m.owner("rank_0"), Some(0));
        assert_eq!(m.owner("rank_20"), None);
    }
}
