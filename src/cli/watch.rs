//! `ckptscope watch DIR`: follow a live tree. On a terminal (without `--ndjson`) the TUI opens;
//! otherwise the session's events stream out, one JSON object per line with `--ndjson` (flushed
//! per line) or one line of text each. The watcher only keeps the session's model current; the
//! `resolution` lines come from the same session code as `resolve --json`.

use super::fail;
use crate::fsys::Fs;
use crate::job::{Environment, JobContext, JobFlags};
use crate::session::events::Event;
use crate::session::Session;
use crate::watch::{spawn_many, WatchConfig, WatchError, WatchMsg};
use crossbeam_channel::RecvTimeoutError;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// The checkpoint folder (holding rank_0/ … rank_N/).
    pub dir: std::ffi::OsString,
    /// Further roots: the same folder on the job's other nodes (not shared), watched as one
    /// tree with it.
    #[arg(value_name = "MORE_ROOTS")]
    pub more_roots: Vec<std::ffi::OsString>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub ndjson: bool,
    /// Speak the watch protocol on standard output and input (what an ssh:// root runs on
    /// its host; README, "Jobs bigger than one machine").
    #[arg(long, conflicts_with_all = ["ndjson", "more_roots"])]
    pub wire: bool,
    /// Reconcile-poll interval in seconds (default: 10 when polling only, 30 with inotify).
    #[arg(long, value_name = "SECS")]
    pub poll: Option<f64>,
    /// Never use inotify, poll only (what network filesystems get automatically).
    #[arg(long)]
    pub no_inotify: bool,
    /// Do not verify every shard in the background (the shards the answer needs are still
    /// checked).
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub job: JobFlags,
    #[command(flatten)]
    pub ui: super::tui::UiArgs,
}

/// The least time between two resolutions while changes stream in.
pub const RESOLUTION_EVERY: Duration = Duration::from_millis(300);

/// The longest a resolution waits for the checks it asked of remote hosts.
const HOLD_LIMIT: Duration = Duration::from_secs(10);

/// The job context and watcher configuration for these arguments (usage errors as messages).
pub fn setup(
    a: &WatchArgs,
    fs: &Arc<dyn Fs>,
    env: &Environment,
) -> Result<(JobContext, WatchConfig), String> {
    // (the job's filesystem, with its buckets when a root is s3://)
    let fs = &mut fs.clone();
    let ctx = super::gather(fs, env, &a.dir, &a.more_roots, &a.job).map_err(|e| e.to_string())?;
    let mut cfg =
        WatchConfig::for_job(&ctx, fs.clone(), a.poll, a.no_inotify).map_err(|e| e.to_string())?;
    cfg.verify = !a.no_verify;
    Ok((ctx, cfg))
}

pub fn watch_cmd(
    a: &WatchArgs,
    fs: Arc<dyn Fs>,
    env: &Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let (ctx, cfg) = match setup(a, &fs, env) {
        Ok(x) => x,
        Err(m) => return fail(err, &m),
    };
    if a.wire {
        return wire(&ctx, cfg, out, err);
    }
    if !a.ndjson && std::io::stdout().is_terminal() {
        return super::tui::run(ctx, cfg, &a.ui, env, None, err);
    }
    stream(ctx, cfg, a.ndjson, out, err)
}

/// The remote end of an ssh:// root: the watch of one local folder in the watch protocol.
fn wire(ctx: &JobContext, cfg: WatchConfig, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if ctx.has_remote() {
        return fail(
            err,
            "--wire watches a folder of this host: give its path, not an ssh:// URL",
        );
    }
    let hello =
        crate::remote::wire::Hello::new(&ctx.root, &ctx.canonical.to_string_lossy(), &ctx.paths);
    let input = std::io::BufReader::new(std::io::stdin());
    match crate::remote::serve::serve(crate::watch::spawn(cfg), hello, input, out) {
        crate::remote::serve::Served::Done => 0,
        crate::remote::serve::Served::Failed(why) => fail(err, &why),
    }
}

fn now_ts() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Why the stream ended early.
enum Stop {
    /// The reader went away (`| head`): not an error.
    ReaderGone,
    Failed(String),
}

