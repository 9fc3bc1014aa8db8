//! Command-line adapter: clap parsing and exit codes. Each subcommand is a thin layer over the
//! library, in its own file: it gathers the job context ([`crate::job`]), opens a
//! [`crate::session::Session`] and prints what the session answers.

mod demo;
mod grid;
mod resolve;
mod tui;
mod verify;
mod watch;

pub use demo::DemoArgs;
pub use grid::{grid_cmd, GridArgs};
pub use resolve::{resolve_cmd, ResolveArgs};
pub use tui::{ascii_locale, start as tui_start, UiArgs};
pub use verify::{verify_cmd, VerifyArgs};
pub use watch::{setup as watch_setup, watch_cmd, WatchArgs};

use crate::fsys::{Fs, RealFs};
use crate::job::Environment;
use crate::objstore::{JobFs, S3Settings, S3Url};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "ckptscope",
    version,
    about = "See, verify and predict how a distributed training job resumes from its checkpoints"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Open the TUI on this checkpoint folder (or print the report when stdout is not a
    /// terminal); further folders are the same folder on the job's other nodes.
    pub dirs: Vec<std::ffi::OsString>,
    #[command(flatten)]
    pub ui: tui::UiArgs,
    /// The job's settings, as `watch` and `resolve` take them (`ckptscope A B --world-size 24`).
    #[command(flatten)]
    pub job: crate::job::JobFlags,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// What MindFormers 2.1.0 would resume from, rank by rank, with the data skip and warnings.
    Resolve(Box<ResolveArgs>),
    /// A simulated trainer writes real checkpoints live, with scripted faults (--list).
    Demo(Box<DemoArgs>),
    /// Check every shard without loading it: structure, tensor sizes, CRC and SHA-256 (--hash).
    Verify(Box<VerifyArgs>),
    /// Follow a live tree: changes, verdicts and the resume decision as they happen.
    Watch(Box<WatchArgs>),
    /// The step × rank grid as plain text (every shard verified, picks marked).
    Grid(Box<GridArgs>),
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let env = Environment::from_process();
    let fs: Arc<dyn Fs> = Arc::new(RealFs);
    let command = match (cli.command, cli.dirs.is_empty()) {
        (Some(c), _) => c,
        (None, false) => {
            use std::io::IsTerminal;
            let sub = if std::io::stdout().is_terminal() {
                "watch"
            } else {
                "resolve"
            };
            // (`--`: a folder named like a flag, `ckptscope -- -x/ckpt`, stays a folder)
            let argv = [
                std::ffi::OsStr::new("ckptscope"),
                sub.as_ref(),
                "--".as_ref(),
            ]
            .into_iter()
            .chain(cli.dirs.iter().map(|d| d.as_os_str()));
            match Cli::parse_from(argv).command {
                Some(Command::Watch(mut args)) => {
                    args.ui = cli.ui;
                    args.job = cli.job;
                    Command::Watch(args)
                }
                Some(Command::Resolve(mut args)) => {
                    args.job = cli.job;
                    Command::Resolve(args)
                }
                Some(c) => c,
                None => return 2,
            }
        }
        (None, true) => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            return 2;
        }
    };
    match command {
        Command::Resolve(a) => resolve_cmd(&a, fs, &env, &mut out, &mut err),
        Command::Demo(a) => demo::demo_cmd(&a, &env, &mut out, &mut err),
        Command::Verify(a) => verify_cmd(&a, fs, &env, &mut out, &mut err),
        Command::Watch(a) => watch_cmd(&a, fs, &env, &mut out, &mut err),
        Command::Grid(a) => grid_cmd(&a, fs, &env, &mut out, &mut err),
    }
}

/// The job context of `first` and any further roots (other nodes' copies of the folder). When
/// a root is in object storage (`s3://`), `fs` becomes the job's filesystem ([`JobFs`]): this
/// machine's, with the job's buckets beside it — everything after reads through it.
pub(crate) fn gather(
    fs: &mut Arc<dyn Fs>,
    env: &crate::job::Environment,
    first: &std::ffi::OsStr,
    more: &[std::ffi::OsString],
    flags: &crate::job::JobFlags,
) -> Result<crate::job::JobContext, crate::job::JobError> {
    let roots: Vec<std::ffi::OsString> = std::iter::once(first.to_owned())
        .chain(more.iter().cloned())
        .collect();
    let urls = roots
        .iter()
        .filter_map(|r| S3Url::parse(r.to_str()?))
        .map(|u| {
            // a new-format `iteration_N` folder given to resume from is read with its checkpoint
            // folder (the job context takes the parent as the root): list the parent
            u.map(|u| match (u.is_iteration(), flags.layout) {
                (true, Some(crate::job::LayoutArg::Legacy)) | (false, _) => u,
                (true, _) => u.parent(),
            })
        })
        .collect::<Result<Vec<S3Url>, String>>()
        .map_err(crate::job::JobError::Roots)?;
    if !urls.is_empty() {
        let settings = S3Settings::from_flags(flags).map_err(crate::job::JobError::Roots)?;
        let job = JobFs::new(fs.clone(), &urls, &settings).map_err(crate::job::JobError::Roots)?;
        for s in job.stores() {
            // a bucket that cannot be listed is the command line's mistake, said before anything
            if let Err(why) = s.listed() {
                return Err(crate::job::JobError::Roots(why));
            }
        }
        *fs = Arc::new(job);
    }
    crate::job::JobContext::gather_roots(&**fs, env, &roots, flags)
}

/// A one-shot command's last words on object storage: the requests it made (they are billed).
pub(crate) fn say_costs(fs: &dyn Fs, err: &mut dyn Write) {
    for line in fs.costs() {
        let _ = writeln!(err, "ckptscope: {}", crate::report::terminal::safe(&line));
    }
}

pub(crate) fn fail(err: &mut dyn Write, msg: &str) -> i32 {
    let _ = writeln!(err, "ckptscope: {}", crate::report::terminal::safe(msg));
    2
}
