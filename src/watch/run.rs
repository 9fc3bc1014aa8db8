//! The watch loop. Filesystem events are only hints: each one names a folder to rescan, and the
//! model changes only after that rescan (`stat`/listing through the [`Fs`] seam) confirms it.
//! A reconcile poll rescans at a fixed interval as the truth; on network filesystems it is the
//! only source. Overflow, watcher errors and the inotify watch limit fall back to a full rescan
//! (and, for the limit, to polling with a message naming the sysctl to raise).
//!
//! The loop keeps its own copy of the listing to know what changed, and pushes every confirmed
//! change as a [`Delta`] (verifier results included) to whoever listens. It never runs a
//! resolver: a [`crate::session::Session`] on the receiving side does.

use super::backlog::Backlog;
use super::mode::Mode;
use crate::fsys::Fs;
use crate::job::JobContext;
use crate::layout::mindformers::classify::classify;
use crate::model::{Delta, DirNode, FileId, RootState, Stat, Tree};
use crate::scan::{rescan_dir, scan_at, scan_dir, scan_root};
use crate::verify::pool::{Job, Pool};
use crossbeam_channel::{select, tick, unbounded, Receiver, Sender};
use notify::Watcher;
use notify::{EventKind, RecursiveMode};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Verification priorities (lower first): what an answer on screen waits for, then the rest.
const URGENT: u32 = 0;
const BACKGROUND: u32 = 1;

/// The verifier's queue is topped up from the [`Backlog`] when fewer than `FEED_LOW` jobs wait,
/// to about `FEED_HIGH`: enough to keep every core busy between two turns of the loop.
const FEED_LOW: usize = 2_048;
const FEED_HIGH: usize = 4_096;
/// Messages the listener may leave untaken before the backlog waits for it.
const LISTENER_LAG: usize = 4;

/// The longest reconcile interval accepted (a week): longer ones are a typo.
pub const MAX_POLL_SECS: f64 = 7.0 * 86_400.0;
/// The shortest (50 ms): a full rescan more often than that only burns a core.
pub const MIN_POLL_SECS: f64 = 0.05;

/// Why watching could not start, or stopped.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WatchError {
    #[error("{path} {what}; pass the checkpoint folder that holds rank_0/ …")]
    NotAFolder { path: String, what: String },
    #[error("--poll {value}: expected a number of seconds from 0.05 to a week (604800)")]
    BadPoll { value: String },
    #[error("the watcher stopped unexpectedly ({why}); the view is no longer updated — restart ckptscope")]
    Died { why: String },
}

/// What to watch and how.
#[derive(Clone)]
pub struct WatchConfig {
    /// The folder as read (the job context's canonical root: events carry this prefix).
    pub root: PathBuf,
    /// The folder as the user gave it (the tree's label in messages).
    pub label: String,
    /// Reconcile-poll interval.
    pub poll: Duration,
    /// Never use inotify (network filesystem, `--no-inotify`), and why.
    pub poll_only: Option<String>,
    /// How long hints are gathered after the first one before the folders they name are
    /// relisted (one relist per folder per window, however many events).
    pub debounce: Duration,
    /// Verify shards in the background (verdict deltas).
    pub verify: bool,
    pub fs: Arc<dyn Fs>,
    /// Test seam: behave as if the OS allowed only this many inotify watches (the real limit
    /// is a machine-wide sysctl that tests must not change).
    pub watch_limit: Option<usize>,
    /// Test seam: folders whose watch fails with "permission denied" (as a non-root user's
    /// unreadable folder does; root can watch anything).
    pub unwatchable: Vec<String>,
    /// The root is on another host: watched there by ckptscope itself ([`super::remote`]).
    pub remote: Option<super::remote::RemoteSource>,
}

