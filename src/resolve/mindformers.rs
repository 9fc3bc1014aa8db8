//! What MindFormers 2.1.0 resumes from, rank by rank, bug for bug (spec §5).
//!
//! [`resolve`] runs the trainer's own adjustments (§5.2 A0–A6) around `get_resume_checkpoint`
//! (§5.3): rank 0's by-meta decision is simulated once, written (in memory only) as the resume
//! record, and every other rank reads its answer from that text exactly as MindFormers does.

use super::by_meta::{base_name, health_monitor, info_from_meta, resume_ckpt_list, MinMeta};
use super::config::{EnvFacts, PathFacts, ResumeConfig, ResumeTraining, RunMode};
use super::no_meta::check_last_timestamp;
use super::shared::{publicly_accessible, SharedDecision};
use super::view::View;
use crate::layout::mindformers::names::replace_rank_id;
use crate::model::{Listing, RootState, Tree};
use crate::py::int::PyInt;
use crate::py::text::{basename, join, py_strip, readlines};
use crate::py::PyException;
use serde::Serialize;

pub const NO_META: &str = "FOUND NO META.JSON";

/// What `resume_training` becomes on one rank.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankResult {
    /// Load this file from the rank's own `rank_R/` folder.
    File(String),
    /// `True`: load the newest file by mtime in the rank's own folder.
    Newest,
    /// `False`: not resuming (random initialisation or weights only).
    Off,
    Error(PyException),
    /// ckptscope cannot tell: an input MindFormers reads could not be read (see
    /// [`super::view::CANNOT_READ`]); the text says which and why.
    Unknown(String),
}

/// The branch that decided.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Branch {
    /// `resume_training` is false, or the trainer switched it off; `why` says which.
    NotResuming { why: String },
    /// `load_checkpoint` is a file: every rank loads it.
    SingleFile,
    /// The trainer or the environment failed before the resolver ran.
    TrainerError,
    /// `resume_training` names a file: nothing is checked.
    ExplicitName,
    /// Multi-node and not recognised as shared: each rank takes its newest file by mtime.
    NotShared,
    /// safetensors with `hyper_param.safetensors` in the root.
    HyperParam,
    /// `resume_by_last_timestamp_ckpt: True`.
    ByTimestamp,
    /// The default: minimal meta.json, newest step complete on every rank.
    ByMeta,
    /// No usable meta.json anywhere: newest-by-mtime names must agree.
    NoMeta,
    /// The load path is not a folder or file (the resolver is skipped; loading fails).
    Skipped,
    /// Something ckptscope does not model (TFT resume, the new checkpoint format …).
    Unsupported { what: String },
}

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MfResolution {
    pub per_rank: Vec<RankResult>,
    /// The text rank 0 writes to `resume_record/latest_checkpointed_iteration.txt` (by-meta only).
    pub record: Option<String>,
    pub branch: Branch,
    /// `N`: entries of the root whose name starts with `rank_`.
    pub rank_entries: Option<usize>,
    pub shared: Option<SharedDecision>,
    pub min_meta: Option<MinMeta>,
    /// Rank 0's candidate list (paths as MindFormers builds them), oldest first.
    pub candidates: Vec<String>,
    /// The exception rank 0 caught, in full, when the by-meta decision failed.
    pub rank0_error: Option<PyException>,
    /// MindFormers' log lines along the way (missing metas, rank gaps …).
    pub log: Vec<String>,
    /// Why ckptscope cannot tell the answer (an input it did not read), when it cannot.
    pub unknown: Option<String>,
}

/// Everything a resolution needs.
pub struct Inputs<'a> {
    pub tree: &'a Tree,
    pub config: &'a ResumeConfig,
    pub env: &'a EnvFacts,
    pub paths: &'a PathFacts,
}

