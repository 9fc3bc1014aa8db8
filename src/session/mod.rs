//! The session: the one place where answers are computed.
//!
//! ```text
//!  flags + environment + YAML + mount table ──JobContext::gather──▶ JobContext ─┐
//!  disk ──scan──▶ Tree ◀── Delta ── watcher (hints + reconcile poll, verifier pool)│
//!                   │                                                            │
//!        Overlay ───┤ (simulated edits)                                          │
//!                   ▼                                                            ▼
//!              Session::derived() ── resolve::analyze (MindFormers, data skip, warnings, safe)
//!                   │                     + GridModel
//!        ┌──────────┼───────────┬─────────────┬───────────┐
//!   resolve --json  grid     verify       watch --ndjson   TUI, demo
//! ```
//!
//! A session owns the model (`Tree`), the simulation overlay and the job context. Commands
//! are thin views of it: none builds a context or runs a resolver itself. Live consumers feed
//! it the watcher's deltas; it turns them into events and recomputes the answer only when the
//! view changed.
//!
//! Shard content comes from the model's verdicts; a shard the resolvers need that has no
//! verdict yet is checked on the spot (the cheap structure walk) and the result recorded, so
//! the answer never depends on how far the background verifier has come.

pub(crate) mod changes;
pub mod events;
mod remote;
pub use remote::Every;

use crate::fsys::Fs;
use crate::grid::model::{GridModel, SimMarks};
use crate::job::JobContext;
use crate::layout::rank_dir_number;
use crate::model::{judge, lacks_tail_entries, run_key, Delta, FileId, ShardCheck, Tree, Verified};
use crate::report::json::Resolution;
use crate::resolve::config::ResumeConfig;
use crate::resolve::context::RunSettings;
use crate::resolve::{analyze, Analysis, ShardFacts};
use crate::sim::{Overlay, SimView};
use crate::verify::digest::Manifest;
use crate::verify::tree::{plan, priorities, TreeOptions};
use crate::verify::verdict::{check_file, CheckOptions};
use crate::watch::{WatchError, WatchMsg};
use events::Event;
use std::cell::RefCell;
use std::sync::Arc;

/// At most this many other files of a run are checked when a file lacks tail entries.
const SIBLINGS_CHECKED: usize = 64;

/// Verdicts found during one computation (recorded in the model afterwards), and the runs
/// whose evidence was already sought.
#[derive(Default)]
struct Fresh {
    verdicts: RefCell<crate::model::Verdicts>,
    searched: RefCell<std::collections::HashSet<(String, u64)>>,
    /// Shards the answer needs that were not read (deferred checks).
    wanted: RefCell<std::collections::BTreeSet<(String, String)>>,
    /// Every shard the answer asked about, whatever it learnt: a verdict on any of them later
    /// may change the answer.
    asked: RefCell<std::collections::HashSet<u64>>,
}

/// A shard's key in [`Derived`]'s set of examined shards: a hash, not the two names (a
/// 16,384-rank answer examines 30,000 shards: 5 MB as names, 0.5 MB as hashes). A collision
/// can only make a verdict look relevant and cost one recomputation, never hide a change;
/// the seed is random per process, so a tree cannot be named to collide.
fn shard_key(dir: &str, file: &str) -> u64 {
    use std::hash::BuildHasher;
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    SEED.get_or_init(Default::default).hash_one((dir, file))
}

/// How a session gets the content of shards its answer needs that have no verdict yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskChecks {
    /// Read them at once (one-shot commands, the NDJSON stream): the answer is complete.
    Now,
    /// Never on the caller's thread: they are listed ([`Session::take_wanted`]) for the
    /// verifier, and the answer says how many are still being checked (the TUI, which must
    /// never wait on a disk).
    Deferred,
    /// Not at all: the model has no files behind it (in-memory trees in tests).
    Never,
}

/// The answers for the current view.
pub struct Derived {
    pub real: Analysis,
    /// The simulated view and its analysis, when any edit is active.
    pub sim: Option<(SimView, Analysis)>,
    /// Shards the answers need that are still being checked (deferred checks): until this is
    /// 0, the safe pick and the data skip are provisional.
    pub pending: usize,
    /// Every shard the answers read (checked or waited for): a verdict on any other shard
    /// cannot change them — only its grid cell.
    examined: std::collections::HashSet<u64>,
}

impl Derived {
    /// The analysis shown as "now": simulated when edits are active.
    pub fn current(&self) -> &Analysis {
        self.sim.as_ref().map_or(&self.real, |(_, a)| a)
    }
}

