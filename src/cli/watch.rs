//! `ckptscope watch DIR`: follow a live tree. `--ndjson` streams one JSON object per line
//! (flushed per line) for scripts and alerting; without it the same stream is printed for people
//! (the TUI will take over that role).

use super::{fail, FormatArg};
use crate::layout::mindformers::names::Fmt;
use crate::resolve::config::{EnvFacts, PathFacts, ResumeConfig};
use crate::watch::mounts::{is_network_fs, mount_of, parse_mountinfo};
use crate::watch::{spawn, WatchConfig};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// The checkpoint folder (holding rank_0/ … rank_N/).
    pub dir: String,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub ndjson: bool,
    /// Reconcile-poll interval in seconds (default: 10 when polling only, 30 with inotify).
    #[arg(long, value_name = "SECS")]
    pub poll: Option<f64>,
    /// Never use inotify, poll only (what network filesystems get automatically).
    #[arg(long)]
    pub no_inotify: bool,
    /// Do not verify shards in the background (no verdict events, no safe pick).
    #[arg(long)]
    pub no_verify: bool,
    /// load_ckpt_format.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    #[command(flatten)]
    pub job: super::JobArgs,
    #[command(flatten)]
    pub ui: super::tui::UiArgs,
}

/// Why this folder must be polled, when it sits on a network or parallel filesystem.
pub fn network_reason(dir: &str) -> Option<String> {
    let real = std::fs::canonicalize(dir).ok()?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mounts = parse_mountinfo(&text);
    let m = mount_of(&mounts, &real.to_string_lossy())?;
    is_network_fs(&m.fstype).then(|| {
        format!(
            "{} is on {} ({}): writes from other hosts produce no local events, so it is polled",
            dir, m.fstype, m.mountpoint
        )
    })
}

/// The watcher configuration for these arguments (usage errors as messages).
pub fn watch_config(a: &WatchArgs) -> Result<WatchConfig, String> {
    if !Path::new(&a.dir).is_dir() {
        return Err(format!(
            "{}: not a folder; pass the checkpoint folder that holds rank_0/ …",
            a.dir
        ));
    }
    let poll_only = if a.no_inotify {
        Some("--no-inotify".to_owned())
    } else {
        network_reason(&a.dir)
    };
    let secs = a
        .poll
        .unwrap_or(if poll_only.is_some() { 10.0 } else { 30.0 });
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!(
            "--poll {secs}: expected a positive number of seconds"
        ));
    }
    let fmt = match a.format {
        Some(FormatArg::Safetensors) => Fmt::Safetensors,
        _ => Fmt::Ckpt,
    };
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cfg = WatchConfig {
        root: a.dir.clone(),
        poll: Duration::from_secs_f64(secs),
        poll_only,
        debounce: Duration::from_millis(50),
        verify: !a.no_verify,
        config: ResumeConfig {
            load_checkpoint: Some(a.dir.clone()),
            fmt,
            ..Default::default()
        },
        env: EnvFacts {
            world_size: a.job.world_size.unwrap_or(0),
            device_num_per_node: a.job.device_num_per_node,
            shared_paths: a.job.shared_paths.clone(),
            ..Default::default()
        },
        paths: PathFacts {
            abspath: crate::py::text::abspath(&a.dir, &cwd),
            realpath: super::py_realpath(&a.dir, &cwd),
            shared_realpaths: a
                .job
                .shared_paths
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| (s.to_owned(), super::py_realpath(s, &cwd)))
                .collect(),
            ..Default::default()
        },
        watch_limit: None,
    };
    Ok(cfg)
}

pub fn watch_cmd(a: &WatchArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let cfg = match watch_config(a) {
        Ok(c) => c,
        Err(m) => return fail(err, &m),
    };
    if !a.ndjson && std::io::stdout().is_terminal() {
        return super::tui::run(cfg, &a.ui, err);
    }
    let handle = spawn(cfg);
    for e in handle.events.iter() {
        let ts = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let line = if a.ndjson { e.to_ndjson(ts) } else { e.human() };
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            return 0; // the reader went away (e.g. `| head`)
        }
    }
    0
}
