//! The whole answer for a new-format tree, computed from the model alone (through
//! [`TreeFs`]): MindFormers' stages per rank (config, resolve, context, weights), the data skip,
//! every `iteration_*` folder's state, the safe pick with the change that reaches it, and the
//! hazards of `mindformers-new-format.md` §13. The session is its only caller.

use super::answer::{resume, Failure, Mode};
use super::config::{config, Config};
use super::context::{Resumed, RunArgs};
use super::names::parse_shard_name;
use super::resolve::{get_checkpoint_path, At};
use super::tracker::TRACKER;
use crate::fsys::Fs;
use crate::job::JobContext;
use crate::model::{FileRead, ShardCheck, Tree, TreeFs, Verdict};
use crate::py::json::PyValue;
use crate::py::PyException;
use crate::resolve::warnings::Warning;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What one rank does: loads a folder from a step, or raises.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RankAnswer {
    Loads {
        rank: u64,
        /// The folder loaded, written with the root as given (`null`: nothing is loaded, a
        /// fresh start).
        load_path: Option<String>,
        initial_step: String,
        initial_epoch: String,
    },
    Raises {
        rank: u64,
        error: StageError,
    },
}

/// An exception and the stage that raises it (`config`, `resolve`, `context`, `weights`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageError {
    pub stage: &'static str,
    #[serde(rename = "type")]
    pub class: String,
    pub message: String,
}

impl StageError {
    fn new(stage: &'static str, e: &PyException) -> StageError {
        StageError {
            stage,
            class: e.class.clone(),
            message: e.first_line().to_owned(),
        }
    }
}

/// One `iteration_*` folder as ckptscope sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Iteration {
    pub folder: String,
    pub number: Option<u64>,
    /// Model and optimizer shards listed, and how many of them are intact.
    pub shards: usize,
    pub intact: usize,
    /// Shards still being written (`.tmp`).
    pub in_progress: usize,
    /// Damaged or unchecked shards, by name, with their verdict.
    pub problems: Vec<(String, String)>,
}

/// The newest folder that resumes cleanly on every rank, and how to get MindFormers there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SafePick {
    pub folder: String,
    pub initial_step: String,
    /// `None` when MindFormers already resumes from it.
    pub change: Option<String>,
    /// Newer folders passed over, each with why.
    pub passed_over: Vec<String>,
}

/// Everything `resolve` reports for a new-format tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewAnalysis {
    /// The path resumed from, as given (the root, or one `iteration_*` folder in it).
    pub load_path: String,
    pub world_size: u64,
    pub load_ckpt_format: String,
    pub no_load_optim: bool,
    pub health: bool,
    /// The tracker's text (`None`: no tracker).
    pub tracker: Option<String>,
    pub per_rank: Vec<RankAnswer>,
    /// `dataset.set_init_step(n)`: batches skipped (of the new batch size).
    pub skip: Option<String>,
    pub iterations: Vec<Iteration>,
    pub safe: Option<SafePick>,
    pub warnings: Vec<Warning>,
    /// Assumptions made (batch size, sink mode …).
    pub notes: Vec<String>,
    /// Why ckptscope cannot tell MindFormers' answer (an input the scan did not read).
    pub unknown: Option<String>,
}

impl NewAnalysis {
    /// The answer in one word: unknown when an input was not read, fails when any rank
    /// raises, resumes otherwise.
    pub fn outcome(&self) -> crate::resolve::Outcome {
        use crate::resolve::Outcome;
        // a rank that certainly raises fails the job, whatever the ranks ckptscope cannot
        // tell about
        let fails = self
            .per_rank
            .iter()
            .any(|r| matches!(r, RankAnswer::Raises { error, .. } if error.class != UNREAD));
        match (fails, &self.unknown) {
            (true, _) => Outcome::Fails,
            (false, Some(why)) => Outcome::Unknown(why.clone()),
            (false, None) => Outcome::Resumes,
        }
    }
}

/// The exception class the stages give an input ckptscope did not read (never MindFormers').
pub const UNREAD: &str = "ckptscope";

/// What each shard holds (the session's verdicts, or a check made now).
pub type Shards<'a> = &'a dyn Fn(&str, &str) -> Option<ShardCheck>;