pub struct Session {
    fs: Arc<dyn Fs>,
    ctx: JobContext,
    tree: Tree,
    /// While frozen, views show this copy; the live model keeps following the disk.
    frozen: Option<Tree>,
    overlay: Overlay,
    disk_checks: DiskChecks,
    /// Shards the last computation needed without a verdict, and those already handed to the
    /// verifier (by file version, so a changed file is asked for again).
    wanted: Vec<(String, String)>,
    requested: std::collections::HashSet<(String, String, FileId)>,
    derived: Option<Derived>,
    grid: Option<GridModel>,
    /// Rows of `grid` to fill again before it is shown (folders that changed without changing
    /// the columns): the rest of the grid stands.
    stale_rows: std::collections::BTreeSet<u64>,
    /// Counts every change of the grid (rebuilt or rows refreshed): views that derive something
    /// from the grid recompute it only when this moves.
    grid_stamp: u64,
    events: EventLog,
}

/// The events queued for [`Session::drain_events`]; a headless command that never drains them
/// switches the log off ([`Session::without_events`]), so a verify of 300,000 shards does not
/// build and keep 300,000 events nobody reads.
#[derive(Debug, Default)]
struct EventLog {
    off: bool,
    list: Vec<Event>,
}

impl EventLog {
    fn on(&self) -> bool {
        !self.off
    }

    fn push(&mut self, e: Event) {
        if !self.off {
            self.list.push(e);
        }
    }

    fn extend(&mut self, es: impl IntoIterator<Item = Event>) {
        if !self.off {
            self.list.extend(es);
        }
    }
}

impl Session {
    /// Scan the context's root and start a session on it.
    pub fn open(fs: Arc<dyn Fs>, ctx: JobContext) -> Session {
        let tree = crate::scan::scan_at(&*fs, &ctx.canonical, &ctx.root);
        let more = ctx
            .more_roots
            .iter()
            .map(|m| {
                let t = crate::scan::scan_at(&*fs, &m.canonical, &m.root);
                (t, m.canonical.clone())
            })
            .collect();
        let tree = tree.merge_roots(&ctx.canonical, more, ctx.node_block());
        Session::from_tree(fs, ctx, tree)
    }

    /// A session on a tree that was already scanned (the watcher's first snapshot).
    pub fn from_tree(fs: Arc<dyn Fs>, mut ctx: JobContext, mut tree: Tree) -> Session {
        // a first root on another host: its path facts are the ones its node sees
        if let Some(p) = tree.host_paths.take() {
            ctx.paths = *p;
        }
        Session {
            fs,
            ctx,
            tree,
            frozen: None,
            overlay: Overlay::default(),
            disk_checks: DiskChecks::Now,
            wanted: Vec::new(),
            requested: Default::default(),
            derived: None,
            grid: None,
            stale_rows: Default::default(),
            grid_stamp: 0,
            events: EventLog::default(),
        }
    }

    /// A session whose model has no files behind it (an in-memory tree): shards without a
    /// verdict stay unknown instead of being read.
    pub fn without_disk_checks(self) -> Session {
        self.with_disk_checks(DiskChecks::Never)
    }

    pub fn with_disk_checks(mut self, how: DiskChecks) -> Session {
        self.disk_checks = how;
        self
    }

    /// The shards the answer needs that are neither verified nor yet asked for (deferred
    /// checks): hand them to the verifier at top priority. Nothing new is asked while earlier
    /// asks are unanswered: an answer computed meanwhile counts those shards as unusable and
    /// wants older saves as fallbacks, which their verdicts usually make needless — then the
    /// newest save first ([`Session::newest_first`]). Over ssh a 128-rank `resolve` asked 5,703
    /// checks in 201 rounds for the 244 the answer reads (a healthy 32-rank job now asks its
    /// newest save's 32 in one round: `tests/it/remote.rs`).
    pub fn take_wanted(&mut self) -> Vec<(String, String)> {
        self.forget_answered();
        if !self.requested.is_empty() {
            // (kept: the answer after their verdicts replaces it when it is computed again,
            // and what it still holds is asked once they are in)
            return Vec::new();
        }
        let now = self.newest_first();
        self.request(now)
    }

    /// Forget requests for versions that have a verdict now or are gone.
    fn forget_answered(&mut self) {
        let tree = &self.tree;
        self.requested.retain(|(d, f, id)| {
            tree.raw_verdict(d, f).is_none()
                && tree
                    .dirs
                    .get(d)
                    .and_then(|n| n.listing.entries().file_id(f))
                    == Some(*id)
        });
    }

