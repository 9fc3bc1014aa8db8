//! The whole answer for a new-format tree, computed from the model alone (through
//! [`TreeFs`]): MindFormers' stages per rank (config, resolve, context, weights), the data skip,
//! every `iteration_*` folder's state, the safe pick with the change that reaches it, and the
//! hazards of `mindformers-new-format.md` §13. The session is its only caller.

use super::answer::{resume, Failure, Mode};
use super::config::{config, Config};
use super::context::{Resumed, RunArgs};
use super::names::{parse_shard_name, ShardKind};
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
    let (answer, mode) = match config(&fs, &nj.cwd, &nj.yaml) {
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
                mode_for(&fs, ctx, &load_path, no_load_optim, resume_training, &mut notes);
            let at = at(&nj.cwd, &load_path);
            let mut staged = run_stages(&fs, &at, &mode, tree, shards, names);
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
    };
    let no_load_optim = mode.as_ref().is_some_and(|m| m.run.no_load_optim);
    let weights = super::weights::Reads {
        tree,
        shards,
        no_load_optim,
        world: Some(world_size),
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
    a.safe = safe_pick(&fs, ctx, &a, mode.as_ref());
    a.warnings = super::hazards::collect(tree, ctx, &a);
    a.warnings.extend(silent);
    a
}

