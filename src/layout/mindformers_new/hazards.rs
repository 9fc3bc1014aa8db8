//! The new format's hazards (`mindformers-new-format.md` §13.1), each a warning naming the
//! files and the fix. They read the model and the stages' answer, never the disk.

use super::analysis::{NewAnalysis, RankAnswer};
use super::names::model_writers;
use super::tracker::{parse, TRACKER};
use crate::job::JobContext;
use crate::model::{FileRead, Tree};
use crate::py::json::PyValue;
use crate::resolve::warnings::Warning;

fn w(code: &'static str, path: Option<String>, message: String) -> Warning {
    Warning {
        code,
        message,
        rank: None,
        path,
    }
}

/// Every hazard the tree and the answer show.
pub fn collect(tree: &Tree, ctx: &JobContext, a: &NewAnalysis) -> Vec<Warning> {
    let mut out = Vec::new();
    format_trap(ctx, &mut out);
    let tracked = tracker(tree, ctx, &mut out);
    for it in &a.iterations {
        let Some(node) = tree.dirs.get(&it.folder) else {
            continue;
        };
        let newer = matches!((it.number, tracked), (Some(n), Some(t)) if n > t);
        let complete = it.shards > 0 && it.in_progress == 0 && it.problems.is_empty();
        if newer && complete {
            out.push(w("complete_after_tracker", Some(it.folder.clone()), format!("{}/{} is complete but newer than the tracker's iteration: the job was killed before writing the tracker, and MindFormers ignores it (point checkpoint.load_path at it to resume there)", ctx.root, it.folder)));
        }
        if it.in_progress > 0 {
            let lag = match newer {
                true => " (an asynchronous save lagging behind, or a save killed mid-way: the tracker still names an older folder)",
                false => "",
            };
            out.push(w(
                "save_in_progress",
                Some(it.folder.clone()),
                format!(
                    "{}/{}: {} shard(s) still being written (.tmp){lag}",
                    ctx.root, it.folder, it.in_progress
                ),
            ));
        }
        let writers = model_writers(node.listing.entries().iter().map(|e| e.name));
        let has_meta = node
            .listing
            .find("metadata.json")
            .is_some_and(|e| e.exists());
        if writers > 1 && !has_meta {
            out.push(w("no_metadata", Some(format!("{}/metadata.json", it.folder)), format!("{}/{} has shards of {} ranks but no metadata.json: it passes MindFormers' verification, then loading fails with \"Duplicate parameter_name found\"; resume from another folder", ctx.root, it.folder, writers)));
        }
    }
    if a.health {
        health_null(tree, ctx, a, &mut out);
    }
    fresh_start(ctx, a, &mut out);
    overwritten(a, &mut out);
    unrotated(ctx, a, &mut out);
    out
}

/// Resume on, nothing loaded: MindFormers starts from scratch with a warning only (§13.1
/// item 1: an empty `load_checkpoint` folder turns the resume off).
fn fresh_start(ctx: &JobContext, a: &NewAnalysis, out: &mut Vec<Warning>) {
    let nothing = a.per_rank.iter().any(|r| {
        matches!(
            r,
            RankAnswer::Loads {
                load_path: None,
                ..
            }
        )
    });
    if nothing && ctx.newfmt.yaml.resume_training.truthy() {
        out.push(w("fresh_start", None, format!("resume_training is on but {} is empty: MindFormers silently starts from scratch (step 0, random weights); point load_checkpoint at the checkpoint folder", ctx.root)));
    }
}

/// A resumed run numbers its saves from its initial step: every folder numbered above it is
/// deleted and rewritten when the run reaches it (§5.7, §13.1 item 9) — after a batch-size
/// change, possibly the folder resumed from.
fn overwritten(a: &NewAnalysis, out: &mut Vec<Warning>) {
    let Some(RankAnswer::Loads {
        load_path: Some(_),
        initial_step,
        ..
    }) = a.per_rank.first()
    else {
        return;
    };
    let Ok(from) = initial_step.parse::<u64>() else {
        return;
    };
    let above: Vec<&str> = a
        .iterations
        .iter()
        .filter(|it| it.number.is_some_and(|n| n > from))
        .map(|it| it.folder.as_str())
        .collect();
    if let Some(first) = above.first() {
        out.push(w("folders_overwritten", Some((*first).to_owned()), format!("the resumed run starts at step {from}: {} folder(s) numbered above it ({}) are deleted and rewritten when it reaches them; copy them elsewhere first if they matter", above.len(), above.join(", "))));
    }
}