    /// Of the wanted shards, the newest wanted save's — asked on every rank folder at once:
    /// the answer wants a save intact on every rank, and asked as it wants them, a rank at a
    /// time, it took a round trip per rank (6 s for 128 ranks through sshd) — and each
    /// folder's newest other wanted save (an older one MindFormers itself picks for a rank,
    /// on an mtime tie). The rest is dropped: the next answer wants it again if it must.
    fn newest_first(&mut self) -> Vec<(String, String)> {
        let group = |d: &str| if d.starts_with("iteration_") { "" } else { d }.to_owned();
        let mut newest: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for (d, f) in &self.wanted {
            if let Some(k) = save_of(d, f) {
                let e = newest.entry(group(d)).or_insert(k);
                *e = (*e).max(k);
            }
        }
        let mut now: Vec<(String, String)> = std::mem::take(&mut self.wanted)
            .into_iter()
            .filter(|(d, f)| save_of(d, f).is_none_or(|k| newest.get(&group(d)) == Some(&k)))
            .collect();
        let Some(top) = newest.values().max().copied() else {
            return now;
        };
        let weights = |n: &str| crate::layout::mindformers::classify::classify(n).is_weights();
        for (dir, node) in &self.tree.dirs {
            now.extend(
                node.listing
                    .entries()
                    .iter()
                    .filter(|e| save_of(dir, &e.name) == Some(top) && weights(&e.name))
                    .filter(|e| self.tree.raw_verdict(dir, &e.name).is_none())
                    .map(|e| (dir.clone(), e.name.to_string())),
            );
        }
        now
    }

    /// Note `list` as asked for (each file version once): what is new in it, to hand over.
    pub(crate) fn request(&mut self, list: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (dir, file) in list {
            let id = self
                .tree
                .dirs
                .get(&dir)
                .and_then(|d| d.listing.entries().file_id(&file));
            if let Some(id) = id {
                if self.requested.insert((dir.clone(), file.clone(), id)) {
                    out.push((dir, file));
                }
            }
        }
        out
    }

    /// How many checks asked for (through [`Session::take_wanted`]) have no verdict yet.
    pub fn outstanding(&self) -> usize {
        self.requested.len()
    }

    pub fn ctx(&self) -> &JobContext {
        &self.ctx
    }

    pub fn fs(&self) -> &Arc<dyn Fs> {
        &self.fs
    }

    /// The live model (always current, frozen or not).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// What views show: the frozen copy while frozen, else the live model.
    pub fn shown_tree(&self) -> &Tree {
        self.frozen.as_ref().unwrap_or(&self.tree)
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// Freeze what views show (the live model keeps following the disk), or thaw: views then
    /// show the live model, every change made meanwhile included.
    pub fn set_frozen(&mut self, frozen: bool) {
        if frozen == self.frozen.is_some() {
            return;
        }
        self.frozen = frozen.then(|| self.tree.clone());
        self.invalidate();
    }

    /// Apply a change confirmed by a rescan (or a verifier result); the events it caused are
    /// queued for [`Session::drain_events`].
    pub fn apply(&mut self, delta: Delta) {
        let changed = delta_changes(&self.tree, &delta);
        match delta {
            Delta::Verdict(v) => return self.apply_verdict(v, changed),
            Delta::Dir(dir, node) => {
                let old = self.tree.dirs.get(&dir).cloned();
                let events = changes::dir_events(&dir, old.as_deref(), node.as_deref());
                self.events.extend(events);
                let evidence = self.tree.verdicts.evidence();
                self.tree.apply(Delta::Dir(dir.clone(), node.clone()));
                if changed && self.frozen.is_none() {
                    // verdicts dropped with the folder's old files may re-judge other folders'
                    if self.tree.verdicts.evidence() != evidence {
                        return self.invalidate();
                    }
                    self.folder_changed(&dir, old.as_deref(), node.as_deref());
                }
                return;
            }
            Delta::RootFile(name, read) => {
                if changed {
                    self.events
                        .push(changes::control_changed("", &name, read.as_ref()));
                }
                self.tree.apply(Delta::RootFile(name, read));
            }
            root => self.tree.apply(root),
        }
        if changed && self.frozen.is_none() {
            self.invalidate();
        }
    }

    /// A folder of the live model changed: the answers are computed again, and the grid keeps
    /// everything but that folder's row when its columns and rows stay (see
    /// [`GridModel::folder_changed`]) and no simulation is shown.
    fn folder_changed(
        &mut self,
        dir: &str,
        old: Option<&crate::model::DirNode>,
        new: Option<&crate::model::DirNode>,
    ) {
        self.derived = None;
        let simulated = !self.overlay.is_empty();
        let change = match self.grid.as_mut() {
            Some(g) if !simulated => g.folder_changed(dir, old, new),
            _ => crate::grid::model::FolderChange::Rebuild,
        };
        self.grid_stamp += 1; // columns may have changed in place
        match change {
            crate::grid::model::FolderChange::Row(Some(row)) => {
                self.stale_rows.insert(row);
            }
            // a folder without a row (`rank_x`) still changes the answers the grid marks: it
            // is rare enough to build the grid again
            crate::grid::model::FolderChange::Row(None)
            | crate::grid::model::FolderChange::Rebuild => {
                self.grid = None;
                self.stale_rows.clear();
            }
        }
    }

    /// A verifier result. The answers are recomputed only when they read that shard, or when
    /// it changes what its run's files are known to carry (which re-judges the others); else
    /// only its grid cell changes. On a 16,384-rank tree being verified, that is the difference
    /// between one full computation per batch of results and none.
    fn apply_verdict(&mut self, v: Verified, changed: bool) {
        let key = (v.dir.clone(), v.file.clone());
        let before = self.tree.verdicts.run_evidence(&v.file);
        put_verdict(&mut self.tree, v, &mut self.events);
        if !changed || self.frozen.is_some() {
            return;
        }
        let after = self.tree.verdicts.run_evidence(&key.1);
        let flips = (before.0 == 0) != (after.0 == 0) || (before.1 == 0) != (after.1 == 0);
        let needed = self
            .derived
            .as_ref()
            .is_none_or(|d| d.sim.is_some() || d.examined.contains(&shard_key(&key.0, &key.1)));
        if flips || needed || key.0 == "rank_0" {
            // (rank 0's files also give the grid's step row)
            self.invalidate();
            return;
        }
        let state = self
            .tree
            .verdict(&key.0, &key.1)
            .map(|c| crate::grid::cell::CellState::from_verdict(c.verdict));
        let patched = match (self.grid.as_mut(), state) {
            (Some(g), Some(state)) => g.set(&key.0, &key.1, state),
            (None, _) => true,
            _ => false,
        };
        self.grid_stamp += 1; // a cell may have changed in place
        if !patched {
            self.grid = None;
        }
    }

    /// Take one watcher message: deltas are applied, mode changes and rescans become events,
    /// and a failed watcher is an error (the view would silently go stale otherwise).
    pub fn absorb(&mut self, msg: WatchMsg) -> Result<(), WatchError> {
        match msg {
            WatchMsg::Deltas(ds) => ds.into_iter().for_each(|d| self.apply(d)),
            WatchMsg::Mode { mode, reason } => {
                // (a reconnection among them: what was asked of the lost connection is never
                // answered, and would hold every later ask back. Forgotten, and the answer
                // computed again, so that what it still needs is asked again)
                if !self.requested.is_empty() {
                    self.requested.clear();
                    self.invalidate();
                }
                self.note(Event::Mode { mode, reason })
            }
            WatchMsg::Rescan { reason } => self.note(Event::Rescan { reason }),
            WatchMsg::Failed(e) => return Err(e),
            WatchMsg::Started { .. } => {}
        }
        Ok(())
    }

    /// Queue an event that did not come from a delta (watch mode changes, rescans).
    pub fn note(&mut self, e: Event) {
        self.events.push(e);
    }

    /// Events since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events.list)
    }

