//! The human report of `ckptscope resolve` for a new-format tree: the tracker, what each rank
//! does (grouped), the folders, the safe pick with the change that reaches it, the warnings.

use super::group::rank_runs;
use super::text::TextOptions;
use crate::layout::mindformers_new::analysis::{NewAnalysis, RankAnswer};
use crate::resolve::Analysis;

/// One line, with everything dangerous in it escaped (names and file contents reach it).
fn emit(s: &mut String, text: &str) {
    s.push_str(&crate::report::terminal::safe(text));
    s.push('\n');
}

/// What a rank does, in words.
fn answer_text(r: &RankAnswer) -> String {
    match r {
        RankAnswer::Loads {
            load_path: None, ..
        } => "loads nothing: starts from scratch (step 0)".to_owned(),
        RankAnswer::Loads {
            load_path: Some(p),
            initial_step,
            initial_epoch,
            ..
        } => format!("loads {p} — initial step {initial_step}, epoch {initial_epoch}"),
        RankAnswer::Raises { error, .. }
            if error.class == crate::layout::mindformers_new::analysis::UNREAD =>
        {
            format!("cannot tell: {}", error.message)
        }
        RankAnswer::Raises { error, .. } => format!(
            "fails at the {} stage: {}: {}",
            error.stage, error.class, error.message
        ),
    }
}

pub fn render(a: &Analysis, n: &NewAnalysis, o: &TextOptions) -> String {
    let mut s = String::new();
    emit(
        &mut s,
        &format!(
            "ckptscope resolve — {} ({}, world size {})",
            a.load_checkpoint,
            a.layout.name(),
            n.world_size
        ),
    );
    s.push('\n');
    let tracker = match &n.tracker {
        Some(t) => format!(
            "latest_checkpointed_iteration.txt says {}",
            crate::py::py_repr(t)
        ),
        None => "no latest_checkpointed_iteration.txt".to_owned(),
    };
    emit(&mut s, &format!("tracker: {tracker}"));
    emit(
        &mut s,
        &format!(
            "settings: load_ckpt_format {}{} · no_load_optim {} · health mode {}",
            n.load_ckpt_format,
            match n
                .warnings
                .iter()
                .any(|w| w.code == "load_ckpt_format_assumed")
            {
                true => " (assumed)",
                false => "",
            },
            n.no_load_optim,
            if n.health { "on" } else { "off" }
        ),
    );
    if let Some(why) = &n.unknown {
        emit(&mut s, &format!("unknown: {why}"));
    }
    s.push('\n');
    emit(&mut s, "MindFormers 2.1.0 would, per rank:");
    let texts: Vec<String> = n.per_rank.iter().map(answer_text).collect();
    for ((lo, hi), text) in rank_runs(&texts) {
        let shown = o
            .ranks
            .as_ref()
            .is_none_or(|rs| rs.iter().any(|&(a, b)| a <= hi && lo <= b));
        if shown {
            let who = if lo == hi {
                format!("rank {lo}")
            } else {
                format!("ranks {lo}–{hi}")
            };
            emit(&mut s, &format!("  {who}: {text}"));
        }
    }
    if let Some(k) = &n.skip {
        emit(
            &mut s,
            &format!("  data skip: {k} batches (dataset.set_init_step; of the new batch size)"),
        );
    }
    s.push('\n');
    emit(&mut s, "iteration folders (oldest first):");
    for it in &n.iterations {
        let mut line = format!(
            "  {}  {} shard(s), {} intact",
            it.folder, it.shards, it.intact
        );
        if it.in_progress > 0 {
            line.push_str(&format!(", {} being written (.tmp)", it.in_progress));
        }
        emit(&mut s, &line);
        let shown = if o.all {
            it.problems.len()
        } else {
            it.problems.len().min(3)
        };
        for (f, why) in &it.problems[..shown] {
            emit(&mut s, &format!("      {f}: {why}"));
        }
        if it.problems.len() > shown {
            emit(
                &mut s,
                &format!(
                    "      … and {} more (--all lists them)",
                    it.problems.len() - shown
                ),
            );
        }
    }
    s.push('\n');
    match &n.safe {
        None => emit(
            &mut s,
            "safe resume: NONE — no iteration folder is complete and intact for every rank",
        ),
        Some(p) => {
            emit(
                &mut s,
                &format!(
                    "safe resume: {} (initial step {})",
                    p.folder, p.initial_step
                ),
            );
            match &p.change {
                None => emit(
                    &mut s,
                    "  MindFormers already resumes from it: no change needed",
                ),
                Some(c) => emit(&mut s, &format!("  to get there: {c}")),
            }
            for x in &p.passed_over {
                emit(&mut s, &format!("  passed over {x}"));
            }
        }
    }
    let body = super::text::warnings_section(&n.warnings, o);
    s.push_str(&body);
    if !n.notes.is_empty() {
        s.push('\n');
        for note in &n.notes {
            emit(&mut s, &format!("  note: {note}"));
        }
    }
    s
}
