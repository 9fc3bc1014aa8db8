//! A watcher whose source is ckptscope on another host ([`crate::remote`]): the remote
//! `watch --wire` started through the ssh client, its protocol lines read back into the
//! messages a local watcher sends. The first connection's failure ends the watch with the
//! client's own words; a connection lost later shows as a disconnected root (its last state
//! kept, stale) and is made again with backoff, the folders it then holds replacing the old.

use super::run::{Request, WatchConfig, WatchError, WatchHandle, WatchMsg};
use super::Mode;
use crate::model::{Delta, Tree};
use crate::remote::wire::{self, Ask, Line, PROTOCOL, VERSION};
use crate::remote::{SshRoot, SshSettings};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use std::collections::{BTreeSet, VecDeque};
use std::io::{BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Where a remote root is and how it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSource {
    pub root: SshRoot,
    pub ssh: SshSettings,
    /// The job's flags the host needs to see the job's paths as its MindFormers does
    /// (`--output-dir`, `--shared-paths`): its `hello` answers with them.
    pub job_args: Vec<String>,
}

impl RemoteSource {
    /// `root` of the job `ctx`, reached as `ctx` says.
    pub fn of(ctx: &crate::job::JobContext, root: SshRoot) -> RemoteSource {
        let mut job_args = vec!["--output-dir".to_owned(), ctx.config.output_dir.clone()];
        if let Some(p) = &ctx.env.shared_paths {
            job_args.extend(["--shared-paths".to_owned(), p.clone()]);
        }
        RemoteSource {
            root,
            ssh: ctx.ssh.clone(),
            job_args,
        }
    }
}

/// Waits between reconnections: doubling from 1 s to at most 30 s.
const BACKOFF: [u64; 6] = [1, 2, 4, 8, 16, 30];

/// How many of the client's last error lines are kept (its own words end the first failure).
const STDERR_LINES: usize = 8;

/// Connections of this process that may be starting at once (from starting the client to the
/// remote's hello). A job's roots often share one sshd — a jump host's, or one host holding
/// several nodes' disks — whose default `MaxStartups 10:30:100` drops connections past 10
/// unauthenticated ones: 16 roots starting together lost some ("kex_exchange_identification:
/// Connection closed by remote host", found by the ssh scale benchmark).
const MAX_STARTING: usize = 8;

static STARTING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A turn to start a connection, given back when dropped.
struct Starting;

impl Starting {
    /// Wait for a turn (`None`: asked to stop meanwhile).
    fn take(stopping: &AtomicBool) -> Option<Starting> {
        let (m, cv) = &STARTING;
        let mut n = m.lock().unwrap_or_else(|p| p.into_inner());
        while *n >= MAX_STARTING {
            if stopping.load(Ordering::Relaxed) {
                return None;
            }
            n = cv
                .wait_timeout(n, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *n += 1;
        Some(Starting)
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        let (m, cv) = &STARTING;
        let mut n = m.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        cv.notify_one();
    }
}

/// Watch `cfg`'s root on `src`'s host.
pub fn spawn(cfg: WatchConfig, src: RemoteSource) -> WatchHandle {
    super::run::on_thread(move |out, flag, req_rx| Client::new(cfg, src, out, flag).run(&req_rx))
}

/// Why a connection ended.
enum End {
    /// Asked to stop.
    Stop,
    /// It cannot work (another protocol version, no client program): said once, not retried.
    Fatal(String),
    /// It was lost (and had reached its first scan, or not).
    Lost { why: String, was_up: bool },
}

struct Client {
    cfg: WatchConfig,
    src: RemoteSource,
    out: Sender<WatchMsg>,
    stopping: Arc<AtomicBool>,
    /// What the local side holds of this root, to replace after a reconnection: its folders
    /// and root files (`None` before the first scan).
    known: Option<(BTreeSet<String>, BTreeSet<String>)>,
    /// Verification asked for while disconnected: asked again once connected.
    pending: Vec<Ask>,
}

/// One connection: the client process and what reads its output.
struct Conn {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Result<Line, String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Conn {
    /// The client's last words (escaped: they reach a terminal), or how it ended.
    fn last_words(&mut self) -> String {
        let said = self
            .stderr
            .lock()
            .map(|l| l.iter().rev().find(|s| !s.trim().is_empty()).cloned())
            .unwrap_or_default();
        match said {
            Some(s) => s,
            None => match self.child.try_wait() {
                Ok(Some(st)) => format!("the connection ended ({st})"),
                _ => "the connection ended".into(),
            },
        }
    }

    fn ask(&mut self, a: &Ask) -> Result<(), String> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err("the connection is closed".into());
        };
        writeln!(stdin, "{}", wire::encode(a))
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("cannot send a request ({e})"))
    }
}

impl Client {
    fn new(
        cfg: WatchConfig,
        src: RemoteSource,
        out: Sender<WatchMsg>,
        stopping: Arc<AtomicBool>,
    ) -> Client {
        Client {
            cfg,
            src,
            out,
            stopping,
            known: None,
            pending: Vec::new(),
        }
    }

    fn run(&mut self, req: &Receiver<Request>) {
        let mut attempt = 0usize;
        loop {
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
            let why = match self.connect(req) {
                End::Stop => return,
                End::Fatal(why) => {
                    let _ = self.out.send(WatchMsg::Failed(WatchError::Died { why }));
                    return;
                }
                End::Lost { why, was_up } => {
                    if was_up {
                        attempt = 0;
                    }
                    why
                }
            };
            if self.known.is_none() {
                // never seen: the user's command or host is wrong, say it now
                let _ = self.out.send(WatchMsg::Failed(WatchError::Died {
                    why: format!("{}: {why}", self.src.root.label),
                }));
                return;
            }
            let wait = BACKOFF[attempt.min(BACKOFF.len() - 1)];
            attempt += 1;
            let reason = format!("{why}; reconnecting in {wait} s (attempt {attempt})");
            let _ = self.out.send(WatchMsg::Mode {
                mode: Mode::Disconnected {
                    root: self.src.root.label.clone(),
                    reason: reason.clone(),
                },
                reason,
            });
            if self.pause(req, Duration::from_secs(wait)) {
                return;
            }
        }
    }

    /// Wait `d` while keeping requests (`true`: asked to stop).
    fn pause(&mut self, req: &Receiver<Request>, d: Duration) -> bool {
        let until = std::time::Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match req.recv_timeout(left) {
                Ok(Request::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return true
                }
                Ok(Request::Verify(files)) => self.pending.push(Ask::Verify { files }),
                Ok(Request::Hash(files)) => self.pending.push(Ask::Hash { files }),
                Ok(Request::Resync) => {}
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// The remote command's arguments after the program.
    fn remote_args(&self) -> Vec<String> {
        let mut a = vec!["watch".to_owned(), "--wire".to_owned()];
        a.push("--poll".into());
        a.push(self.cfg.poll.as_secs_f64().to_string());
        if self.cfg.poll_only.as_deref() == Some("--no-inotify") {
            a.push("--no-inotify".into());
        }
        if !self.cfg.verify {
            a.push("--no-verify".into());
        }
        a.extend(self.src.job_args.iter().cloned());
        a.push("--".into());
        a.push(self.src.root.path.clone());
        a
    }

    fn open(&self) -> Result<Conn, End> {
        let mut cmd = self.src.root.command(&self.src.ssh, &self.remote_args());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            End::Fatal(format!(
                "{}: cannot run the ssh client {:?} ({e}); install OpenSSH's client or give --ssh-command",
                self.src.root.label,
                self.src.ssh.command.first().map_or("ssh", String::as_str)
            ))
        })?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(e) = child.stderr.take() {
            let keep = stderr.clone();
            std::thread::spawn(move || keep_tail(e, &keep));
        }
        let (tx, lines) = bounded(1024);
        if let Some(o) = child.stdout.take() {
            std::thread::spawn(move || read_lines(o, &tx));
        }
        let stdin = child.stdin.take();
        Ok(Conn {
            child,
            stdin,
            lines,
            stderr,
        })
    }

    /// One connection, from starting the client to its end.
    fn connect(&mut self, req: &Receiver<Request>) -> End {
        let Some(turn) = Starting::take(&self.stopping) else {
            return End::Stop;
        };
        let mut turn = Some(turn);
        let mut conn = match self.open() {
            Ok(c) => c,
            Err(e) => return e,
        };
        let lost = |conn: &mut Conn, why: Option<String>, was_up| End::Lost {
            why: why.unwrap_or_else(|| conn.last_words()),
            was_up,
        };
        // the hello line, then the first scan
        let mut tree: Option<Tree> = None;
        let mut mode = None;
        let mut hello = false;
        let mut host_paths = None;
        let started = loop {
            let line = select! {
                recv(conn.lines) -> l => l,
                recv(req) -> r => match r {
                    Ok(Request::Verify(files)) => { self.pending.push(Ask::Verify { files }); continue }
                    Ok(Request::Hash(files)) => { self.pending.push(Ask::Hash { files }); continue }
                    Ok(Request::Resync) => continue,
                    Ok(Request::Stop) | Err(_) => return End::Stop,
                },
            };
            let line = match line {
                Ok(Ok(l)) => l,
                Ok(Err(why)) if !hello => {
                    return End::Fatal(format!(
                        "{}: the remote program did not start with the watch protocol's hello ({why}); is --remote-ckptscope a ckptscope of this release?",
                        self.src.root.label
                    ))
                }
                Ok(Err(why)) => return lost(&mut conn, Some(why), false),
                Err(_) => return lost(&mut conn, None, false),
            };
            match (hello, line) {
                (false, Line::Hello(h)) => {
                    if h.protocol != PROTOCOL || h.version != VERSION {
                        return End::Fatal(format!(
                            "{}: the remote ckptscope {} speaks {} version {}, this one {PROTOCOL} version {VERSION}; install the same ckptscope release on {}",
                            self.src.root.label,
                            esc(&h.ckptscope),
                            esc(&h.protocol),
                            h.version,
                            self.src.root.dest
                        ));
                    }
                    let facts = h
                        .paths
                        .ok_or_else(|| "a hello without the host's path facts".to_owned())
                        .and_then(wire::path_facts);
                    match facts {
                        Ok(p) => host_paths = Some(Box::new(p)),
                        Err(why) => return lost(&mut conn, Some(protocol(why)), false),
                    }
                    hello = true;
                    // authenticated and running: the next connection may start
                    drop(turn.take());
                }
                (false, _) => {
                    return End::Fatal(format!(
                        "{}: the remote program did not start with the watch protocol's hello; is --remote-ckptscope a ckptscope of this release?",
                        self.src.root.label
                    ))
                }
                (true, Line::Begin { state, root_files, mode: m, .. }) => {
                    // (the path as MindFormers there is given it; the URL names the root)
                    let mut t = Tree {
                        root: self.src.root.path.clone(),
                        host_paths: host_paths.clone(),
                        ..Tree::default()
                    };
                    match decode_begin(state, root_files, &mut t) {
                        Ok(()) => {}
                        Err(why) => return lost(&mut conn, Some(why), false),
                    }
                    mode = Some(m);
                    tree = Some(t);
                }
                (true, Line::Dir { name, node }) => {
                    let Some(t) = tree.as_mut() else {
                        return lost(&mut conn, Some(out_of_order("dir")), false);
                    };
                    match wire::shown(name).and_then(|n| Ok((n, wire::dir_node(node)?))) {
                        Ok((n, node)) => {
                            t.dirs.insert(n, Arc::new(node));
                        }
                        Err(why) => return lost(&mut conn, Some(protocol(why)), false),
                    }
                }
                (true, Line::Delta(d)) => {
                    let Some(t) = tree.as_mut() else {
                        return lost(&mut conn, Some(out_of_order("delta")), false);
                    };
                    match wire::delta(d) {
                        Ok(d) => t.apply(d),
                        Err(why) => return lost(&mut conn, Some(protocol(why)), false),
                    }
                }
                (true, Line::Started {}) => match (tree.take(), mode.take()) {
                    (Some(t), Some(m)) => break (t, m),
                    _ => return lost(&mut conn, Some(out_of_order("started")), false),
                },
                (true, Line::Failed { why }) => {
                    return lost(&mut conn, Some(format!("the remote watcher: {}", esc(&why))), false)
                }
                (true, Line::Mode { .. } | Line::Rescan { .. }) => {}
                (true, Line::Hello(_) | Line::Flush {}) => {
                    return lost(&mut conn, Some(out_of_order("hello/flush")), false)
                }
            }
        };
        self.publish(started);
        // what was asked while disconnected (kept until it is sent)
        while let Some(a) = self.pending.first() {
            if let Err(why) = conn.ask(a) {
                return lost(&mut conn, Some(why), true);
            }
            self.pending.remove(0);
        }
        self.follow(&mut conn, req)
    }

    /// A first scan arrived: the first becomes the watch's start; a later one replaces what
    /// the local side holds of this root (folders gone since are removed).
    fn publish(&mut self, (tree, mode): (Tree, Mode)) {
        let dirs: BTreeSet<String> = tree.dirs.keys().cloned().collect();
        let files: BTreeSet<String> = tree.root_files.keys().cloned().collect();
        match self.known.replace((dirs.clone(), files.clone())) {
            None => {
                let _ = self.out.send(WatchMsg::Started {
                    tree: Box::new(tree),
                    mode,
                });
            }
            Some((old_dirs, old_files)) => {
                let mut ds = vec![Delta::Root(tree.state.clone())];
                ds.extend(
                    old_dirs
                        .difference(&dirs)
                        .map(|d| Delta::Dir(d.clone(), None)),
                );
                ds.extend(
                    old_files
                        .difference(&files)
                        .map(|f| Delta::RootFile(f.clone(), None)),
                );
                ds.extend(
                    tree.root_files
                        .iter()
                        .map(|(n, r)| Delta::RootFile(n.clone(), Some(r.clone()))),
                );
                ds.extend(
                    tree.dirs
                        .iter()
                        .map(|(n, d)| Delta::Dir(n.clone(), Some(d.clone()))),
                );
                ds.extend(tree.verdicts.iter().map(|((dir, file), e)| {
                    Delta::Verdict(crate::model::Verified {
                        dir: dir.to_owned(),
                        file: file.to_owned(),
                        id: e.id,
                        check: e.check.clone(),
                    })
                }));
                let _ = self.out.send(WatchMsg::Deltas(ds));
                let _ = self.out.send(WatchMsg::Mode {
                    mode,
                    // (a merge of several roots puts the root's name before it)
                    reason: "reconnected".into(),
                });
            }
        }
    }

    /// Changes as they come, requests as they are made, until the connection ends.
    fn follow(&mut self, conn: &mut Conn, req: &Receiver<Request>) -> End {
        let mut batch = Vec::new();
        loop {
            let line = select! {
                recv(conn.lines) -> l => l,
                recv(req) -> r => {
                    let ask = match r {
                        Ok(Request::Verify(files)) => Ask::Verify { files },
                        Ok(Request::Hash(files)) => Ask::Hash { files },
                        Ok(Request::Resync) => Ask::Resync {},
                        Ok(Request::Stop) | Err(_) => return End::Stop,
                    };
                    if let Err(why) = conn.ask(&ask) {
                        if !matches!(ask, Ask::Resync {}) {
                            self.pending.push(ask);
                        }
                        return End::Lost { why, was_up: true };
                    }
                    continue;
                }
            };
            let line = match line {
                Ok(Ok(l)) => l,
                Ok(Err(why)) => return End::Lost { why, was_up: true },
                Err(_) => {
                    return End::Lost {
                        why: conn.last_words(),
                        was_up: true,
                    }
                }
            };
            let msg = match line {
                Line::Delta(d) => match wire::delta(d) {
                    Ok(d) => {
                        self.track(&d);
                        batch.push(d);
                        continue;
                    }
                    Err(why) => {
                        return End::Lost {
                            why: protocol(why),
                            was_up: true,
                        }
                    }
                },
                Line::Flush {} => WatchMsg::Deltas(std::mem::take(&mut batch)),
                Line::Mode { mode, reason } => WatchMsg::Mode {
                    mode,
                    reason: esc(&reason),
                },
                Line::Rescan { reason } => WatchMsg::Rescan {
                    reason: esc(&reason),
                },
                Line::Failed { why } => {
                    return End::Lost {
                        why: format!("the remote watcher: {}", esc(&why)),
                        was_up: true,
                    }
                }
                Line::Hello(_) | Line::Begin { .. } | Line::Dir { .. } | Line::Started {} => {
                    return End::Lost {
                        why: out_of_order("a first scan's line"),
                        was_up: true,
                    }
                }
            };
            if self.out.send(msg).is_err() {
                return End::Stop;
            }
        }
    }

    /// Keep the folders and root files known current (what a reconnection replaces).
    fn track(&mut self, d: &Delta) {
        let Some((dirs, files)) = self.known.as_mut() else {
            return;
        };
        match d {
            Delta::Dir(n, Some(_)) => {
                dirs.insert(n.clone());
            }
            Delta::Dir(n, None) => {
                dirs.remove(n);
            }
            Delta::RootFile(n, Some(_)) => {
                files.insert(n.clone());
            }
            Delta::RootFile(n, None) => {
                files.remove(n);
            }
            _ => {}
        }
    }
}

fn decode_begin(
    state: wire::WRootState,
    root_files: Vec<(String, wire::WFileRead)>,
    t: &mut Tree,
) -> Result<(), String> {
    t.state = wire::root_state(state).map_err(protocol)?;
    for (n, r) in root_files {
        t.root_files.insert(
            wire::shown(n).map_err(protocol)?,
            wire::file_read(r).map_err(protocol)?,
        );
    }
    Ok(())
}

fn protocol(why: String) -> String {
    format!("the remote sent a line this build cannot read: {why}")
}

fn out_of_order(what: &str) -> String {
    protocol(format!("{what} out of order"))
}

/// Text from the remote host, safe to print.
fn esc(s: &str) -> String {
    crate::model::shown_name(s).into_owned()
}

/// Read protocol lines into `tx` until the end of the stream (then an error saying why, if any).
fn read_lines(o: impl Read, tx: &Sender<Result<Line, String>>) {
    let mut r = BufReader::with_capacity(1 << 16, o);
    loop {
        let item = match wire::read_line(&mut r) {
            Ok(Some(l)) => serde_json::from_slice::<Line>(&l).map_err(|e| {
                protocol(format!(
                    "{e} in {:?}",
                    esc(&String::from_utf8_lossy(&l[..l.len().min(80)]))
                ))
            }),
            Ok(None) => return,
            Err(e) => Err(format!("reading the remote watcher's output failed ({e})")),
        };
        let end = item.is_err();
        if tx.send(item).is_err() || end {
            return;
        }
    }
}

/// Keep the last few lines the client writes on its error output (each cut at 1 KiB).
fn keep_tail(e: impl Read, keep: &Mutex<VecDeque<String>>) {
    let mut r = BufReader::new(e);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        use std::io::BufRead;
        match r.by_ref().take(1024).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = esc(String::from_utf8_lossy(&buf).trim_end());
                if let Ok(mut k) = keep.lock() {
                    if k.len() == STDERR_LINES {
                        k.pop_front();
                    }
                    k.push_back(line);
                }
            }
        }
    }
}
