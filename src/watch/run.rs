//! The watch loop. Filesystem events are only hints: each one names a folder to rescan, and the
//! model changes only after that rescan (`stat`/listing) confirms it. A reconcile poll rescans
//! everything at a fixed interval as the truth; on network filesystems it is the only source.
//! Overflow, watcher errors and the inotify watch limit fall back to a full rescan (and, for
//! the limit, to polling with a message naming the sysctl to raise).

use super::diff::dir_events;
use super::event::{Mode, WatchEvent};
use crate::fsys::RealFs;
use crate::model::{Delta, RootState, Tree};
use crate::resolve::config::{EnvFacts, PathFacts, ResumeConfig};
use crate::resolve::mindformers::{self, Inputs};
use crate::resolve::safe::{self, ShardFacts};
use crate::scan::{rescan_dir, scan, scan_dir, scan_root};
use crate::verify::pool::{Job, Pool, Verified};
use crossbeam_channel::{select, tick, unbounded, Receiver, Sender};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer_opt, DebounceEventResult, Debouncer, NoCache};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// What to watch and how.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    pub root: String,
    /// Reconcile-poll interval.
    pub poll: Duration,
    /// Never use inotify (network filesystem, `--no-inotify`).
    pub poll_only: Option<String>,
    /// How long the debouncer gathers events before handing them over.
    pub debounce: Duration,
    /// Verify shards in the background (verdict events, safe pick).
    pub verify: bool,
    pub config: ResumeConfig,
    pub env: EnvFacts,
    pub paths: PathFacts,
    /// Test seam: behave as if the OS allowed only this many inotify watches (the real limit
    /// is a machine-wide sysctl that tests must not change).
    pub watch_limit: Option<usize>,
}

impl WatchConfig {
    /// A job on an absolute local path `root` with MindFormers' defaults and no environment
    /// (world size from the `rank_*` count, 8 devices per node, not shared): what embedders,
    /// tests and benches start from before setting the fields they care about.
    pub fn local(root: &str) -> Self {
        WatchConfig {
            root: root.to_owned(),
            poll: Duration::from_secs(1),
            poll_only: None,
            debounce: Duration::from_millis(50),
            verify: true,
            config: ResumeConfig {
                load_checkpoint: Some(root.to_owned()),
                ..Default::default()
            },
            env: EnvFacts {
                device_num_per_node: 8,
                ..Default::default()
            },
            paths: PathFacts {
                abspath: root.to_owned(),
                realpath: root.to_owned(),
                ..Default::default()
            },
            watch_limit: None,
        }
    }
}

enum Request {
    Snapshot(Sender<Tree>),
    Mode(Sender<Mode>),
    Stop,
}