impl WatchConfig {
    /// Watch the job's root: polled only on a network filesystem or with `no_inotify`; `poll`
    /// seconds between reconciles (default 10 polling only, 30 with inotify).
    pub fn for_job(
        ctx: &JobContext,
        fs: Arc<dyn Fs>,
        poll: Option<f64>,
        no_inotify: bool,
    ) -> Result<WatchConfig, WatchError> {
        let what = match fs.stat(&ctx.canonical) {
            // (a remote root is checked where it is: the first connection says)
            _ if ctx.remote.is_some() => None,
            Ok(s) if s.kind == crate::model::FileKind::Dir => None,
            Ok(s) => Some(format!("is {}, not a folder", s.kind)),
            Err(e) => Some(format!("cannot be watched ({e})")),
        };
        if let Some(what) = what {
            return Err(WatchError::NotAFolder {
                path: ctx.root.clone(),
                what,
            });
        }
        let poll_only = if no_inotify {
            Some("--no-inotify".to_owned())
        } else {
            ctx.network_fs.clone()
        };
        let secs = poll.unwrap_or(if poll_only.is_some() { 10.0 } else { 30.0 });
        if !(secs.is_finite() && (MIN_POLL_SECS..=MAX_POLL_SECS).contains(&secs)) {
            let value = if secs.is_finite() && secs != 0.0 && !(1e-3..1e9).contains(&secs.abs()) {
                format!("{secs:e}")
            } else {
                secs.to_string()
            };
            return Err(WatchError::BadPoll { value });
        }
        Ok(WatchConfig {
            root: ctx.canonical.clone(),
            label: ctx.first_label().to_owned(),
            poll: Duration::from_secs_f64(secs),
            poll_only,
            debounce: Duration::from_millis(50),
            verify: true,
            fs,
            watch_limit: None,
            unwatchable: Vec::new(),
            remote: ctx
                .remote
                .clone()
                .map(|root| super::remote::RemoteSource::of(ctx, root)),
        })
    }
}

impl WatchConfig {
    /// This configuration (the job's first root) and one for each further root of `ctx`, each
    /// polled only if its own filesystem needs it (a node's disk mounted over NFS here).
    pub fn for_roots(self, ctx: &JobContext) -> Result<Vec<WatchConfig>, WatchError> {
        let mut all = vec![self];
        for m in &ctx.more_roots {
            if let Some(root) = &m.remote {
                let first = &all[0];
                all.push(WatchConfig {
                    root: m.canonical.clone(),
                    label: m.root.clone(),
                    // (its host decides how it is watched there)
                    poll_only: first.poll_only.clone().filter(|p| p == "--no-inotify"),
                    remote: Some(super::remote::RemoteSource::of(ctx, root.clone())),
                    ..first.clone()
                });
                continue;
            }
            match all[0].fs.stat(&m.canonical) {
                Ok(s) if s.kind == crate::model::FileKind::Dir => {}
                Ok(s) => {
                    return Err(WatchError::NotAFolder {
                        path: m.root.clone(),
                        what: format!("is {}, not a folder", s.kind),
                    })
                }
                Err(e) => {
                    return Err(WatchError::NotAFolder {
                        path: m.root.clone(),
                        what: format!("cannot be watched ({e})"),
                    })
                }
            }
            let at = m.canonical.to_string_lossy();
            let network = match crate::objstore::is_url(&at) {
                true => Some(crate::objstore::NO_EVENTS.to_owned()),
                false => crate::job::mounts::network_reason(&ctx.env.mounts, &at),
            };
            let first = &all[0];
            // `--no-inotify` holds for every root; a network filesystem only for its own
            let asked = first.poll_only.as_deref() == Some("--no-inotify");
            all.push(WatchConfig {
                root: m.canonical.clone(),
                label: m.root.clone(),
                poll_only: if asked {
                    first.poll_only.clone()
                } else {
                    network
                },
                remote: None,
                ..first.clone()
            });
        }
        Ok(all)
    }
}

/// What the watcher pushes.
#[derive(Debug)]
pub enum WatchMsg {
    /// The first scan, and how the tree will be watched.
    Started { tree: Box<Tree>, mode: Mode },
    /// Changes confirmed by a rescan, and verifier results.
    Deltas(Vec<Delta>),
    /// The watch mode changed (inotify could not be armed, the watch limit was hit).
    Mode { mode: Mode, reason: String },
    /// A full rescan is under way, and why.
    Rescan { reason: String },
    /// The watcher stopped by itself (a panic in its thread): nothing will follow.
    Failed(WatchError),
}

pub(super) enum Request {
    /// Reconcile everything now (the TUI asks when it is unfrozen).
    Resync,
    /// Check these `(folder, file)` first: the answer on screen waits for them.
    Verify(Vec<(String, String)>),
    /// Check these whole (CRC trailer, SHA-256 against the root's `SHA256SUMS`) first.
    Hash(Vec<(String, String)>),
    Stop,
}