/// More folders than `save_max`: rotation is per launch (folders of earlier launches are never
/// deleted), and a hand-deleted folder of the running launch stops its next save (§5.6).
fn unrotated(ctx: &JobContext, a: &NewAnalysis, out: &mut Vec<Warning>) {
    let (keep, whence) = ctx.newfmt.save_max();
    let keep = keep.max(1) as usize;
    if a.iterations.len() > keep {
        out.push(w("unrotated_folders", None, format!("{} holds {} iteration folders, more than save_max {keep} ({whence}): MindFormers rotates only the folders the running launch saved, so earlier launches' folders stay for ever — delete old ones by hand between launches (never during one: deleting a folder the running launch saved stops its next save)", ctx.root, a.iterations.len())));
    }
}

/// `load_ckpt_format: ckpt` (MindFormers' default) fails every new-format resume (§7.3).
fn format_trap(ctx: &JobContext, out: &mut Vec<Warning>) {
    let nj = &ctx.newfmt;
    let message = "ValueError: <folder> is not a valid path to load checkpoint when auto_trans_ckpt is False.";
    if nj.format_assumed {
        out.push(w("load_ckpt_format_assumed", None, format!("load_ckpt_format not given: safetensors assumed (the value that works); MindFormers' template default `ckpt` fails every new-format resume with \"{message}\" — set load_ckpt_format: safetensors (or pass --config)")));
    } else if nj.load_ckpt_format == "ckpt" {
        out.push(w("load_ckpt_format_ckpt", None, format!("load_ckpt_format is ckpt (MindFormers' default): every new-format resume fails with \"{message}\"; set load_ckpt_format: safetensors")));
    }
}

/// The tracker's hazards; the iteration it names when it parses.
fn tracker(tree: &Tree, ctx: &JobContext, out: &mut Vec<Warning>) -> Option<u64> {
    let path = crate::py::text::join(&ctx.root, TRACKER);
    let read = tree.root_files.get(TRACKER)?;
    let FileRead::Bytes(b) = read else {
        return None;
    };
    if b.iter().all(u8::is_ascii_whitespace) {
        out.push(w("tracker_empty", Some(TRACKER.into()), format!("{path} is empty: it is truncated before being rewritten, so a kill at that moment leaves it empty and MindFormers fails with \"Invalid iteration num\"; write the newest complete iteration number into it by hand")));
        return None;
    }
    let n = parse(&path, b).ok()?;
    let folder = super::tracker::iteration_dir(&n);
    let exists = tree.root_entry(&folder).is_some_and(|e| e.is_dir());
    if !exists {
        out.push(w("tracker_dangling", Some(TRACKER.into()), format!("{path} names {folder}, which does not exist (rotated away, or never written): MindFormers fails and never falls back; point checkpoint.load_path at an existing iteration_* folder or fix the tracker by hand")));
    }
    n.to_i64().and_then(|v| u64::try_from(v).ok())
}

/// Health mode with folders whose `ckpt_status` is null: never healthy (§7.1).
fn health_null(tree: &Tree, ctx: &JobContext, a: &NewAnalysis, out: &mut Vec<Warning>) {
    let null = a
        .iterations
        .iter()
        .filter(|it| {
            tree.dirs.get(&it.folder).is_some_and(|n| {
                n.control.iter().any(|(c, r)| {
                    c == "common.json"
                        && matches!(r, FileRead::Bytes(b) if crate::py::json::load(b).is_ok_and(|v| matches!(v.get("ckpt_status"), None | Some(PyValue::None))))
                })
            })
        })
        .count();
    if null > 0 {
        out.push(w("health_status_null", None, format!("health mode is on, but {null} folder(s) under {} have ckpt_status null (saved without the health monitor): MindFormers never picks them as healthy", ctx.root)));
    }
}