pub fn resolve(inp: &Inputs) -> MfResolution {
    let w = inp.env.world_size_for(inp.tree);
    let max = crate::job::MAX_WORLD_SIZE;
    let too_many = w > max;
    let mut res = MfResolution {
        per_rank: vec![RankResult::Off; if too_many { 0 } else { w as usize }],
        record: None,
        branch: Branch::Skipped,
        rank_entries: None,
        shared: None,
        min_meta: None,
        candidates: Vec::new(),
        rank0_error: None,
        log: Vec::new(),
        unknown: None,
    };
    if too_many {
        // counted from rank_* entries (a flag is bounded when it is read): a tree of 400,000
        // files named rank_N must not cost 400,000 answers
        res.unknown = Some(format!("{} holds {w} rank_* entries, more than the {max} ranks ckptscope resolves for; give the job's real world size with --world-size (or RANK_SIZE)", inp.tree.root));
        return res;
    }
    let every = |res: &mut MfResolution, r: RankResult| {
        res.per_rank.iter_mut().for_each(|x| *x = r.clone())
    };
    match trainer_stage(inp) {
        Stage::Done(branch, result) => {
            res.branch = branch;
            every(&mut res, result);
        }
        Stage::Resolve(v) => resolver_stage(inp, &v, &mut res),
    }
    // A6: a non-empty load path that does not exist fails on every rank after the resolver.
    if !matches!(
        res.branch,
        Branch::TrainerError | Branch::Unsupported { .. }
    ) {
        if let Some(lc) = inp.config.load_checkpoint.as_deref() {
            if !lc.is_empty() && !root_exists(inp.tree) {
                let m7 = PyException::new(
                    "ValueError",
                    format!("{lc} is not existed, please check load_checkpoint in yaml and set a correct value."),
                );
                for r in res.per_rank.iter_mut() {
                    if !matches!(r, RankResult::Error(_)) {
                        *r = RankResult::Error(m7.clone());
                    }
                }
            }
        }
    }
    res
}

fn root_exists(tree: &Tree) -> bool {
    !matches!(tree.state, RootState::Missing | RootState::Error(_))
}

enum Stage {
    Done(Branch, RankResult),
    /// Call `get_resume_checkpoint` with this value of `resume_training`.
    Resolve(ResumeTraining),
}

/// §5.2 A0–A5: the trainer's checks and adjustments before the resolver.
fn trainer_stage(inp: &Inputs) -> Stage {
    let cfg = inp.config;
    let fail = |e: PyException| Stage::Done(Branch::TrainerError, RankResult::Error(e));
    let mut rt = cfg.resume_training.clone();
    let mut lc = cfg.load_checkpoint.clone();
    if let ResumeTraining::Invalid(v) = &rt {
        return fail(PyException::new(
            "TypeError",
            format!("resume_training must be bool or str, but get {v}"),
        ));
    }
    if rt == ResumeTraining::Bool(true) {
        match lc.as_deref() {
            None => {
                return fail(PyException::new(
                    "TypeError",
                    "`load_checkpoint` should be a string, but got type <class 'NoneType'>.",
                ))
            }
            Some("") => rt = ResumeTraining::Bool(false),
            Some(_) => match &inp.tree.state {
                RootState::Dir(Listing::Entries(e)) if e.is_empty() => {
                    rt = ResumeTraining::Bool(false);
                    lc = Some(String::new());
                }
                RootState::Dir(Listing::Error(err)) => return fail(err.to_py(&inp.paths.realpath)),
                _ => {}
            },
        }
    }
    let truthy = match &rt {
        ResumeTraining::Bool(b) => *b,
        ResumeTraining::Name(s) => !s.is_empty(),
        _ => false,
    };
    let lc_empty = lc.as_deref().is_none_or(str::is_empty);
    if (cfg.auto_trans_ckpt || truthy) && lc_empty {
        return match &cfg.checkpoint_name_or_path {
            Some(p) => Stage::Done(
                Branch::Unsupported {
                    what: format!("load_checkpoint is empty: MindFormers would load model_config.checkpoint_name_or_path ({p}); run ckptscope on that path"),
                },
                RankResult::Off,
            ),
            None => fail(PyException::new(
                "ValueError",
                "When `auto_trans_ckpt` or `resume_training` is True, `load_checkpoint` should not be empty or None. If you are using TrainingArguments, `resume_from_checkpoint` should be set.",
            )),
        };
    }
    if !cfg.use_legacy_format && !matches!(rt, ResumeTraining::Bool(_)) {
        return fail(PyException::new(
            "ValueError",
            "The resume_training must be a boolean value.",
        ));
    }
    let is_file = matches!(inp.tree.state, RootState::File(_));
    if matches!(rt, ResumeTraining::Name(_)) && !lc_empty && is_file {
        rt = ResumeTraining::Bool(true);
    }
    if cfg
        .callback_prefix
        .as_deref()
        .is_some_and(|p| p.contains("rank"))
    {
        return fail(PyException::new(
            "ValueError",
            "The prefix for saving checkpoint is not allowed to contain 'rank'.",
        ));
    }
    if !cfg.use_legacy_format {
        return Stage::Done(
            Branch::Unsupported {
                what: "the new checkpoint format (a `checkpoint:` section in the YAML)".into(),
            },
            RankResult::Off,
        );
    }
    a5(inp, rt, is_file)
}