/// A running watcher: its messages, and a way to ask for a resync or stop it.
pub struct WatchHandle {
    pub events: Receiver<WatchMsg>,
    pub(super) requests: Sender<Request>,
    /// Set on stop: a rescan under way gives up between two folders instead of finishing.
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl WatchHandle {
    /// Ask for a full reconcile: every folder is listed again and differences come as deltas.
    pub fn resync(&self) {
        let _ = self.requests.send(Request::Resync);
    }

    /// Verify these shards before anything else (even with background verification off);
    /// their verdicts come as deltas.
    pub fn verify_now(&self, files: Vec<(String, String)>) {
        let _ = self.requests.send(Request::Verify(files));
    }

    /// [`WatchHandle::verify_now`] reading every byte: the CRC trailer and SHA-256 (checked
    /// against the root's `SHA256SUMS` when it names the file) — `verify --hash` over ssh://,
    /// done where the shards are.
    pub fn hash_now(&self, files: Vec<(String, String)>) {
        let _ = self.requests.send(Request::Hash(files));
    }

    /// Stop and wait for the watcher thread (at most one folder listing: a rescan under way
    /// is abandoned).
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.requests.send(Request::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.requests.send(Request::Stop);
    }
}

/// Start watching on a thread of its own. A panic in that thread is reported as
/// [`WatchMsg::Failed`], never swallowed.
pub fn spawn(mut cfg: WatchConfig) -> WatchHandle {
    if let Some(src) = cfg.remote.take() {
        return super::remote::spawn(cfg, src);
    }
    on_thread(move |out, flag, req_rx| Loop::new(cfg, out, flag).run(req_rx))
}

/// A watcher running `body` on a thread of its own (the messages it sends, the stop flag, the
/// requests it receives): a panic there is reported as [`WatchMsg::Failed`], never swallowed.
pub(super) fn on_thread(
    body: impl FnOnce(Sender<WatchMsg>, Arc<AtomicBool>, Receiver<Request>) + Send + 'static,
) -> WatchHandle {
    let (out, events) = unbounded();
    let (requests, req_rx) = unbounded();
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = stopping.clone();
    let thread = std::thread::spawn(move || {
        let report = out.clone();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            body(out, flag, req_rx)
        }));
        if let Err(p) = run {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            let _ = report.send(WatchMsg::Failed(WatchError::Died { why }));
        }
    });
    WatchHandle {
        events,
        requests,
        stopping,
        thread: Some(thread),
    }
}

type Hints = notify::RecommendedWatcher;
type Hint = notify::Result<notify::Event>;

/// What the hints gathered in the current window ask for: bounded by the number of folders,
/// however many events arrive.
#[derive(Default)]
struct Held {
    dirs: BTreeSet<String>,
    /// The root listing changed (a rank folder created, deleted or moved).
    root: bool,
    /// Everything must be relisted (overflow, watcher error), and why.
    full: Option<String>,
}

struct Loop {
    cfg: WatchConfig,
    tree: Tree,
    out: Sender<WatchMsg>,
    pool: Pool,
    /// Shards awaiting their first check, handed to `pool` a few thousand at a time.
    backlog: Backlog,
    /// The backlog was held back because the listener lags: try again shortly.
    held_back: bool,
    hints: Option<Hints>,
    hint_rx: Receiver<Hint>,
    hint_tx: Sender<Hint>,
    /// Hints of the current window, and when the window closes.
    held: Held,
    due: Option<Receiver<std::time::Instant>>,
    mode: Mode,
    /// The identity `(dev, ino)` of each folder under watch: a folder deleted and recreated
    /// under the same name is a new inode whose old watch died with it.
    watched: BTreeMap<String, (u64, u64)>,
    /// Deltas waiting to be pushed (one message per handled event batch).
    batch: Vec<Delta>,
    /// The identity of the root folder when its watch was armed.
    root_id: Option<(u64, u64)>,
    stopping: Arc<AtomicBool>,
}

fn identity(s: &Stat) -> (u64, u64) {
    (s.dev, s.ino)
}

impl Loop {
    fn new(cfg: WatchConfig, out: Sender<WatchMsg>, stopping: Arc<AtomicBool>) -> Self {
        let (hint_tx, hint_rx) = unbounded();
        let tree = scan_at(&*cfg.fs, &cfg.root, &cfg.label);
        let mode = Mode::Poll {
            interval_secs: cfg.poll.as_secs_f64(),
            reason: String::new(),
            degraded: false,
        };
        Loop {
            pool: Pool::new(0, cfg.fs.clone()),
            backlog: Backlog::default(),
            held_back: false,
            tree,
            out,
            hints: None,
            hint_rx,
            hint_tx,
            held: Held::default(),
            due: None,
            mode,
            watched: BTreeMap::new(),
            batch: Vec::new(),
            root_id: None,
            stopping,
            cfg,
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    fn send(&self, m: WatchMsg) {
        let _ = self.out.send(m);
    }

    /// Push the pending deltas as one message.
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let b = std::mem::take(&mut self.batch);
            self.send(WatchMsg::Deltas(b));
        }
    }

