//! Which file provides the resume context (spec §5.12) and what the data-skip arithmetic can
//! know about it. Inputs that are neither configured nor readable from the files are inferred
//! from the names or assumed, and every inference or assumption is said in a note.

use super::config::ResumeConfig;
use super::data_skip::SkipInputs;
use super::mindformers::{MfResolution, RankResult};
use super::no_meta::last_checkpoint;
use super::view::View;
use super::yaml::GbsFormula;
use crate::layout::mindformers::names::{epoch_and_step, parse_ckpt_name};
use crate::model::AppendValues;
use crate::model::Tree;

/// Run settings that only the YAML (or flags) know.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSettings {
    /// The new run's global batch size, when given outright (flag or simulation).
    pub new_global_batch_size: Option<i64>,
    /// The YAML's batch-size formula: data-parallel mode needs the world size, known only when
    /// resolving (it may be the `rank_*` count of a tree that is still growing).
    pub global_batch_formula: Option<GbsFormula>,
    /// `Some(true/false)` when the YAML says whether sink mode is on.
    pub sink_mode: Option<bool>,
    pub sink_size: Option<i64>,
    pub dataset_size: Option<i64>,
    pub ignore_data_skip: bool,
    pub data_skip_steps: Option<i64>,
    /// New format: `checkpoint.no_load_optim` as a simulation sets it (`None`: the job's own).
    pub no_load_optim: Option<bool>,
}

/// The rank whose folder provides the reported context. MindFormers reads rank `R`'s own file
/// (or rank 0's with `auto_trans_ckpt` and no graceful exit); ckptscope reports rank 0's view,
/// which every rank shares when the resolution succeeds.
const CONTEXT_RANK: usize = 0;

/// The file name (inside `rank_<rank>/`) whose append entries give the context.
pub fn context_file(tree: &Tree, mf: &MfResolution, cfg: &ResumeConfig) -> Option<String> {
    let dir = format!("rank_{CONTEXT_RANK}");
    match mf.per_rank.get(CONTEXT_RANK)? {
        RankResult::File(name) => Some(name.clone()),
        RankResult::Newest => {
            let v = View::new(tree);
            let path = last_checkpoint(&v, &dir, cfg.fmt).ok()??;
            Some(crate::py::text::basename(&path).to_owned())
        }
        _ => None,
    }
}

/// Combine stored values, settings and what the names tell into the arithmetic's inputs.
/// `world_size` is the world size the user gave (`--world-size`, `RANK_SIZE`), for the YAML's
/// data-parallel batch-size formula: a count of folders is no basis for it.
pub fn skip_inputs(
    tree: &Tree,
    world_size: Option<u64>,
    file: &str,
    stored: &AppendValues,
    cfg: &ResumeConfig,
    run: &RunSettings,
    notes: &mut Vec<String>,
) -> SkipInputs {
    let get =
        |f: fn(&AppendValues) -> Option<crate::model::Num>| f(stored).and_then(|n| n.as_i64());
    let step_num = get(|a| a.step_num);
    let epoch_num = get(|a| a.epoch_num);
    let stored_gbs = get(|a| a.global_batch_size);
    let from_yaml = run
        .global_batch_formula
        .as_ref()
        .and_then(|f| match f.global_batch_size(world_size) {
            Some(g) => {
                notes.push(format!("new global batch size {g} from the YAML"));
                Some(g)
            }
            None if world_size.is_none() && !f.semi_or_auto => {
                notes.push("the YAML's global batch size needs the world size (data-parallel mode): give --world-size or RANK_SIZE".into());
                None
            }
            None => {
                notes.push("the YAML's batch-size product overflows: ignored".into());
                None
            }
        })
        .filter(|g| *g > 0);
    let new_gbs = run.new_global_batch_size.or(from_yaml).or_else(|| {
        if stored_gbs.is_some() {
            notes.push("new global batch size not given: assumed unchanged (use --global-batch-size or --config)".into());
        }
        stored_gbs
    });
    let sink_size = sink_size(tree, file, step_num, cfg, run, notes);
    if run.dataset_size.is_none() {
        notes.push("dataset size unknown: assuming one epoch is longer than the resumed step (use --dataset-size)".into());
    }
    SkipInputs {
        step_num,
        epoch_num,
        stored_global_batch_size: stored_gbs,
        new_global_batch_size: new_gbs,
        sink_size,
        dataset_size: run.dataset_size,
        ignore_data_skip: run.ignore_data_skip,
        data_skip_steps: run.data_skip_steps,
    }
}

/// Sink size from the settings, or inferred from the `E_S` names of the context file's run.
fn sink_size(
    tree: &Tree,
    file: &str,
    step_num: Option<i64>,
    cfg: &ResumeConfig,
    run: &RunSettings,
    notes: &mut Vec<String>,
) -> Option<i64> {
    match (run.sink_mode, run.sink_size) {
        (Some(false), _) => return Some(0),
        (Some(true), Some(s)) if s > 0 => return Some(s),
        (None, Some(s)) if s >= 0 => return Some(s),
        _ => {}
    }
    let (e, s) = epoch_and_step(file, cfg.fmt).ok()?;
    let (e, s) = (e.to_i64()?, s.to_i64()?);
    let prefix = parse_ckpt_name(file).map(|n| n.prefix());
    let steps: Vec<u64> = super::rank0_names(tree)
        .filter(|n| Some(n.prefix()) == prefix)
        .map(|n| n.step)
        .collect();
    let uniform = steps.iter().all(|x| *x as i64 == s);
    if uniform && step_num.is_none_or(|n| e.checked_mul(s) == Some(n)) {
        notes.push(format!("sink mode inferred from the file names: sink_size {s} (every name ends in _{s}, and epoch × {s} = step_num)"));
        Some(s)
    } else {
        notes.push("non-sink mode inferred from the file names (the step-in-epoch part varies or epoch × step ≠ step_num)".into());
        Some(0)
    }
}