    /// The live model, taken out of the session (a report that outlives the session needs the
    /// tree, and a 16,384-rank tree is too big to copy).
    pub fn into_tree(self) -> Tree {
        self.tree
    }

    /// Free the session on a helper thread (see [`dispose`]).
    pub fn dispose(self) {
        dispose(self)
    }

    /// Stop queueing events (for commands that report the answer, not the changes).
    pub fn without_events(mut self) -> Session {
        self.events = EventLog {
            off: true,
            list: Vec::new(),
        };
        self
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// Change the simulation (push, undo, redo, reset); the answers follow.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut Overlay) -> R) -> R {
        let before = self.overlay.clone();
        let r = f(&mut self.overlay);
        if self.overlay != before {
            self.invalidate();
        }
        r
    }

    fn invalidate(&mut self) {
        self.derived = None;
        self.grid = None;
        self.stale_rows.clear();
    }

    /// The answers for the current view (computed once per change).
    pub fn derived(&mut self) -> &Derived {
        if self.derived.is_none() {
            let d = self.compute();
            self.derived = Some(d);
        }
        self.derived.as_ref().expect("just computed")
    }

    /// MindFormers' answer, the data skip and the safe pick for the real (unsimulated) view.
    pub fn analysis(&mut self) -> &Analysis {
        &self.derived().real
    }

    /// The answer in short, as `watch --ndjson`'s `resolution` event carries it.
    pub fn resolution(&mut self) -> Resolution {
        Resolution::new(self.analysis())
    }

    /// The step × rank grid of the current view (simulated when edits are active).
    pub fn grid(&mut self) -> &GridModel {
        self.derived();
        if !self.stale_rows.is_empty() {
            let rows = std::mem::take(&mut self.stale_rows);
            let d = self.derived.as_ref().expect("just derived");
            let a = &d.real;
            let refreshed = d.sim.is_none()
                && self.grid.as_mut().is_some_and(|g| {
                    let tree = self.frozen.as_ref().unwrap_or(&self.tree);
                    let safe = a.safe.outcome.pick.as_ref();
                    g.refresh_rows(tree, &rows, a.world_size, Some(&a.mindformers), safe)
                });
            if !refreshed {
                self.grid = None;
            }
            self.grid_stamp += 1;
        }
        if self.grid.is_none() {
            let g = self.build_grid();
            self.grid = Some(g);
            self.grid_stamp += 1;
        }
        self.grid.as_ref().expect("just built")
    }

    /// The answers as last computed (`None` after a change until [`Session::derived`] runs):
    /// for views that render from `&self`.
    pub fn computed(&self) -> Option<&Derived> {
        self.derived.as_ref()
    }