    fn run(mut self, requests: Receiver<Request>) {
        // The snapshot goes out first (a huge tree takes a moment to put under watch); what
        // changes meanwhile is caught by the cheap poll right after.
        let planned = match &self.cfg.poll_only {
            Some(reason) => Mode::Poll {
                interval_secs: self.cfg.poll.as_secs_f64(),
                reason: reason.clone(),
                degraded: false,
            },
            None => Mode::Inotify {
                poll_secs: self.cfg.poll.as_secs_f64(),
            },
        };
        self.send(WatchMsg::Started {
            tree: Box::new(self.tree.clone()),
            mode: planned,
        });
        self.start_hints();
        self.poll();
        let names: Vec<String> = self.tree.dirs.keys().cloned().collect();
        for d in names {
            self.submit_dir(&d);
        }
        self.feed();
        self.flush();
        let ticker = tick(self.cfg.poll);
        let results = self.pool.results().clone();
        loop {
            let due = self.due.clone().unwrap_or_else(crossbeam_channel::never);
            let retry = match self.held_back {
                true => crossbeam_channel::after(Duration::from_millis(20)),
                false => crossbeam_channel::never(),
            };
            select! {
                recv(retry) -> _ => {},
                recv(self.hint_rx) -> r => if let Ok(r) = r { self.hold(r) },
                recv(due) -> _ => self.on_hints(),
                recv(results) -> v => if let Ok(v) = v {
                    self.batch.push(Delta::Verdict(v));
                    self.batch.extend(results.try_iter().take(10_000).map(Delta::Verdict));
                },
                recv(ticker) -> _ => self.poll(),
                recv(requests) -> r => match r {
                    Ok(Request::Resync) => self.reconcile("resync requested"),
                    Ok(Request::Verify(files)) => {
                        for (d, f) in files {
                            self.submit_at(&d, &f, URGENT);
                        }
                    }
                    Ok(Request::Hash(files)) => self.hash(files),
                    Ok(Request::Stop) | Err(_) => break,
                },
            }
            self.feed();
            self.flush();
        }
    }

    /// Start inotify hints unless polling is forced; a failure falls back to polling.
    fn start_hints(&mut self) {
        if let Some(reason) = &self.cfg.poll_only {
            self.mode = Mode::Poll {
                interval_secs: self.cfg.poll.as_secs_f64(),
                reason: reason.clone(),
                degraded: false,
            };
            return;
        }
        let tx = self.hint_tx.clone();
        // Events go straight to the loop, which gathers them for `debounce` (a debouncer
        // crate would keep its own list of watched roots, scanned on every new watch: 16,384
        // folders made that quadratic). Reads (ours included: the verifier opens every
        // shard) change nothing: the kernel does not report them (`EventKindMask::CORE`), and
        // any that arrive are dropped here, on notify's thread.
        let made = notify::RecommendedWatcher::new(
            move |r: Hint| {
                if !matches!(&r, Ok(ev) if matches!(ev.kind, EventKind::Access(_)) && !ev.need_rescan())
                {
                    let _ = tx.send(r);
                }
            },
            notify::Config::default().with_event_kinds(notify::EventKindMask::CORE),
        );
        let mut d = match made {
            Ok(d) => d,
            Err(e) => return self.fall_back_to_polling(&e),
        };
        // the root's parent too: a root deleted (or renamed away) and recreated is seen at
        // once, not only at the next poll (events for its siblings are outside the root and
        // ignored)
        let parent_watched = self
            .cfg
            .root
            .parent()
            .is_some_and(|p| d.watch(p, RecursiveMode::NonRecursive).is_ok());
        match d.watch(&self.cfg.root, RecursiveMode::NonRecursive) {
            // the root vanished (deleted while starting, or between two saves): its parent's
            // watch will see it come back, and it is watched then
            Err(_) if parent_watched && self.root_identity().is_none() => {
                self.root_id = None;
                self.hints = Some(d);
                self.watched.clear();
            }
            Err(e) => self.fall_back_to_polling(&e),
            Ok(()) => {
                self.root_id = self.root_identity();
                self.hints = Some(d);
                self.watched.clear();
                self.mode = Mode::Inotify {
                    poll_secs: self.cfg.poll.as_secs_f64(),
                };
                // One non-recursive watch per folder: a recursive watch would walk every
                // file of a huge tree before returning.
                let dirs: Vec<String> = self.tree.dirs.keys().cloned().collect();
                for dir in dirs {
                    self.watch_dir(&dir);
                }
            }
        }
    }