/// A5: whether and how `get_resume_checkpoint` is called.
fn a5(inp: &Inputs, rt: ResumeTraining, is_file: bool) -> Stage {
    let cfg = inp.config;
    let truthy = match &rt {
        ResumeTraining::Bool(b) => *b,
        ResumeTraining::Name(s) => !s.is_empty(),
        _ => false,
    };
    if !truthy {
        let why = match &cfg.resume_training {
            ResumeTraining::Bool(true) => "load_checkpoint is empty or an empty folder: training starts from random initialisation",
            _ => "resume_training is false",
        };
        return Stage::Done(Branch::NotResuming { why: why.into() }, RankResult::Off);
    }
    if cfg.mode == RunMode::Train && inp.env.tft && !cfg.remove_redundancy {
        return Stage::Done(
            Branch::Unsupported { what: "TFT (MS_ENABLE_TFT) resume without remove_redundancy uses resume_ckpt_path_with_strategy".into() },
            RankResult::Off,
        );
    }
    if is_file {
        return Stage::Done(Branch::SingleFile, RankResult::Newest);
    }
    if matches!(inp.tree.state, RootState::Dir(_)) {
        return Stage::Resolve(rt);
    }
    let result = if rt == ResumeTraining::Bool(true) {
        RankResult::Newest
    } else if let ResumeTraining::Name(n) = rt {
        RankResult::File(n)
    } else {
        RankResult::Off
    };
    Stage::Done(Branch::Skipped, result)
}

/// §5.3 `get_resume_checkpoint`, for every rank.
fn resolver_stage(inp: &Inputs, rt: &ResumeTraining, res: &mut MfResolution) {
    let fmt = inp.config.fmt;
    if let ResumeTraining::Name(name) = rt {
        res.branch = Branch::ExplicitName;
        let suffix = format!(".{}", fmt.ext());
        let full = if name.ends_with(&suffix) {
            name.clone()
        } else {
            format!("{name}{suffix}")
        };
        for (r, out) in res.per_rank.iter_mut().enumerate() {
            *out = match replace_rank_id(&full, &PyInt::from_i64(r as i64)) {
                Ok(n) => RankResult::File(crate::model::shown_name(&n).into_owned()),
                Err(e) => RankResult::Error(e),
            };
        }
        return;
    }
    let shared = publicly_accessible(inp.env, inp.paths, inp.env.world_size_for(inp.tree));
    let is_shared = shared.is_shared();
    res.shared = Some(shared);
    let newest = |res: &mut MfResolution, b: Branch| {
        res.branch = b;
        res.per_rank
            .iter_mut()
            .for_each(|x| *x = RankResult::Newest);
    };
    if !is_shared {
        return newest(res, Branch::NotShared);
    }
    if fmt == crate::layout::mindformers::names::Fmt::Safetensors
        && inp
            .tree
            .root_entry("hyper_param.safetensors")
            .is_some_and(|e| e.exists())
    {
        return newest(res, Branch::HyperParam);
    }
    if inp.config.by_last_timestamp {
        return newest(res, Branch::ByTimestamp);
    }
    by_meta(inp, res);
}