    /// Which version of the grid [`Session::computed_grid`] is (it moves on every change).
    pub fn grid_stamp(&self) -> u64 {
        self.grid_stamp
    }

    /// The grid as last built (see [`Session::computed`]).
    pub fn computed_grid(&self) -> Option<&GridModel> {
        self.grid.as_ref()
    }

    fn build_grid(&self) -> GridModel {
        let d = self.derived.as_ref().expect("derived first");
        let a = d.current();
        let safe = a.safe.outcome.pick.as_ref();
        let fmt = self.ctx.config.fmt;
        if let Some(n) = a.newfmt.as_deref() {
            let tree = d.sim.as_ref().map_or(self.shown_tree(), |(v, _)| &v.tree);
            let marks = match &d.sim {
                Some((v, _)) => SimMarks {
                    deleted: Some(&v.deleted),
                    marked: Some(&v.marked),
                },
                None => SimMarks::default(),
            };
            return crate::grid::newfmt::build(tree, n, &marks);
        }
        match &d.sim {
            Some((v, a)) => GridModel::build(
                &v.tree,
                fmt,
                a.world_size,
                Some(&a.mindformers),
                safe,
                &SimMarks {
                    deleted: Some(&v.deleted),
                    marked: Some(&v.marked),
                },
            ),
            None => GridModel::build(
                self.shown_tree(),
                fmt,
                a.world_size,
                Some(&a.mindformers),
                safe,
                &SimMarks::default(),
            ),
        }
    }

    /// Run the resolvers on the shown model and, with edits, on the simulated one. Shards the
    /// resolvers need without a verdict are checked now and recorded in the live model.
    fn compute(&mut self) -> Derived {
        let ctx = &self.ctx;
        let shown = self.frozen.as_ref().unwrap_or(&self.tree);
        let fresh = Fresh::default();
        let real = self.analyze_one(shown, &ctx.config, &ctx.run, &fresh);
        let mut sim = (!self.overlay.is_empty()).then(|| {
            let v = self.overlay.apply(shown, &ctx.config, &ctx.run);
            let a = self.analyze_one(&v.tree, &v.config, &v.run, &fresh);
            (v, a)
        });
        self.wanted = fresh.wanted.borrow().iter().cloned().collect();
        let pending = self.wanted.len();
        // applied one at a time: no second list of every fresh verdict beside this map (at
        // 16,384 ranks that list was the peak of `resolve`'s memory)
        let fresh_verdicts = fresh.verdicts.take();
        let checked = fresh_verdicts.iter().map(|((dir, file), e)| Verified {
            dir: dir.to_owned(),
            file: file.to_owned(),
            id: e.id,
            check: e.check.clone(),
        });
        if !fresh_verdicts.is_empty() {
            // shards read now change their cells: a patched grid would miss them
            self.grid = None;
            self.stale_rows.clear();
        }
        for v in checked {
            // every tree a view is built from gets them (the grid reads verdicts from its tree)
            if let Some((view, _)) = sim.as_mut() {
                if view.tree.verdicts.get(&v.dir, &v.file).is_none() {
                    // (a shard marked damaged in the simulation keeps its mark)
                    view.tree.apply(Delta::Verdict(v.clone()));
                }
            }
            if let Some(f) = self.frozen.as_mut() {
                f.apply(Delta::Verdict(v.clone()));
            }
            put_verdict(&mut self.tree, v, &mut self.events);
        }
        let examined = fresh.asked.take();
        Derived {
            real,
            sim,
            pending,
            examined,
        }
    }

    fn analyze_one(
        &self,
        tree: &Tree,
        config: &ResumeConfig,
        run: &RunSettings,
        fresh: &Fresh,
    ) -> Analysis {
        let facts = Facts {
            session: self,
            tree,
            fresh,
        };
        let source = |dir: &str, file: &str| facts.check(dir, file);
        let mut a = analyze(tree, config, &self.ctx.env, &self.ctx.paths, run, &facts);
        if crate::layout::detect(tree, &self.ctx.newfmt) == crate::layout::LayoutId::MindformersNew
        {
            // tensor names, for the loader's duplicate check in a folder without metadata.json:
            // read now only where shard checks are (never on the TUI's thread)
            let names = |dir: &str, file: &str| -> Option<Vec<String>> {
                if self.disk_checks != DiskChecks::Now {
                    return None;
                }
                let path = tree.path_of(&self.ctx.canonical, dir, Some(file));
                crate::verify::safetensors::tensor_names(&*self.fs, &path)
            };
            // the simulated settings (batch size, data skip, health mode, no_load_optim) apply
            // to this view
            let mut ctx = JobContext {
                run: run.clone(),
                ..self.ctx.clone()
            };
            if config.health != self.ctx.config.health {
                ctx.newfmt.health = matches!(
                    config.health,
                    crate::resolve::config::HealthSetting::Bool(true)
                );
            }
            if let Some(v) = run.no_load_optim {
                ctx.newfmt.set_no_load_optim(v);
            }
            let n = crate::layout::mindformers_new::analysis::analyze(tree, &ctx, &source, &names);
            a.layout = crate::layout::LayoutId::MindformersNew;
            a.world_size = n.world_size;
            a.newfmt = Some(Box::new(n));
        }
        a
    }

