//! The `resolve --json` document (resolve-contract.md): the contract's keys exactly, plus the
//! documented additions (`data_skip`, `warnings`, and the decision's details).

use crate::resolve::mindformers::RankResult;
use crate::resolve::Analysis;
use serde_json::{json, Map, Value};

/// One `per_rank` entry.
fn rank_entry(rank: usize, r: &RankResult) -> Value {
    match r {
        RankResult::File(name) => json!({"rank": rank, "resume_training": name}),
        RankResult::Newest => json!({"rank": rank, "resume_training": true}),
        RankResult::Off => json!({"rank": rank, "resume_training": false}),
        RankResult::Error(e) => {
            json!({"rank": rank, "error": {"type": e.class, "message": e.first_line()}})
        }
    }
}

/// The contract's `mindformers` object plus the decision's details.
pub fn mindformers_json(mf: &crate::resolve::mindformers::MfResolution) -> Value {
    let per_rank: Vec<Value> = mf
        .per_rank
        .iter()
        .enumerate()
        .map(|(r, x)| rank_entry(r, x))
        .collect();
    let mut mindformers = Map::new();
    mindformers.insert("per_rank".into(), Value::Array(per_rank));
    mindformers.insert("record".into(), json!(mf.record));
    mindformers.insert("branch".into(), json!(mf.branch));
    mindformers.insert("rank_entries".into(), json!(mf.rank_entries));
    mindformers.insert("shared".into(), json!(mf.shared));
    mindformers.insert("min_meta".into(), json!(mf.min_meta));
    mindformers.insert("candidates".into(), json!(mf.candidates));
    mindformers.insert("rank0_error".into(), json!(mf.rank0_error));
    mindformers.insert("log".into(), json!(mf.log));
    Value::Object(mindformers)
}

/// The `safe` object (or `null` when nothing is intact).
pub fn safe_json(
    outcome: &crate::resolve::safe::SafeOutcome,
    data_skip: Option<&crate::resolve::data_skip::DataSkip>,
) -> Value {
    match &outcome.pick {
        None => json!(null),
        Some(p) => json!({
            "epoch": p.epoch,
            "step": p.step,
            "restart": p.restart,
            "per_rank": p.per_rank,
            "config": p.config,
            "same_as_mindformers": p.same_as_mindformers,
            "reasons": p.reasons,
            "data_skip": data_skip,
            "passed_over": outcome.skipped,
        }),
    }
}

pub fn document(a: &Analysis) -> Value {
    let mindformers = mindformers_json(&a.mindformers);
    let d = a.data_skip.as_ref();
    let data_skip = json!({
        "scale": d.and_then(|d| d.scale),
        "initial_step": d.and_then(|d| d.initial_step),
        "initial_epoch": d.and_then(|d| d.initial_epoch),
        "skip_batches": d.and_then(|d| d.skip_batches),
        "first_printed_step": d.and_then(|d| d.first_printed_step),
    });
    let safe = a
        .safe
        .as_ref()
        .map(|s| safe_json(&s.outcome, s.data_skip.as_ref()));
    json!({
        "load_checkpoint": a.load_checkpoint,
        "layout": a.layout.name(),
        "world_size": a.world_size,
        "mindformers": mindformers,
        "context": a.context,
        "data_skip": data_skip,
        "warnings": a.warnings,
        "safe": safe,
        "safe_passed_over": a.safe.as_ref().map(|s| &s.outcome.skipped),
        "shards": a.shards,
    })
}