/// A shard's tensor names, sorted, when they can be read now.
pub type Names<'a> = &'a dyn Fn(&str, &str) -> Option<Vec<String>>;

/// A filesystem view that reads `lexical/…` (the root as MindFormers spells it, made absolute)
/// from `canonical/…` (where the scan read it): the resolvers build paths from the former.
struct Rebased<'a> {
    inner: &'a TreeFs<'a>,
    lexical: PathBuf,
    canonical: PathBuf,
}

impl Rebased<'_> {
    fn map(&self, p: &Path) -> PathBuf {
        let norm = PathBuf::from(crate::py::text::normpath(&p.to_string_lossy()));
        match norm.strip_prefix(&self.lexical) {
            Ok(rest) if rest.as_os_str().is_empty() => self.canonical.clone(),
            Ok(rest) => self.canonical.join(rest),
            Err(_) => norm,
        }
    }
}

impl Fs for Rebased<'_> {
    fn stat(&self, p: &Path) -> std::io::Result<crate::model::Stat> {
        self.inner.stat(&self.map(p))
    }
    fn lstat(&self, p: &Path) -> std::io::Result<crate::model::Stat> {
        self.inner.lstat(&self.map(p))
    }
    fn read_dir(&self, p: &Path) -> std::io::Result<Vec<crate::fsys::RawEntry>> {
        self.inner.read_dir(&self.map(p))
    }
    fn read_small(&self, p: &Path, limit: u64) -> FileRead {
        self.inner.read_small(&self.map(p), limit)
    }
    fn open(
        &self,
        p: &Path,
    ) -> std::io::Result<(Box<dyn crate::fsys::ReadSeek>, crate::model::Stat)> {
        self.inner.open(&self.map(p))
    }
    fn canonicalize(&self, p: &Path) -> std::io::Result<PathBuf> {
        Ok(self.map(p))
    }
    fn mount_table(&self) -> Option<String> {
        None
    }
}

/// The analysis of `tree` for the job `ctx`.
pub fn analyze(tree: &Tree, ctx: &JobContext, shards: Shards, names: Names) -> NewAnalysis {
    let tfs = TreeFs::new(tree, &ctx.canonical);
    let nj = &ctx.newfmt;
    let fs = Rebased {
        inner: &tfs,
        lexical: PathBuf::from(crate::py::text::normpath(
            &nj.cwd.join(&ctx.root).to_string_lossy(),
        )),
        canonical: ctx.canonical.clone(),
    };
    let world_size = ctx.env.world_size.unwrap_or_else(|| world_from_names(tree));
    let mut notes = Vec::new();
    let iterations = iterations(tree, shards);
    let (answer, mode) = shared_stages(&fs, &tfs, ctx, tree, (shards, names), &mut notes);
    let no_load_optim = mode.as_ref().is_some_and(|m| m.run.no_load_optim);
    let weights = super::weights::Reads {
        tree,
        shards,
        no_load_optim,
        world: ctx.env.world_size,
    };
    let (per_rank, silent) = weights.per_rank(world_size.max(1), &answer);
    let skip = answer
        .as_ref()
        .ok()
        .and_then(|(_, r)| r.skip.as_ref())
        .map(|n| n.to_string());
    let mut a = NewAnalysis {
        load_path: nj.load_path(),
        world_size,
        load_ckpt_format: nj.load_ckpt_format.clone(),
        no_load_optim,
        health: nj.health,
        tracker: tracker_text(tree),
        per_rank,
        skip,
        iterations,
        safe: None,
        warnings: Vec::new(),
        notes,
        unknown: tfs.not_in_model(),
    };
    // an input ckptscope did not read (a control file over its limits, a shard it could not
    // check …): not MindFormers' error, and no answer
    let unread = a.per_rank.iter().find_map(|r| match r {
        RankAnswer::Raises { error, .. } if error.class == UNREAD => Some(error.message.clone()),
        _ => None,
    });
    if a.unknown.is_none() {
        a.unknown = unread;
    }
    a.safe = super::safe::safe_pick(&fs, ctx, &a, mode.as_ref());
    a.warnings = super::hazards::collect(tree, ctx, &a);
    a.warnings.extend(silent);
    a
}

