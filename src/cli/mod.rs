//! Command-line adapter: clap parsing and exit codes. Each subcommand is a thin layer over the
//! library, in its own file.

mod demo;
mod grid;
mod resolve;
mod tui;
mod verify;
mod watch;

pub use demo::DemoArgs;
pub use grid::{grid_cmd, GridArgs};
pub use resolve::{py_realpath, resolve_cmd, ResolveArgs};
pub use verify::{verify_cmd, VerifyArgs};
pub use watch::{network_reason, watch_cmd, WatchArgs};

use crate::fsys::RealFs;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;

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
    /// terminal).
    pub dir: Option<String>,
    #[command(flatten)]
    pub ui: tui::UiArgs,
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
    Grid(GridArgs),
}

/// The job's shape, as MindFormers reads it from the environment (flags override).
#[derive(clap::Args, Debug, Clone)]
pub struct JobArgs {
    /// The job's world size (default: env RANK_SIZE, else the number of rank_* entries).
    #[arg(long, env = "RANK_SIZE", value_name = "N")]
    pub world_size: Option<u64>,
    #[arg(
        long,
        env = "DEVICE_NUM_PER_NODE",
        value_name = "N",
        default_value_t = 8
    )]
    pub device_num_per_node: i64,
    /// Comma-separated shared path prefixes (env SHARED_PATHS).
    #[arg(long, env = "SHARED_PATHS", value_name = "P1,P2")]
    pub shared_paths: Option<String>,
}

impl Default for JobArgs {
    fn default() -> Self {
        JobArgs {
            world_size: None,
            device_num_per_node: 8,
            shared_paths: None,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Ckpt,
    Safetensors,
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let command = match (cli.command, cli.dir) {
        (Some(c), _) => c,
        (None, Some(dir)) => {
            use std::io::IsTerminal;
            let sub = if std::io::stdout().is_terminal() {
                "watch"
            } else {
                "resolve"
            };
            let parsed = Cli::parse_from(["ckptscope", sub, dir.as_str()]).command;
            match parsed {
                Some(Command::Watch(args)) => {
                    return match watch::watch_config(&args) {
                        Ok(cfg) => tui::run(cfg, &cli.ui, &mut err),
                        Err(m) => fail(&mut err, &m),
                    };
                }
                Some(c) => c,
                None => return 2,
            }
        }
        (None, None) => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            return 2;
        }
    };
    match command {
        Command::Resolve(a) => resolve_cmd(&a, &RealFs, &mut out, &mut err),
        Command::Demo(a) => demo::demo_cmd(&a, &mut out, &mut err),
        Command::Verify(a) => verify_cmd(&a, &mut out, &mut err),
        Command::Watch(a) => watch_cmd(&a, &mut out, &mut err),
        Command::Grid(a) => grid_cmd(&a, &mut out, &mut err),
    }
}

pub(crate) fn fail(err: &mut dyn Write, msg: &str) -> i32 {
    let _ = writeln!(err, "ckptscope: {msg}");
    2
}