    /// Check the shards of `batch` that are neither in the model nor in this pass into this
    /// pass, on all cores (one-shot commands only: a live view leaves them to its verifier).
    /// Results are recorded as they arrive, as the one-by-one checks would record them (no
    /// list of all of them on the side: memory stays what the sequential path needs).
    fn prefetch(&self, tree: &Tree, batch: &[(String, String)], fresh: &Fresh) {
        if self.disk_checks != DiskChecks::Now {
            return;
        }
        let todo: Vec<&(String, String)> = {
            let known = fresh.verdicts.borrow();
            batch
                .iter()
                .filter(|(d, f)| tree.raw_verdict(d, f).is_none() && known.get(d, f).is_none())
                .collect()
        };
        let workers = self
            .fs
            .concurrency()
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |w| w.get().min(8)));
        if todo.len() < PREFETCH_MIN || workers < 2 {
            return; // checked one by one as they are asked for
        }
        let (fs, root) = (&*self.fs, self.ctx.canonical.as_path());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let take = || {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            todo.get(i).map(|(d, f)| check_one(fs, root, tree, d, f))
        };
        let record = |v: Verified| {
            let entry = crate::model::VerdictEntry {
                id: v.id,
                check: v.check,
            };
            fresh.verdicts.borrow_mut().insert(v.dir, v.file, entry);
        };
        let (tx, rx) = crossbeam_channel::bounded::<Verified>(1024);
        std::thread::scope(|s| {
            // one core is this thread's: it checks too, taking in the others' results between
            // its own checks (a thread that only waited would spin on the channel and take
            // a core from the workers on a 2-core machine)
            for _ in 1..workers {
                let (tx, take) = (tx.clone(), &take);
                s.spawn(move || {
                    while let Some(v) = take() {
                        if v.is_some_and(|v| tx.send(v).is_err()) {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            while let Some(v) = take() {
                if let Some(v) = v {
                    record(v);
                }
                rx.try_iter().for_each(record);
            }
            rx.iter().for_each(record);
        });
    }

    /// What the verifier found for `dir/file`: from the model, from this pass, or now.
    fn raw_check(&self, tree: &Tree, dir: &str, file: &str, fresh: &Fresh) -> Option<ShardCheck> {
        if let Some(c) = tree.raw_verdict(dir, file) {
            return Some(c.clone());
        }
        if let Some(e) = fresh.verdicts.borrow().get(dir, file) {
            return Some(e.check.clone());
        }
        if self.disk_checks == DiskChecks::Deferred {
            let present = tree
                .dirs
                .get(dir)
                .is_some_and(|d| d.listing.entries().exists(file));
            if present {
                fresh
                    .wanted
                    .borrow_mut()
                    .insert((dir.to_owned(), file.to_owned()));
            }
            return None;
        }
        let v = self.check_now(tree, dir, file)?;
        let c = v.check.clone();
        let entry = crate::model::VerdictEntry {
            id: v.id,
            check: v.check,
        };
        fresh.verdicts.borrow_mut().insert(v.dir, v.file, entry);
        Some(c)
    }

    /// A file lacks `loss_scale` or `global_batch_size`: whether that is its run's format or a
    /// cut tail, only the run's other files tell. Check them — first one file of each other
    /// step (older saves finished long ago), then the same step on other ranks — until one
    /// carries the entry or [`SIBLINGS_CHECKED`] were read; once per run and pass, so the
    /// answer does not depend on which files the verifier happened to reach.
    fn seek_run_evidence(&self, tree: &Tree, file: &str, raw: &ShardCheck, fresh: &Fresh) {
        use crate::layout::mindformers::names::parse_ckpt_name;
        let Some(run) = run_key(file) else { return };
        if !fresh.searched.borrow_mut().insert(run.clone()) {
            return;
        }
        let Some(me) = parse_ckpt_name(file) else {
            return;
        };
        let mut others: Vec<((u64, u64), String, String)> = Vec::new();
        let mut same: Vec<(String, String)> = Vec::new();
        for (d, node) in &tree.dirs {
            for e in node.listing.entries() {
                let Some(n) = parse_ckpt_name(&e.name) else {
                    continue;
                };
                if (n.stem.as_str(), n.restart) != (run.0.as_str(), run.1) || &*e.name == file {
                    continue;
                }
                if (n.epoch, n.step) == (me.epoch, me.step) {
                    same.push((d.clone(), e.name.to_string()));
                } else {
                    others.push(((n.epoch, n.step), d.clone(), e.name.to_string()));
                }
            }
        }
        others.sort_by_key(|o| std::cmp::Reverse(o.0));
        others.dedup_by(|a, b| a.0 == b.0);
        let order = others
            .into_iter()
            .map(|(_, d, f)| (d, f))
            .chain(same)
            .take(SIBLINGS_CHECKED);
        let (need_ls, need_gbs) = raw.append.as_ref().map_or((false, false), |a| {
            (a.loss_scale.is_none(), a.global_batch_size.is_none())
        });
        for (dir, name) in order {
            let _ = self.raw_check(tree, &dir, &name, fresh);
            let (a, b) = tree.verdicts.run_evidence(file);
            let (c, d) = fresh.verdicts.borrow().run_evidence(file);
            if (need_ls && a + c > 0) || (need_gbs && b + d > 0) {
                return;
            }
        }
    }

    /// The cheap structure check of one shard of `tree`, as the verifier pool would do it.
    fn check_now(&self, tree: &Tree, dir: &str, file: &str) -> Option<Verified> {
        if self.disk_checks != DiskChecks::Now {
            return None;
        }
        check_one(&*self.fs, &self.ctx.canonical, tree, dir, file)
    }

    /// Verify every shard of the shown model (the files MindFormers picks first, then newest
    /// to oldest), recording each verdict in the model as it arrives; returns how many shards
    /// the run covers (`.tmp` files included). The report is read back from the model
    /// ([`crate::verify::tree::rows`]): results are kept in one place.
    pub fn verify_all(
        &mut self,
        opts: &TreeOptions,
        manifest: &Manifest,
        progress: &mut dyn FnMut(usize, usize),
    ) -> usize {
        let plan = self.plan_all(opts, manifest);
        if self.ctx.has_remote() {
            // a root on another host is checked there ([`Session::open_job`] asked for every
            // shard): nothing is read here
            return plan.total();
        }
        let mut events = EventLog {
            off: !self.events.on(),
            list: Vec::new(),
        };
        let mut recorded = 0;
        let tree = &mut self.tree;
        plan.run(
            &*self.fs,
            opts,
            manifest,
            progress,
            &mut |dir, e, st, check| {
                let v = Verified {
                    dir: dir.to_owned(),
                    file: e.name.to_string(),
                    id: FileId::from(st),
                    check,
                };
                put_verdict(tree, v, &mut events);
                recorded += 1;
            },
        );
        self.events.extend(events.list);
        if recorded > 0 {
            self.invalidate();
        }
        plan.total()
    }

    /// The shards of the shown model a verification run covers, the files MindFormers picks
    /// first, then newest to oldest.
    fn plan_all(&mut self, opts: &TreeOptions, manifest: &Manifest) -> crate::verify::tree::Plan {
        self.derived();
        let order = {
            let mf = &self.computed().expect("just derived").real.mindformers;
            priorities(self.shown_tree(), Some(mf))
        };
        let priority = |d: &str, n: &str| order.of(d, n);
        plan(
            &self.ctx.canonical,
            self.shown_tree(),
            opts,
            manifest,
            &priority,
        )
    }

    /// Where the shards of folder `dir` are on disk.
    pub fn path_of(&self, dir: &str, file: &str) -> std::path::PathBuf {
        self.tree.path_of(&self.ctx.canonical, dir, Some(file))
    }
}

/// Free `what` (a model, results) on a helper thread: a one-shot command has printed its
/// answer, and freeing hundreds of thousands of records one by one would only delay the prompt
/// (the process may end before the thread is done; the system takes the memory back then).
pub fn dispose<T: Send + 'static>(what: T) {
    let _ = std::thread::Builder::new()
        .name("free-model".into())
        .spawn(move || drop(what));
}

/// Record the verdict `check` of entry `e` (`stat` its `lstat`) of folder `dir` in `tree`,
/// outside any session (`verify` of one rank folder or one file).
pub fn record(
    tree: &mut Tree,
    dir: &str,
    e: &crate::model::Entry,
    st: &crate::model::Stat,
    check: ShardCheck,
) {
    tree.apply(Delta::Verdict(Verified {
        dir: dir.to_owned(),
        file: e.name.to_string(),
        id: FileId::from(st),
        check,
    }));
}

/// Record a verifier result in `tree`, with a `verdict` event for every file whose verdict —
/// as judged in its run's context — changed: the file itself, and, when this result changes
/// what the run's files are known to carry, the run's other files.
fn put_verdict(tree: &mut Tree, v: Verified, events: &mut EventLog) {
    if !events.on() {
        tree.apply(Delta::Verdict(v));
        return;
    }
    let judged = |t: &Tree, d: &str, f: &str| t.verdict(d, f).map(|c| c.into_owned());
    let before_self = judged(tree, &v.dir, &v.file);
    let evidence_before = tree.verdicts.run_evidence(&v.file);
    let (dir, file) = (v.dir.clone(), v.file.clone());
    tree.apply(Delta::Verdict(v));
    let mut push = |d: &str, f: &str, c: &ShardCheck| {
        events.push(Event::Verdict {
            rank: rank_dir_number(d),
            dir: d.to_owned(),
            file: f.to_owned(),
            verdict: c.verdict,
            detail: c.detail.to_string(),
        })
    };
    let after_self = judged(tree, &dir, &file);
    if let Some(c) = &after_self {
        if before_self.as_ref().map(|b| b.verdict) != Some(c.verdict) {
            push(&dir, &file, c);
        }
    }
    let evidence_after = tree.verdicts.run_evidence(&file);
    let flips = |a: (u32, u32), b: (u32, u32)| (a.0 == 0) != (b.0 == 0) || (a.1 == 0) != (b.1 == 0);
    if !flips(evidence_before, evidence_after) {
        return;
    }
    let run = run_key(&file);
    let others: Vec<((String, String), ShardCheck)> = tree
        .verdicts
        .iter()
        .filter(|((d, f), _)| (*d, *f) != (dir.as_str(), file.as_str()) && run_key(f) == run)
        .filter_map(|((d, f), e)| {
            let was = judge(&e.check, evidence_before);
            let now = judge(&e.check, evidence_after);
            (was.verdict != now.verdict).then(|| ((d.to_owned(), f.to_owned()), now.into_owned()))
        })
        .collect();
    for ((d, f), c) in others {
        push(&d, &f, &c);
    }
}

/// Whether applying `delta` changes what the resolvers see (a verdict for a stale version or
/// an identical listing changes nothing).
fn delta_changes(tree: &Tree, delta: &Delta) -> bool {
    match delta {
        Delta::Root(s) => &tree.state != s,
        Delta::Roots(m) => tree.multi.as_ref() != Some(m),
        Delta::RootEntry(e) => tree.root_entry(&e.name).as_ref() != Some(e),
        Delta::RootFile(n, r) => tree.root_files.get(n) != r.as_ref(),
        Delta::Dir(d, n) => tree.dirs.get(d) != n.as_ref(),
        Delta::Verdict(v) => {
            let current = tree
                .dirs
                .get(&v.dir)
                .and_then(|d| d.listing.entries().file_id(&v.file));
            current == Some(v.id)
                && tree
                    .verdicts
                    .get(&v.dir, &v.file)
                    .is_none_or(|e| e.id != v.id || e.check != v.check)
        }
    }
}

/// Below this many unchecked shards a batch is checked one by one (threads cost more).
const PREFETCH_MIN: usize = 64;

/// The cheap check of `dir/file` of `tree` (whose root is `root` on disk), now.
fn check_one(
    fs: &dyn crate::fsys::Fs,
    root: &std::path::Path,
    tree: &Tree,
    dir: &str,
    file: &str,
) -> Option<Verified> {
    let (st, path) = match (&tree.state, dir, file) {
        // the root is one weights file: ("", "") names it
        (crate::model::RootState::File(st), "", "") => (st.clone(), root.to_path_buf()),
        _ => (
            tree.dirs.get(dir)?.listing.entries().stat_of(file)?.ok()?,
            tree.path_of(root, dir, Some(file)),
        ),
    };
    let check = check_file(fs, &path, &st, &CheckOptions::default());
    Some(Verified {
        dir: dir.to_owned(),
        file: file.to_owned(),
        id: FileId::from(&st),
        check,
    })
}

/// The shard facts one analysis pass reads: the model's verdicts, this pass's checks, or the
/// disk now (see [`Session::raw_check`]).
struct Facts<'s> {
    session: &'s Session,
    tree: &'s Tree,
    fresh: &'s Fresh,
}

impl ShardFacts for Facts<'_> {
    fn check(&self, dir: &str, file: &str) -> Option<ShardCheck> {
        let (s, tree, fresh) = (self.session, self.tree, self.fresh);
        fresh.asked.borrow_mut().insert(shard_key(dir, file));
        let raw = s.raw_check(tree, dir, file, fresh)?;
        if lacks_tail_entries(&raw) {
            s.seek_run_evidence(tree, file, &raw, fresh);
        }
        let (a, b) = tree.verdicts.run_evidence(file);
        let (c, d) = fresh.verdicts.borrow().run_evidence(file);
        Some(judge(&raw, (a + c, b + d)).into_owned())
    }

    fn prefetch(&self, batch: &crate::resolve::Batch) {
        self.session.prefetch(self.tree, batch, self.fresh);
    }
}

/// Which save a shard belongs to, for asking checks newest save first: a new-format
/// `iteration_N` folder's N, a legacy name's (epoch, step); `None` for other files.
fn save_of(dir: &str, file: &str) -> Option<(u64, u64)> {
    if let Some(n) = dir.strip_prefix("iteration_") {
        return n.parse().ok().map(|n| (n, 0));
    }
    match crate::layout::mindformers::classify::classify(file) {
        crate::layout::mindformers::classify::EntryKind::Checkpoint { name } => {
            Some((name.epoch, name.step))
        }
        _ => None,
    }
}