/// A running watcher: its events, and a way to read its model or stop it.
pub struct WatchHandle {
    pub events: Receiver<WatchEvent>,
    requests: Sender<Request>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WatchHandle {
    /// A copy of the current model (`None` if the watcher stopped).
    pub fn snapshot(&self) -> Option<Tree> {
        let (tx, rx) = unbounded();
        self.requests.send(Request::Snapshot(tx)).ok()?;
        rx.recv().ok()
    }

    /// How the tree is being watched right now (inotify, or polling and why).
    pub fn mode(&self) -> Option<Mode> {
        let (tx, rx) = unbounded();
        self.requests.send(Request::Mode(tx)).ok()?;
        rx.recv().ok()
    }

    pub fn stop(mut self) {
        let _ = self.requests.send(Request::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let _ = self.requests.send(Request::Stop);
    }
}

/// Start watching on a thread of its own.
pub fn spawn(cfg: WatchConfig) -> WatchHandle {
    let (out, events) = unbounded();
    let (requests, req_rx) = unbounded();
    let thread = std::thread::spawn(move || Loop::new(cfg, out).run(req_rx));
    WatchHandle {
        events,
        requests,
        thread: Some(thread),
    }
}

type Hints = Debouncer<notify::RecommendedWatcher, NoCache>;

/// The least time between two resolution events.
const RESOLUTION_EVERY: Duration = Duration::from_millis(300);

struct Loop {
    cfg: WatchConfig,
    tree: Tree,
    out: Sender<WatchEvent>,
    pool: Pool,
    hints: Option<Hints>,
    hint_rx: Receiver<DebounceEventResult>,
    hint_tx: Sender<DebounceEventResult>,
    mode: Mode,
    last_resolution: Option<WatchEvent>,
    dirty: bool,
}

impl Loop {
    fn new(cfg: WatchConfig, out: Sender<WatchEvent>) -> Self {
        let (hint_tx, hint_rx) = unbounded();
        let tree = scan(&RealFs, &cfg.root);
        let mode = Mode::Poll {
            interval_secs: cfg.poll.as_secs_f64(),
            reason: String::new(),
        };
        Loop {
            pool: Pool::new(0),
            tree,
            out,
            hints: None,
            hint_rx,
            hint_tx,
            mode,
            last_resolution: None,
            dirty: true,
            cfg,
        }
    }

    fn emit(&self, e: WatchEvent) {
        let _ = self.out.send(e);
    }

    fn run(mut self, requests: Receiver<Request>) {
        // The snapshot goes out first (a huge tree takes a moment to put under watch); what
        // changes meanwhile is caught by the cheap poll right after.
        let planned = match &self.cfg.poll_only {
            Some(reason) => Mode::Poll {
                interval_secs: self.cfg.poll.as_secs_f64(),
                reason: reason.clone(),
            },
            None => Mode::Inotify {
                poll_secs: self.cfg.poll.as_secs_f64(),
            },
        };
        let files = self
            .tree
            .dirs
            .values()
            .map(|d| d.listing.entries().len())
            .sum();
        self.emit(WatchEvent::Snapshot {
            root: self.cfg.root.clone(),
            ranks: self.tree.dirs.len(),
            files,
            mode: planned,
        });
        self.start_hints();
        self.poll();
        let names: Vec<String> = self.tree.dirs.keys().cloned().collect();
        for d in names {
            self.submit_dir(&d);
        }
        let ticker = tick(self.cfg.poll);
        let results = self.pool.results().clone();
        let mut last_publish = std::time::Instant::now() - RESOLUTION_EVERY;
        loop {
            // Re-resolving a huge tree costs tens of milliseconds: while verdicts stream in,
            // do it at most every RESOLUTION_EVERY (and once more when they stop).
            let wait = RESOLUTION_EVERY.saturating_sub(last_publish.elapsed());
            if self.dirty && wait.is_zero() {
                self.publish_resolution();
                last_publish = std::time::Instant::now();
            }
            let deferred = if self.dirty {
                crossbeam_channel::after(wait)
            } else {
                crossbeam_channel::never()
            };
            select! {
                recv(deferred) -> _ => {},
                recv(self.hint_rx) -> r => if let Ok(r) = r { self.on_hints(r) },
                recv(results) -> v => if let Ok(v) = v {
                    self.on_verified(v);
                    for more in results.try_iter().take(10_000) {
                        self.on_verified(more);
                    }
                },
                recv(ticker) -> _ => self.poll(),
                recv(requests) -> r => match r {
                    Ok(Request::Snapshot(tx)) => { let _ = tx.send(self.tree.clone()); }
                    Ok(Request::Mode(tx)) => { let _ = tx.send(self.mode.clone()); }
                    Ok(Request::Stop) | Err(_) => break,
                },
            }
        }
    }

    /// Start inotify hints unless polling is forced; a failure falls back to polling.
    fn start_hints(&mut self) {
        if let Some(reason) = &self.cfg.poll_only {
            self.mode = Mode::Poll {
                interval_secs: self.cfg.poll.as_secs_f64(),
                reason: reason.clone(),
            };
            return;
        }
        let tx = self.hint_tx.clone();
        let made = new_debouncer_opt::<_, notify::RecommendedWatcher, NoCache>(
            self.cfg.debounce,
            Some(self.cfg.debounce / 4),
            move |r: DebounceEventResult| {
                let _ = tx.send(r);
            },
            NoCache,
            notify::Config::default(),
        );
        // One non-recursive watch per folder: a recursive watch would walk every file of a
        // huge tree before returning; rank folders that appear later are added as they appear.
        let root = PathBuf::from(&self.cfg.root);
        let dirs: Vec<PathBuf> = self.tree.dirs.keys().map(|d| root.join(d)).collect();
        let limit = self.cfg.watch_limit;
        let watched = made.and_then(|mut d| {
            for (i, dir) in std::iter::once(&root).chain(&dirs).enumerate() {
                if limit.is_some_and(|l| i >= l) {
                    return Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch));
                }
                d.watch(dir, RecursiveMode::NonRecursive)?;
            }
            Ok(d)
        });
        match watched {
            Ok(d) => {
                self.hints = Some(d);
                self.mode = Mode::Inotify {
                    poll_secs: self.cfg.poll.as_secs_f64(),
                };
            }
            Err(e) => self.fall_back_to_polling(&e),
        }
    }