    /// Put folder `dir` under watch (again, when its identity changed). A folder that cannot
    /// be watched (permissions) is left to the reconcile poll; only the watch limit turns
    /// inotify off for the whole tree.
    fn watch_dir(&mut self, dir: &str) {
        let Some(id) = self
            .tree
            .dirs
            .get(dir)
            .and_then(|n| n.stat.as_ref())
            .map(identity)
        else {
            return;
        };
        if self.watched.get(dir) == Some(&id) {
            return;
        }
        let over = self
            .cfg
            .watch_limit
            .is_some_and(|l| self.watched.len() + 2 > l);
        let path = self.tree.path_of(&self.cfg.root, dir, None);
        let Some(h) = self.hints.as_mut() else { return };
        let denied = self.cfg.unwatchable.iter().any(|d| d == dir);
        let r = if over {
            Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))
        } else if denied {
            Err(notify::Error::io(std::io::Error::from_raw_os_error(13)))
        } else {
            // only a folder watched before needs its old watch dropped (each call is a round
            // trip to notify's thread: 16,384 folders would pay it twice)
            if self.watched.contains_key(dir) {
                let _ = h.unwatch(&path);
            }
            h.watch(&path, RecursiveMode::NonRecursive)
        };
        match r {
            Ok(()) => {
                self.watched.insert(dir.to_owned(), id);
            }
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                self.fall_back_to_polling(&e);
                self.reconcile(&format!("could not watch {}: {e}", path.display()));
            }
            Err(_) => {
                // e.g. permission denied: the poll covers this folder (its mtime is checked).
                self.watched.remove(dir);
            }
        }
    }

    fn unwatch_dir(&mut self, dir: &str) {
        if self.watched.remove(dir).is_some() {
            if let Some(h) = self.hints.as_mut() {
                let _ = h.unwatch(&self.tree.path_of(&self.cfg.root, dir, None));
            }
        }
    }

    fn fall_back_to_polling(&mut self, e: &notify::Error) {
        self.hints = None;
        self.watched.clear();
        let reason = match e.kind {
            notify::ErrorKind::MaxFilesWatch => "the inotify watch limit was reached: raise it with `sysctl fs.inotify.max_user_watches=<n>` (and max_user_instances); polling meanwhile".to_owned(),
            _ => format!("inotify is unavailable ({e}); polling"),
        };
        self.mode = Mode::Poll {
            interval_secs: self.cfg.poll.as_secs_f64(),
            reason: reason.clone(),
            degraded: true,
        };
        self.send(WatchMsg::Mode {
            mode: self.mode.clone(),
            reason,
        });
    }

    /// Turn event paths into folders to rescan; overflow and errors mean a full rescan.
    /// Note what a hint asks for; the first one of a window starts its clock.
    fn hold(&mut self, r: Hint) {
        if self.due.is_none() {
            self.due = Some(crossbeam_channel::after(self.cfg.debounce));
        }
        for r in std::iter::once(r).chain(self.hint_rx.try_iter().collect::<Vec<_>>()) {
            match r {
                Err(e) => {
                    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                        self.fall_back_to_polling(&e);
                    }
                    self.held.full = Some(format!("watcher error: {e}"));
                }
                Ok(ev) => {
                    if ev.need_rescan() {
                        self.held.full = Some("the event queue overflowed".into());
                    }
                    if matches!(ev.kind, EventKind::Access(_)) {
                        continue;
                    }
                    for p in &ev.paths {
                        match self.folder_of(p) {
                            None => {}
                            Some(None) => {
                                self.held.root = true;
                                // the event names a rank folder itself (deleted, created,
                                // moved): its watch may have died with it even when the
                                // filesystem reuses the inode number, so re-arm and relist
                                if let Some(name) = self.top_level(p) {
                                    self.watched.remove(&name);
                                    self.held.dirs.insert(name);
                                }
                            }
                            Some(Some(d)) => {
                                self.held.dirs.insert(d);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The window closed: relist what its hints named.
    fn on_hints(&mut self) {
        self.due = None;
        let held = std::mem::take(&mut self.held);
        if let Some(reason) = held.full {
            return self.reconcile(&reason);
        }
        if held.root {
            self.rescan_root();
        }
        for d in held.dirs {
            self.rescan_dir(&d);
        }
    }

    /// The `rank_*` name when `p` is an entry of the root itself.
    fn top_level(&self, p: &Path) -> Option<String> {
        let rel = p.strip_prefix(&self.cfg.root).ok()?;
        let mut comps = rel.components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(s)), None) => {
                // the model's name for it (escaped when it holds a tab, a newline …)
                let name = crate::model::name_of(s);
                crate::scan::is_layout_dir(&name).then_some(name)
            }
            _ => None,
        }
    }

    /// `Some(None)`: the root or an entry of it changed; `Some(Some(d))`: inside folder `d`.
    fn folder_of(&self, p: &Path) -> Option<Option<String>> {
        let rel = p.strip_prefix(&self.cfg.root).ok()?;
        let mut comps = rel.components().filter_map(|c| match c {
            Component::Normal(s) => Some(crate::model::name_of(s)),
            _ => None,
        });
        match (comps.next(), comps.next()) {
            (None, _) | (Some(_), None) => Some(None),
            (Some(d), Some(_)) => Some(Some(d)),
        }
    }

    /// The periodic reconcile. Polling only: everything (no hints can say what changed). With
    /// inotify hints: the root, and only the folders whose mtime or identity moved since their
    /// listing — a safety net that costs one `stat` per folder on an unchanged tree.
    fn poll(&mut self) {
        if matches!(self.mode, Mode::Poll { .. }) {
            return self.reconcile("poll");
        }
        self.rescan_root();
        let stale: Vec<String> = self
            .tree
            .dirs
            .iter()
            .filter(|(name, node)| {
                let now = self
                    .cfg
                    .fs
                    .stat(&self.tree.path_of(&self.cfg.root, name, None))
                    .ok();
                let was = node.stat.as_ref();
                now.as_ref().map(|s| (s.mtime_ns(), identity(s)))
                    != was.map(|s| (s.mtime_ns(), identity(s)))
                    || !self.watched.contains_key(*name)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for d in stale {
            if self.stopping() {
                return;
            }
            // a folder whose mtime moved without an event may have been recreated (an inode
            // number can be reused at once): its watch is re-armed
            self.watched.remove(&d);
            self.rescan_dir(&d);
        }
    }

    fn root_identity(&self) -> Option<(u64, u64)> {
        self.cfg.fs.stat(&self.cfg.root).ok().map(|s| identity(&s))
    }

    /// Everything again: the root, then every folder.
    fn reconcile(&mut self, reason: &str) {
        if reason != "poll" {
            self.send(WatchMsg::Rescan {
                reason: reason.into(),
            });
        }
        if let Some(listed) = self.cfg.fs.refresh(&self.cfg.root) {
            self.listed(listed);
        }
        self.rescan_root();
        let names: Vec<String> = self.tree.dirs.keys().cloned().collect();
        for d in names {
            if self.stopping() {
                return;
            }
            self.rescan_dir(&d);
        }
    }

    /// A store without events was listed again: its poll line (what a poll costs) is the
    /// mode's reason, and a failed listing makes the mode degraded (the last listing is
    /// shown) until one succeeds. Sent when it changes, not at every poll.
    fn listed(&mut self, listed: Result<String, String>) {
        let degraded = listed.is_err();
        let line = listed.unwrap_or_else(|e| e);
        let mode = Mode::Poll {
            interval_secs: self.cfg.poll.as_secs_f64(),
            reason: line.clone(),
            degraded,
        };
        if mode != self.mode {
            self.mode = mode.clone();
            self.send(WatchMsg::Mode { mode, reason: line });
        }
    }

    /// Relist the root: folders that appeared are scanned at once, vanished ones removed.
    fn rescan_root(&mut self) {
        let id = self.root_identity();
        if self.hints.is_some() && id.is_some() && id != self.root_id {
            // a new root folder under the same name: its old watch died with the old folder
            self.start_hints();
        }
        let state = scan_root(&*self.cfg.fs, &self.cfg.root);
        let wanted: BTreeSet<String> = match &state {
            RootState::Dir(l) => l
                .entries()
                .iter()
                .filter(|e| crate::scan::is_layout_dir(&e.name) && e.is_dir())
                .map(|e| e.name.to_string())
                .collect(),
            _ => BTreeSet::new(),
        };
        let had: BTreeSet<String> = self.tree.dirs.keys().cloned().collect();
        let files_before = self.tree.root_listing().map(root_file_ids);
        if state != self.tree.state {
            self.tree.apply(Delta::Root(state.clone()));
            self.batch.push(Delta::Root(state));
        }
        self.refresh_root_files(files_before);
        for gone in had.difference(&wanted) {
            self.replace_dir(gone, None);
        }
        for new in wanted.difference(&had) {
            if self.stopping() {
                return;
            }
            let node = scan_dir(&*self.cfg.fs, &self.tree.path_of(&self.cfg.root, new, None));
            self.replace_dir(new, Some(node));
        }
        // a folder deleted and recreated under the same name between two looks: relist it
        let recreated: Vec<String> = wanted
            .intersection(&had)
            .filter(|name| {
                let listed = self
                    .tree
                    .root_entry(name)
                    .and_then(|e| e.stat().ok().map(identity));
                let known = self
                    .tree
                    .dirs
                    .get(*name)
                    .and_then(|n| n.stat.as_ref())
                    .map(identity);
                listed != known
            })
            .cloned()
            .collect();
        for name in recreated {
            if self.stopping() {
                return;
            }
            self.watched.remove(&name);
            self.rescan_dir(&name);
        }
    }

    /// Read the root's control files (the tracker) again when their listed version moved.
    fn refresh_root_files(&mut self, before: Option<Vec<Option<FileId>>>) {
        let listing = self.tree.root_listing();
        if listing.map(root_file_ids) == before && before.is_some() {
            return;
        }
        let now = crate::scan::root_files(&*self.cfg.fs, &self.cfg.root, listing);
        let names: BTreeSet<String> = now
            .keys()
            .chain(self.tree.root_files.keys())
            .cloned()
            .collect();
        for name in names {
            let read = now.get(&name).cloned();
            if self.tree.root_files.get(&name) != read.as_ref() {
                self.tree.apply(Delta::RootFile(name.clone(), read.clone()));
                self.batch.push(Delta::RootFile(name, read));
            }
        }
    }

    fn rescan_dir(&mut self, dir: &str) {
        let path = self.tree.path_of(&self.cfg.root, dir, None);
        if !self
            .cfg
            .fs
            .stat(&path)
            .is_ok_and(|s| s.kind == crate::model::FileKind::Dir)
        {
            return self.rescan_root();
        }
        let node = rescan_dir(&*self.cfg.fs, &path, self.tree.dirs.get(dir).map(|n| &**n));
        self.refresh_root_entry(dir);
        self.replace_dir(dir, Some(node));
    }

    /// The folder's own entry in the root listing: its times move with every change inside.
    fn refresh_root_entry(&mut self, dir: &str) {
        let os = self
            .tree
            .root_entry(dir)
            .map_or_else(|| std::ffi::OsString::from(dir), |e| e.os_name().to_owned());
        if let Some(e) = crate::scan::root_entry(&*self.cfg.fs, &self.cfg.root, &os) {
            if self.tree.root_entry(dir).as_ref() != Some(&e) {
                self.tree.apply(Delta::RootEntry(e.clone()));
                self.batch.push(Delta::RootEntry(e));
            }
        }
    }

    /// Apply a folder's new listing, push it, and send changed shards to the verifier.
    fn replace_dir(&mut self, dir: &str, node: Option<DirNode>) {
        let old = self.tree.dirs.get(dir).cloned();
        if old.as_deref() == node.as_ref() {
            if node.is_some() {
                self.watch_dir(dir);
            }
            return;
        }
        let present = node.is_some();
        // one copy of the listing, shared by this loop and whoever listens
        let node = node.map(std::sync::Arc::new);
        self.tree.apply(Delta::Dir(dir.to_owned(), node.clone()));
        self.batch.push(Delta::Dir(dir.to_owned(), node));
        self.submit_changes(dir, old.as_deref());
        if !present {
            return self.unwatch_dir(dir);
        }
        let id = self
            .tree
            .dirs
            .get(dir)
            .and_then(|n| n.stat.as_ref())
            .map(identity);
        let rearm = self.hints.is_some() && id.is_some() && self.watched.get(dir) != id.as_ref();
        self.watch_dir(dir);
        if rearm && self.watched.get(dir) == id.as_ref() {
            // files created between the listing and the new watch produced no event: list again
            let again = rescan_dir(
                &*self.cfg.fs,
                &self.tree.path_of(&self.cfg.root, dir, None),
                self.tree.dirs.get(dir).map(|n| &**n),
            );
            self.refresh_root_entry(dir);
            self.replace_dir(dir, Some(again));
        }
    }

    /// Queue the weights files of `dir` that are new or changed since `old`; cancel the
    /// checks of files that vanished.
    fn submit_changes(&mut self, dir: &str, old: Option<&DirNode>) {
        if old.is_none() {
            return self.submit_dir(dir);
        }
        let now: Vec<(String, Option<FileId>)> = self
            .tree
            .dirs
            .get(dir)
            .map(|d| {
                d.listing
                    .entries()
                    .iter()
                    .map(|e| (e.name.to_string(), e.stat().ok().map(FileId::from)))
                    .collect()
            })
            .unwrap_or_default();
        let before = |name: &str| {
            old.and_then(|o| o.listing.find(name))
                .and_then(|e| e.stat().ok().map(FileId::from))
        };
        for (name, id) in &now {
            if classify(name).is_weights() && (id.is_none() || before(name) != *id) {
                self.submit(dir, name);
            }
        }
        for e in old.map(|o| o.listing.entries()).unwrap_or_default() {
            if !now.iter().any(|(n, _)| **n == *e.name) {
                self.pool.cancel(dir, &e.name);
            }
        }
    }

    /// Every weights file of `dir`, through the backlog (newest steps first, a few at a time).
    fn submit_dir(&mut self, dir: &str) {
        if self.cfg.verify {
            self.backlog.add(dir);
        }
    }

    /// Top the verifier's queue up from the backlog — unless the listener has not taken the
    /// results already sent (a slow pipe): background checks wait for it rather than pile up
    /// in memory as undelivered messages.
    fn feed(&mut self) {
        let (done, submitted) = self.pool.progress();
        let queued = submitted.saturating_sub(done);
        self.held_back = false;
        if queued >= FEED_LOW || self.backlog.is_empty() {
            return;
        }
        if self.out.len() > LISTENER_LAG {
            self.held_back = true;
            return;
        }
        let Loop {
            backlog,
            tree,
            pool,
            cfg,
            ..
        } = self;
        for (dir, entries) in backlog.next(FEED_HIGH - queued, |d| tree.dirs.get(d).map(|n| &**n)) {
            let dir_path = tree.path_of(&cfg.root, &dir, None);
            for e in entries {
                let Ok(st) = e.stat() else { continue };
                pool.submit(Job {
                    dir: dir.to_string(),
                    name: e.name.to_string(),
                    path: dir_path.join(e.os_name()),
                    stat: st.clone(),
                    deep: false,
                    expected_sha256: None,
                    priority: BACKGROUND,
                });
            }
        }
    }

    fn submit(&mut self, dir: &str, name: &str) {
        if self.cfg.verify {
            self.submit_at(dir, name, BACKGROUND);
        }
    }

    /// Whole-file checks of `files`, each against the root's manifests when they name it.
    fn hash(&mut self, files: Vec<(String, String)>) {
        let manifest =
            crate::verify::digest::read_manifests(&*self.cfg.fs, &self.cfg.root, &self.tree);
        for (dir, name) in files {
            let Some(stat) = self
                .tree
                .dirs
                .get(&dir)
                .and_then(|d| d.listing.find(&name))
                .and_then(|e| e.stat().ok().cloned())
            else {
                continue;
            };
            let path = self.tree.path_of(&self.cfg.root, &dir, Some(&name));
            self.pool.submit(Job {
                expected_sha256: manifest.expected.get(&path).cloned(),
                dir,
                name,
                path,
                stat,
                deep: true,
                priority: URGENT,
            });
        }
    }

    fn submit_at(&mut self, dir: &str, name: &str, priority: u32) {
        let Some(st) = self
            .tree
            .dirs
            .get(dir)
            .and_then(|d| d.listing.find(name))
            .and_then(|e| e.stat().ok().cloned())
        else {
            return;
        };
        self.pool.submit(Job {
            dir: dir.into(),
            name: name.into(),
            path: self.tree.path_of(&self.cfg.root, dir, Some(name)),
            stat: st,
            deep: false,
            expected_sha256: None,
            priority,
        });
    }
}

/// The listed versions of the root's control files (a change means reading them again).
fn root_file_ids(l: &crate::model::Listing) -> Vec<Option<FileId>> {
    [crate::layout::mindformers_new::tracker::TRACKER]
        .iter()
        .map(|n| l.entries().file_id(n))
        .collect()
}