/// §5.5: the record location checks, rank 0's decision, and every rank reading it back.
fn by_meta(inp: &Inputs, res: &mut MfResolution) {
    res.branch = Branch::ByMeta;
    if inp.env.modelarts {
        let err = match &inp.env.remote_save_url {
            None => Some(PyException::new(
                "TypeError",
                "expected str, bytes or os.PathLike object, not NoneType",
            )),
            Some(url) => {
                let dir = join(url, "resume_record");
                (!(dir.starts_with("obs://") || dir.starts_with("s3://"))).then(|| {
                    PyException::new("ValueError", format!("{dir} is not a valid obs path."))
                })
            }
        };
        if let Some(e) = err {
            res.per_rank
                .iter_mut()
                .for_each(|x| *x = RankResult::Error(e.clone()));
            return;
        }
    }
    let (record, result0) = rank0(inp, res);
    if let Some(why) = &res.unknown {
        let u = RankResult::Unknown(why.clone());
        res.per_rank.iter_mut().for_each(|x| *x = u.clone());
        return;
    }
    let lines = record_lines(&record);
    for (r, out) in res.per_rank.iter_mut().enumerate() {
        *out = match (&result0, r) {
            (Some(first), 0) => first.clone(),
            _ => rank_reads_record(&lines, r),
        };
    }
    res.record = Some(record);
}

/// Rank 0 inside its `try`: returns the record text and its own truthy result.
fn rank0(inp: &Inputs, res: &mut MfResolution) -> (String, Option<RankResult>) {
    let v = View::new(inp.tree);
    let fmt = inp.config.fmt;
    let attempt = (|| -> Result<(String, RankResult), PyException> {
        let n = v
            .listdir_root()?
            .iter()
            .filter(|e| e.name.starts_with("rank_"))
            .count();
        res.rank_entries = Some(n);
        let Some(meta) = info_from_meta(&v, n, fmt, &mut res.log)? else {
            res.branch = Branch::NoMeta;
            check_last_timestamp(&v, n, fmt, &mut res.log)?;
            return Ok((NO_META.to_owned(), RankResult::Newest));
        };
        let base = base_name(&meta, fmt);
        res.min_meta = Some(meta);
        let health = inp.config.health_on();
        let mut list = resume_ckpt_list(&v, &base, n, fmt, health, &mut res.log)?;
        if health {
            let path = join(&inp.config.output_dir, "health_ckpts.json");
            list = health_monitor(inp.paths.health_json.as_ref(), &path, list, &mut res.log)?;
        }
        res.candidates = list.clone();
        let text: String = list.iter().map(|p| format!("{p}\n")).collect();
        let last = list
            .last()
            .map(|p| basename(p).to_owned())
            .unwrap_or_default();
        Ok((text, RankResult::File(last)))
    })();
    match attempt {
        Ok((text, result)) => (text, Some(result)),
        Err(e) if e.class == super::view::CANNOT_READ => {
            let why = e.first_line().to_owned();
            res.unknown = Some(why);
            (String::new(), None)
        }
        Err(e) => {
            let text = format!("Error: {}", e.str());
            res.rank0_error = Some(e);
            (text, None)
        }
    }
}

/// `[line.strip() for line in f.readlines()]` of the record text.
pub fn record_lines(text: &str) -> Vec<String> {
    readlines(text)
        .iter()
        .map(|l| py_strip(l).to_owned())
        .collect()
}

/// `get_resume_ckpt(T, R)`: how a rank reads the record rank 0 wrote.
fn rank_reads_record(lines: &[String], rank: usize) -> RankResult {
    let Some(first) = lines.first() else {
        return RankResult::Error(PyException::new("IndexError", "list index out of range"));
    };
    if first == NO_META {
        return RankResult::Newest;
    }
    if first.starts_with("Error") {
        return RankResult::Error(PyException::new(
            "ValueError",
            format!("Get resume-able checkpoint failed, due to {first}"),
        ));
    }
    let last = lines.last().map(String::as_str).unwrap_or_default();
    match replace_rank_id(last, &PyInt::from_i64(rank as i64)) {
        Ok(n) => RankResult::File(n),
        Err(e) => RankResult::Error(e),
    }
}