/// `p` as MindFormers prints it, and the path ckptscope reads it at.
fn at(cwd: &Path, p: &str) -> At {
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
fn common_gbs(fs: &dyn Fs, d: &At) -> Option<i64> {
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
        if let Some(e) = generated_metadata(tree, d, shards, names) {
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

/// A multi-rank folder without `metadata.json`: MindFormers builds the metadata from every
/// shard and fails on the first parameter two ranks both hold (§10.4 W-E4).
/// A folder without `metadata.json`: before reading anything, the loader builds the metadata
/// by loading every `*.safetensors` file whole, in `glob` (listing) order, and fails on the
/// first file it cannot load or the first parameter an earlier file already had (§7.5 step 3,
/// `generate_default_metadata_from_checkpoint`) — on every rank alike. Tensor names come from
/// the headers when they can be read now; otherwise the message says whose files collide.
fn generated_metadata(tree: &Tree, d: &At, shards: Shards, names: Names) -> Option<StageError> {
    let folder = folder_of(d);
    let node = tree.dirs.get(&folder)?;
    if node
        .listing
        .find("metadata.json")
        .is_some_and(|e| e.exists())
    {
        return None;
    }
    let err = |class: &str, message: String| StageError {
        stage: "weights",
        class: class.into(),
        message,
    };
    let mut seen: std::collections::HashSet<String> = Default::default();
    let mut writers: Vec<(u64, ShardKind)> = Vec::new();
    for e in node.listing.entries() {
        if !e.name.ends_with(".safetensors") || e.name.starts_with('.') {
            continue;
        }
        if !e.is_file() {
            // glob lists it and the loader opens it: a folder, a FIFO … — what happens is unknown
            return Some(err(UNREAD, format!("{} is not a regular file, and the loader opens every *.safetensors here (no metadata.json)", d.join(&e.name).shown)));
        }
        let path = d.join(&e.name).shown;
        match shards(&folder, &e.name).map(|c| c.verdict) {
            Some(Verdict::ZeroByte) => return Some(err("ValueError", "cannot mmap an empty file".into())),
            Some(Verdict::Truncated | Verdict::NotACheckpoint | Verdict::Corrupt) => {
                return Some(err(
                    "ValueError",
                    format!("Fail to parse the input safetensors: '{path}'. Please check the correctness of the file."),
                ))
            }
            // not read, or changing: what the loader meets is unknown
            Some(Verdict::Unreadable | Verdict::NotRegular | Verdict::Changed | Verdict::InProgress) | None => {
                return Some(err(UNREAD, format!("{path} could not be checked, and the loader reads it whole here (no metadata.json)")))
            }
            // whole structure, wrong values: it loads
            Some(_) => {}
        }
        match names(&folder, &e.name) {
            Some(ns) => {
                if let Some(dup) = ns.iter().find(|n| seen.contains(*n)) {
                    return Some(err(
                        "RuntimeError",
                        format!("Duplicate parameter_name found: {dup}."),
                    ));
                }
                seen.extend(ns);
            }
            None => {
                if let Some(n) = parse_shard_name(&e.name) {
                    if let Some((other, _)) =
                        writers.iter().find(|(i, k)| *k == n.kind && *i != n.idx)
                    {
                        return Some(err("RuntimeError", format!("Duplicate parameter_name found: <the first parameter both {folder}'s rank {other} and rank {} shards hold>.", n.idx)));
                    }
                    writers.push((n.idx, n.kind));
                }
            }
        }
    }
    None
}

/// The parameters `metadata.json` stores in `file` for rank `rank` (sorted, unique).
pub(super) fn mapped_params(node: &crate::model::DirNode, file: &str, rank: u64) -> Vec<String> {
    let Some((_, FileRead::Bytes(b))) = node.control.iter().find(|(n, _)| n == "metadata.json")
    else {
        return Vec::new();
    };
    let Ok(m) = crate::py::json::load(b) else {
        return Vec::new();
    };
    let Some(PyValue::Dict(sd)) = m.get("storage_data") else {
        return Vec::new();
    };
    let mut out: Vec<String> = sd
        .iter()
        .filter(|(_, v)| match v {
            PyValue::List(es) => es.iter().any(|e| {
                e.get("file_name") == Some(&PyValue::Str(file.to_owned()))
                    && matches!(e.get("storage_rank"), Some(PyValue::Int(r)) if r.to_i64() == i64::try_from(rank).ok())
            }),
            _ => false,
        })
        .filter_map(|(k, _)| param_of(k))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `name` from a `storage_data` key `"('name', (0,))"`.
fn param_of(key: &str) -> Option<String> {
    let rest = key.strip_prefix("('")?;
    Some(rest[..rest.find("', (")?].to_owned())
}

/// A Python list of strings as `repr` prints it.
pub(super) fn py_list(xs: &[String]) -> String {
    let items: Vec<String> = xs.iter().map(|x| crate::py::py_repr(x)).collect();
    format!("[{}]", items.join(", "))
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

/// The newest folder every rank loads cleanly: MindFormers' checks pass on it, its
/// `common.json` gives a context, every shard is intact, and (multi-rank) `metadata.json` is
/// there. MindFormers never falls back, so the change that reaches it is part of the answer.
fn safe_pick(
    fs: &dyn Fs,
    ctx: &JobContext,
    a: &NewAnalysis,
    mode: Option<&Mode>,
) -> Option<SafePick> {
    let mode = mode?;
    let loads = match a.per_rank.first() {
        Some(RankAnswer::Loads { load_path, .. }) => load_path.clone(),
        _ => None,
    };
    let mut passed_over = Vec::new();
    for it in a.iterations.iter().rev() {
        let d = at(
            &ctx.newfmt.cwd,
            &crate::py::text::join(&ctx.root, &it.folder),
        );
        let why = if it.shards == 0 {
            Some("no shards".to_owned())
        } else if let Some((f, v)) = it.problems.first() {
            Some(format!("{f} is {v}"))
        } else if it.in_progress > 0 {
            Some(format!(
                "{} shard(s) still being written (.tmp)",
                it.in_progress
            ))
        } else if mode.health.is_some() && !mode.run.no_load_optim && !healthy(fs, &d) {
            // the job runs health mode: a folder the monitor did not mark healthy is not one
            // to steer it to
            Some("ckpt_status is not 0 (health mode loads only healthy folders)".into())
        } else {
            let mut fixed = Mode {
                health: None,
                load_ckpt_format: "safetensors".into(),
                ..mode.clone()
            };
            if ctx.run.new_global_batch_size.is_none() {
                // unchanged: this folder's own batch size
                fixed.run.gbs_new = common_gbs(fs, &d).unwrap_or(fixed.run.gbs_new);
            }
            match resume(fs, &d, &fixed) {
                // an input not read: whether this folder would do is unknown — an older one
                Err(f) if f.error.class == UNREAD => {
                    Some(format!("unknown ({})", f.error.first_line()))
                }
                Err(f) => Some(format!("{}: {}", f.error.class, f.error.first_line())),
                Ok(r) => {
                    // several writers (not the job's world size: a resharded resume reads them all)
                    let multi = tree_writers(fs, &d) > 1;
                    let meta = fs.stat(&d.join("metadata.json").real).is_ok();
                    match multi && !meta {
                        true => Some(
                            "no metadata.json in a multi-rank folder (Duplicate parameter_name)"
                                .into(),
                        ),
                        false => {
                            let change = change_to(ctx, &d, loads.as_deref());
                            return Some(SafePick {
                                folder: it.folder.clone(),
                                initial_step: r.context.initial_step.to_string(),
                                change,
                                passed_over,
                            });
                        }
                    }
                }
            }
        };
        if let Some(w) = why {
            passed_over.push(format!("{}: {w}", it.folder));
        }
    }
    None
}

/// The configuration change that makes MindFormers load folder `d` (`None`: it already does).
fn change_to(ctx: &JobContext, d: &At, loads: Option<&str>) -> Option<String> {
    let fmt = match ctx.newfmt.load_ckpt_format == "ckpt" {
        true => " and set load_ckpt_format: safetensors",
        false => "",
    };
    if loads == Some(d.shown.as_str()) && fmt.is_empty() {
        return None;
    }
    if loads == Some(d.shown.as_str()) {
        return Some(fmt.trim_start_matches(" and ").to_owned());
    }
    let folder = folder_of(d);
    // health mode looks for its own folder, whatever load_path or the tracker say (§7.1)
    let health = match ctx.newfmt.health && !ctx.newfmt.no_load_optim() {
        true => " and turn health mode off",
        false => "",
    };
    let set = format!(
        "set checkpoint.load_path (or load_checkpoint) to {}{fmt}{health}",
        d.shown
    );
    if !health.is_empty() {
        // health mode ignores the tracker too
        return Some(set);
    }
    // the tracker route: only with the root as load_path, and only for a folder the tracker
    // can name (`iteration_{N:08d}` exactly)
    let n = folder
        .strip_prefix("iteration_")
        .and_then(|r| super::tracker::parse(TRACKER, r.as_bytes()).ok());
    match n {
        Some(n)
            if ctx.newfmt.load_path() == ctx.root
                && super::tracker::iteration_dir(&n) == folder =>
        {
            let tracker = crate::py::text::join(&ctx.root, TRACKER);
            Some(format!(
                "{set} — or write {n} into {tracker} by hand (ckptscope never writes)"
            ))
        }
        _ => Some(set),
    }
}

/// Whether folder `d`'s `common.json` says `ckpt_status == 0` (Python's `==`: 0, 0.0, false).
fn healthy(fs: &dyn Fs, d: &At) -> bool {
    match fs.read_small(&d.join("common.json").real, 1 << 20) {
        FileRead::Bytes(b) => crate::py::json::load(&b)
            .is_ok_and(|v| v.get("ckpt_status").is_some_and(PyValue::equals_zero)),
        _ => false,
    }
}

/// How many ranks wrote model shards in folder `d` (as the model lists it).
fn tree_writers(fs: &dyn Fs, d: &At) -> usize {
    let mut w: Vec<u64> = fs
        .read_dir(&d.real)
        .map(|es| {
            es.iter()
                .filter_map(|e| parse_shard_name(&e.name.to_string_lossy()))
                .filter(|n| n.kind == ShardKind::Model)
                .map(|n| n.idx)
                .collect()
        })
        .unwrap_or_default();
    w.sort_unstable();
    w.dedup();
    w.len()
}