    /// Follow a rank folder that appeared (or stop following one that went away).
    fn rewatch(&mut self, dir: &str, present: bool) {
        let path = Path::new(&self.cfg.root).join(dir);
        let over = self
            .cfg
            .watch_limit
            .is_some_and(|l| present && self.tree.dirs.len() + 1 > l);
        let Some(h) = self.hints.as_mut() else { return };
        let r = if over {
            Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))
        } else if present {
            h.watch(&path, RecursiveMode::NonRecursive)
        } else {
            h.unwatch(&path)
        };
        if let Err(e) = r {
            if present {
                if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                    self.fall_back_to_polling(&e);
                }
                self.reconcile(&format!("could not watch {}: {e}", path.display()));
            }
        }
    }

    fn fall_back_to_polling(&mut self, e: &notify::Error) {
        self.hints = None;
        let reason = match e.kind {
            notify::ErrorKind::MaxFilesWatch => "the inotify watch limit was reached: raise it with `sysctl fs.inotify.max_user_watches=<n>` (and max_user_instances); polling meanwhile".to_owned(),
            _ => format!("inotify is unavailable ({e}); polling"),
        };
        self.mode = Mode::Poll {
            interval_secs: self.cfg.poll.as_secs_f64(),
            reason: reason.clone(),
        };
        self.emit(WatchEvent::Mode {
            mode: self.mode.clone(),
            reason,
        });
    }

    /// Turn event paths into folders to rescan; overflow and errors mean a full rescan.
    fn on_hints(&mut self, r: DebounceEventResult) {
        let mut batch = vec![r];
        batch.extend(self.hint_rx.try_iter());
        let mut dirs = BTreeSet::new();
        let (mut root, mut full) = (false, None);
        for r in batch {
            match r {
                Err(errors) => {
                    if let Some(e) = errors
                        .iter()
                        .find(|e| matches!(e.kind, notify::ErrorKind::MaxFilesWatch))
                    {
                        self.fall_back_to_polling(e);
                    }
                    full = Some(format!(
                        "watcher error: {}",
                        errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
                Ok(events) => {
                    for ev in events {
                        if ev.need_rescan() {
                            full = Some("the event queue overflowed".into());
                        }
                        if matches!(ev.kind, EventKind::Access(_)) {
                            continue;
                        }
                        for p in &ev.paths {
                            match self.folder_of(p) {
                                None => {}
                                Some(None) => root = true,
                                Some(Some(d)) => {
                                    dirs.insert(d);
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(reason) = full {
            return self.reconcile(&reason);
        }
        if root {
            self.rescan_root();
        }
        for d in dirs {
            self.rescan_dir(&d);
        }
    }

    /// `Some(None)`: the root or an entry of it changed; `Some(Some(d))`: inside folder `d`.
    fn folder_of(&self, p: &Path) -> Option<Option<String>> {
        let rel = p.strip_prefix(&self.cfg.root).ok()?;
        let mut comps = rel.components().filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        });
        match (comps.next(), comps.next()) {
            (None, _) | (Some(_), None) => Some(None),
            (Some(d), Some(_)) => Some(Some(d)),
        }
    }

    /// The periodic reconcile. Polling only: everything (no hints can say what changed). With
    /// inotify hints: the root, and only the folders whose mtime moved since their listing —
    /// a safety net that costs one `stat` per folder on an unchanged tree.
    fn poll(&mut self) {
        if matches!(self.mode, Mode::Poll { .. }) {
            return self.reconcile("poll");
        }
        let had_root = matches!(self.tree.state, RootState::Dir(_));
        self.rescan_root();
        if !had_root {
            if matches!(self.tree.state, RootState::Dir(_)) {
                self.start_hints(); // its old inotify watch died with the old folder
                self.reconcile("the folder reappeared");
            }
            return;
        }
        let stale: Vec<String> = self
            .tree
            .dirs
            .iter()
            .filter(|(name, node)| {
                let now = self
                    .tree
                    .root_entry(name)
                    .and_then(|e| e.stat().ok())
                    .map(|s| s.mtime_ns());
                now.is_none() || node.stat.as_ref().map(|s| s.mtime_ns()) != now
            })
            .map(|(n, _)| n.clone())
            .collect();
        for d in stale {
            self.rescan_dir(&d);
        }
    }

    /// Everything again: the root, then every folder.
    fn reconcile(&mut self, reason: &str) {
        if reason != "poll" {
            self.emit(WatchEvent::Rescan {
                reason: reason.into(),
            });
        }
        self.rescan_root();
        let names: Vec<String> = self.tree.dirs.keys().cloned().collect();
        for d in names {
            self.rescan_dir(&d);
        }
    }

    /// Relist the root: folders that appeared are scanned at once, vanished ones removed.
    fn rescan_root(&mut self) {
        let state = scan_root(&RealFs, &self.cfg.root);
        let wanted: BTreeSet<String> = match &state {
            RootState::Dir(l) => l
                .entries()
                .iter()
                .filter(|e| e.name.starts_with("rank_") && e.is_dir())
                .map(|e| e.name.clone())
                .collect(),
            _ => BTreeSet::new(),
        };
        let had: BTreeSet<String> = self.tree.dirs.keys().cloned().collect();
        if state != self.tree.state {
            self.dirty = true;
            self.tree.apply(Delta::Root(state));
        }
        for gone in had.difference(&wanted) {
            self.replace_dir(gone, None);
        }
        for new in wanted.difference(&had) {
            let node = scan_dir(&RealFs, &Path::new(&self.cfg.root).join(new));
            self.replace_dir(new, Some(node));
        }
    }

    fn rescan_dir(&mut self, dir: &str) {
        let path = Path::new(&self.cfg.root).join(dir);
        if !path.is_dir() {
            return self.rescan_root();
        }
        let node = rescan_dir(&RealFs, &path, self.tree.dirs.get(dir));
        self.replace_dir(dir, Some(node));
    }

    /// Apply a folder's new listing, emit what changed, and send changed shards to the verifier.
    fn replace_dir(&mut self, dir: &str, node: Option<crate::model::DirNode>) {
        if self.tree.dirs.get(dir) == node.as_ref() {
            return;
        }
        let events = dir_events(dir, self.tree.dirs.get(dir), node.as_ref());
        let appeared = !self.tree.dirs.contains_key(dir) && node.is_some();
        let vanished = self.tree.dirs.contains_key(dir) && node.is_none();
        self.tree.apply(Delta::Dir(dir.to_owned(), node));
        if appeared || vanished {
            self.rewatch(dir, appeared);
        }
        if appeared && self.hints.is_some() {
            // files created between the listing and the new watch produced no event: list again
            let again = rescan_dir(
                &RealFs,
                &Path::new(&self.cfg.root).join(dir),
                self.tree.dirs.get(dir),
            );
            self.replace_dir(dir, Some(again));
        }
        self.dirty = true;
        for e in events {
            match &e {
                WatchEvent::ShardAdded {
                    file,
                    kind: "checkpoint",
                    ..
                }
                | WatchEvent::ShardChanged {
                    file,
                    kind: "checkpoint",
                    ..
                } => self.submit(dir, file),
                WatchEvent::ShardRemoved { file, .. } => self.pool.cancel(dir, file),
                _ => {}
            }
            self.emit(e);
        }
    }

    fn submit_dir(&mut self, dir: &str) {
        let files: Vec<String> = self
            .tree
            .dirs
            .get(dir)
            .map(|d| d.listing.entries().iter().map(|e| e.name.clone()).collect())
            .unwrap_or_default();
        for f in files
            .iter()
            .filter(|f| super::diff::kind_of(f) == "checkpoint")
        {
            self.submit(dir, f);
        }
    }

    fn submit(&mut self, dir: &str, name: &str) {
        if !self.cfg.verify {
            return;
        }
        let Some(st) = self
            .tree
            .dirs
            .get(dir)
            .and_then(|d| d.listing.find(name))
            .and_then(|e| e.stat().ok().cloned())
        else {
            return;
        };
        let path: PathBuf = Path::new(&self.cfg.root).join(dir).join(name);
        self.pool.submit(Job {
            dir: dir.into(),
            name: name.into(),
            path,
            stat: st,
            deep: false,
            expected_sha256: None,
            priority: 0,
        });
    }

    fn on_verified(&mut self, v: Verified) {
        let (dir, file) = (v.dir.clone(), v.name.clone());
        let (verdict, detail) = (v.check.verdict, v.check.detail.clone());
        self.tree.apply(v.into_delta());
        if self.tree.verdict(&dir, &file).is_some() {
            self.dirty = true;
            self.emit(WatchEvent::Verdict {
                rank: crate::layout::rank_dir_number(&dir),
                dir,
                file,
                verdict,
                detail,
            });
        }
    }

    /// Re-run the resolvers when the view changed; emit only when the answer changed.
    fn publish_resolution(&mut self) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        let n = self.tree.rank_entry_count();
        let env = EnvFacts {
            world_size: if self.cfg.env.world_size == 0 {
                n as u64
            } else {
                self.cfg.env.world_size
            },
            ..self.cfg.env.clone()
        };
        let mf = mindformers::resolve(&Inputs {
            tree: &self.tree,
            config: &self.cfg.config,
            env: &env,
            paths: &self.cfg.paths,
        });
        let tree = &self.tree;
        let mut facts = |d: &str, f: &str| {
            tree.verdict(d, f).map(|c| ShardFacts {
                verdict: c.verdict,
                detail: c.detail.clone(),
                size: c.size,
                append: c.append.clone(),
            })
        };
        let safe = self
            .cfg
            .verify
            .then(|| safe::resolve(tree, &mf, env.world_size, self.cfg.config.fmt, &mut facts));
        let event = WatchEvent::Resolution {
            mindformers: crate::report::json::mindformers_json(&mf),
            safe: safe.map_or(serde_json::Value::Null, |s| {
                crate::report::json::safe_json(&s, None)
            }),
        };
        if self.last_resolution.as_ref() != Some(&event) {
            self.last_resolution = Some(event.clone());
            self.emit(event);
        }
    }
}
