//! The safe pick of a new-format tree: the newest `iteration_*` folder every rank loads
//! cleanly, and — since MindFormers never falls back — the exact change that makes it resume
//! there (the load path, the tracker line to write by hand, health mode, `load_ckpt_format`).

use super::analysis::{at, common_gbs, folder_of, NewAnalysis, RankAnswer, SafePick, UNREAD};
use super::answer::{resume, Mode};
use super::resolve::At;
use super::tracker::TRACKER;
use crate::fsys::Fs;
use crate::job::JobContext;
use crate::model::FileRead;
use crate::py::json::PyValue;

/// The newest folder every rank loads cleanly: MindFormers' checks pass on it, its
/// `common.json` gives a context, every shard is intact, and (multi-rank) `metadata.json` is
/// there. MindFormers never falls back, so the change that reaches it is part of the answer.
pub(super) fn safe_pick(
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
                            let change = change_to(ctx, mode, &d, loads.as_deref());
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
fn change_to(ctx: &JobContext, mode: &Mode, d: &At, loads: Option<&str>) -> Option<String> {
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
    // (as the config stage decided it — `mode` —, not re-read from the YAML)
    let health = match mode.health.is_some() && !mode.run.no_load_optim {
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
    let names: Vec<String> = fs
        .read_dir(&d.real)
        .map(|es| {
            es.iter()
                .map(|e| e.name.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    super::names::model_writers(names.iter().map(String::as_str))
}