/// The stages every rank shares (config, resolve, context, and the weights stage's metadata),
/// with the run settings they used; unknown when they read an input the scan did not record
/// or need a batch size nobody gave.
fn shared_stages(
    fs: &dyn Fs,
    tfs: &TreeFs,
    ctx: &JobContext,
    tree: &Tree,
    (shards, names): (Shards, Names),
    notes: &mut Vec<String>,
) -> (Staged, Option<Mode>) {
    let nj = &ctx.newfmt;
    match config(fs, &nj.cwd, &nj.yaml) {
        Err(e) => (Err(StageError::new("config", &e)), None),
        Ok(Config::Legacy) => (
            Err(StageError {
                stage: "config",
                class: UNREAD.into(),
                message: "the configuration selects the legacy format (no `checkpoint:` section): MindFormers looks for rank_* folders, not iteration_* ones".into(),
            }),
            None,
        ),
        Ok(Config::New {
            load_path,
            no_load_optim,
            resume_training,
        }) => {
            let (mode, gbs_unknown) =
                mode_for(fs, ctx, &load_path, no_load_optim, resume_training, notes);
            let at = at(&nj.cwd, &load_path);
            let mut staged = run_stages(fs, &at, &mode, tree, shards, names);
            // the shared stages read something the scan did not record, or need a batch size
            // nobody gave: their answer is unknown, not whatever they concluded without it
            let unread = tfs.not_in_model().or(gbs_unknown.filter(|_| staged.is_ok()));
            if let Some(why) = unread {
                staged = Err(StageError {
                    stage: "resolve",
                    class: UNREAD.into(),
                    message: why,
                });
            }
            (staged, Some(mode))
        }
    }
}

/// `p` as MindFormers prints it, and the path ckptscope reads it at.
pub(super) fn at(cwd: &Path, p: &str) -> At {
    At {
        shown: p.to_owned(),
        real: cwd.join(p),
    }
}

/// The job's run settings for the stages; the batch size, when not given, is the folder's own
/// (the job is assumed unchanged).
fn mode_for(
    fs: &dyn Fs,
    ctx: &JobContext,
    load_path: &str,
    no_load_optim: bool,
    resume_training: bool,
    notes: &mut Vec<String>,
) -> (Mode, Option<String>) {
    let run = &ctx.run;
    let nj = &ctx.newfmt;
    let mut mode = Mode {
        run: RunArgs {
            gbs_new: run.new_global_batch_size.unwrap_or(1),
            sink_mode: run.sink_mode.unwrap_or(true),
            dataset_size: run.dataset_size.unwrap_or(i64::MAX),
            no_load_optim,
            resume_training,
            ignore_data_skip: run.ignore_data_skip,
            data_skip_steps: run.data_skip_steps,
        },
        load_ckpt_format: nj.load_ckpt_format.clone(),
        health: nj.health.then(|| at(&nj.cwd, &nj.health_dir)),
    };
    let mut unknown = None;
    if run.new_global_batch_size.is_none() && !no_load_optim {
        // the folder the stages reach, and its common.json's batch size
        let reached = resume(
            fs,
            &at(&nj.cwd, load_path),
            &Mode {
                load_ckpt_format: "safetensors".into(),
                ..mode.clone()
            },
        )
        .ok()
        .and_then(|r| r.load_path);
        let gbs = reached.as_ref().and_then(|d| common_gbs(fs, d));
        match (gbs, reached) {
            (Some(g), _) => {
                mode.run.gbs_new = g;
                notes.push(format!("new global batch size not given: assumed unchanged ({g}, from common.json; use --global-batch-size or --config)"));
            }
            (None, Some(d)) if fs.stat(&d.join("common.json").real).is_ok() => {
                unknown = Some(format!("{}/common.json has no whole global_batch_size and the new one is not given: the resumed step is unknown — pass --global-batch-size (or --config)", d.shown));
            }
            _ => {}
        }
    }
    if run.sink_mode.is_none() {
        notes.push(
            "sink mode assumed on (MindFormers' default; use --sink-size 0 for non-sink mode)"
                .into(),
        );
    }
    (mode, unknown)
}