fn print(out: &mut dyn Write, e: &Event, ndjson: bool) -> Result<(), Stop> {
    let line = if ndjson {
        e.to_ndjson(now_ts())
            .map_err(|x| Stop::Failed(format!("cannot write an event as JSON: {x}")))?
    } else {
        e.human()
    };
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Stop::ReaderGone,
            _ => Stop::Failed(format!(
                "cannot write the event stream: {e}; free space or choose another output"
            )),
        })
}

/// Print the session's events as they come, and the resolution whenever it changes.
fn stream(
    ctx: JobContext,
    cfg: WatchConfig,
    ndjson: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let fs = cfg.fs.clone();
    let cfgs = match cfg.for_roots(&ctx) {
        Ok(c) => c,
        Err(e) => return fail(err, &e.to_string()),
    };
    let handle = spawn_many(cfgs, ctx.node_block());
    let mut session = match handle.events.recv() {
        Ok(WatchMsg::Started { tree, mode }) => {
            let files = tree.dirs.values().map(|d| d.listing.entries().len()).sum();
            let ranks = tree.dirs.len();
            // a root on another host is checked there: what the answer needs is asked for
            let remote = ctx.has_remote();
            let mut s = Session::from_tree(fs, ctx, *tree);
            if remote {
                s = s.with_disk_checks(crate::session::DiskChecks::Deferred);
            }
            s.note(Event::Snapshot {
                root: s.ctx().first_label().to_owned(),
                ranks,
                files,
                mode,
            });
            s
        }
        Ok(WatchMsg::Failed(e)) => return fail(err, &e.to_string()),
        _ => return fail(err, &died("before its first scan").to_string()),
    };
    let r = follow(&mut session, &handle, ndjson, out);
    handle.stop();
    match r {
        Ok(()) | Err(Stop::ReaderGone) => 0,
        Err(Stop::Failed(m)) => fail(err, &m),
    }
}

fn died(when: &str) -> WatchError {
    WatchError::Died {
        why: format!("its channel closed {when}"),
    }
}

fn follow(
    session: &mut Session,
    handle: &crate::watch::WatchHandle,
    ndjson: bool,
    out: &mut dyn Write,
) -> Result<(), Stop> {
    let events = &handle.events;
    let mut last = None;
    let mut dirty = true;
    let mut last_resolution = Instant::now() - RESOLUTION_EVERY;
    // since when a resolution is held back while the hosts of remote roots check what it
    // needs (a `"safe": null` printed then would read as "no safe step", not "not yet")
    let mut held: Option<Instant> = None;
    loop {
        if dirty && last_resolution.elapsed() >= RESOLUTION_EVERY {
            let r = session.resolution();
            let wanted = session.take_wanted();
            if !wanted.is_empty() {
                handle.verify_now(wanted);
            }
            for e in session.drain_events() {
                print(out, &e, ndjson)?;
            }
            let hold = session.outstanding() > 0
                && held.get_or_insert_with(Instant::now).elapsed() < HOLD_LIMIT;
            if !hold {
                held = None;
                if last.as_ref() != Some(&r) {
                    print(out, &Event::Resolution(Box::new(r.clone())), ndjson)?;
                    last = Some(r);
                }
            }
            (dirty, last_resolution) = (false, Instant::now());
        }
        let wait = match (dirty, held) {
            (true, _) => RESOLUTION_EVERY.saturating_sub(last_resolution.elapsed()),
            (false, Some(h)) => HOLD_LIMIT.saturating_sub(h.elapsed()),
            (false, None) => Duration::from_secs(3600),
        };
        let msg = match events.recv_timeout(wait) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                // held long enough: the answer as it stands is printed
                dirty |= held.is_some();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Stop::Failed(died("while watching").to_string()))
            }
        };
        for m in std::iter::once(msg).chain(events.try_iter()) {
            session.absorb(m).map_err(|e| Stop::Failed(e.to_string()))?;
        }
        for e in session.drain_events() {
            print(out, &e, ndjson)?;
        }
        dirty = true;
    }
}