/// The folder's own `global_batch_size` as a new run's (unchanged): an integer, or a float
/// with an integral value (`8.0`: the scale is then exactly 1.0 as well).
pub(super) fn common_gbs(fs: &dyn Fs, d: &At) -> Option<i64> {
    match fs.read_small(&d.join("common.json").real, 1 << 20) {
        FileRead::Bytes(b) => match crate::py::json::load(&b).ok()?.get("global_batch_size")? {
            PyValue::Int(i) => i.to_i64().filter(|g| *g > 0),
            PyValue::Float(f) if *f >= 1.0 && f.fract() == 0.0 && *f < 9.0e15 => Some(*f as i64),
            _ => None,
        },
        _ => None,
    }
}

type Staged = Result<(Option<At>, Resumed), StageError>;

/// Resolve, context, then the rank-independent part of the weights stage.
fn run_stages(
    fs: &dyn Fs,
    at: &At,
    mode: &Mode,
    tree: &Tree,
    shards: Shards,
    names: Names,
) -> Staged {
    let r =
        resume(fs, at, mode).map_err(|Failure { stage, error }| StageError::new(stage, &error))?;
    if let (Some(d), Some(_)) = (&r.load_path, &mode.health) {
        // the weight loader verifies the health-mode folder: its first verification (§7.5)
        get_checkpoint_path(fs, d, !mode.run.no_load_optim)
            .map_err(|e| StageError::new("weights", &e))?;
    }
    if let Some(d) = &r.load_path {
        if let Some(e) = super::weights::generated_metadata(tree, d, shards, names) {
            return Err(e);
        }
    }
    Ok((r.load_path, r.context))
}

/// The folder name of a loaded path (its last component).
pub(super) fn folder_of(d: &At) -> String {
    d.shown
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The tracker's text as read, when there is one.
fn tracker_text(tree: &Tree) -> Option<String> {
    match tree.root_files.get(TRACKER)? {
        FileRead::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(format!("<not read: {other:?}>")),
    }
}

/// The world size the shard names give (`-{W:07d}`): per folder the `W` most of its shard
/// names carry (a stray copy from another job does not change it), capped at how many shards
/// that folder holds (a hostile `model-9999999-9999999.safetensors` makes one row, not ten
/// million); the largest over the folders; 1 when there is none.
fn world_from_names(tree: &Tree) -> u64 {
    let mut world = 1u64;
    for node in tree.dirs.values() {
        let mut counts: std::collections::BTreeMap<u64, u64> = Default::default();
        let mut shards = 0u64;
        for n in node
            .listing
            .entries()
            .iter()
            .filter_map(|e| parse_shard_name(&e.name))
        {
            *counts.entry(n.total).or_default() += 1;
            shards += 1;
        }
        // the most frequent W (the smaller on a tie)
        if let Some((w, _)) = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) {
            world = world.max((*w).min(shards));
        }
    }
    world.clamp(1, crate::job::MAX_WORLD_SIZE)
}

/// Every `iteration_*` folder, oldest first, with its shards' states.
fn iterations(tree: &Tree, shards: Shards) -> Vec<Iteration> {
    let mut out: Vec<Iteration> = tree
        .dirs
        .iter()
        .filter(|(name, _)| name.starts_with("iteration_"))
        .map(|(name, node)| {
            let mut it = Iteration {
                folder: name.clone(),
                number: name["iteration_".len()..].parse().ok(),
                shards: 0,
                intact: 0,
                in_progress: 0,
                problems: Vec::new(),
            };
            for e in node.listing.entries() {
                if e.name.ends_with(".tmp") {
                    it.in_progress += 1;
                    continue;
                }
                if parse_shard_name(&e.name).is_none() {
                    continue;
                }
                it.shards += 1;
                match shards(name, &e.name) {
                    Some(c) if c.verdict == Verdict::Ok => it.intact += 1,
                    Some(c) => it.problems.push((e.name.to_string(), verdict_text(&c))),
                    None => it.problems.push((e.name.to_string(), "not checked".into())),
                }
            }
            it
        })
        .collect();
    out.sort_by_key(|i| i.number);
    out
}

/// A verdict in words: its name, then the detail unless the detail already starts with it.
pub(super) fn verdict_text(c: &ShardCheck) -> String {
    match c.detail.starts_with(c.verdict.name()) {
        true => c.detail.to_string(),
        false => format!("{}: {}", c.verdict.name(), c.detail),
    }
}
