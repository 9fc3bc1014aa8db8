//! The verdict card of a new-format tree: MindFormers' folder per rank (or the stage it fails
//! in), the data skip, the safe folder and the change that reaches it — MindFormers never
//! falls back, so the change is part of the answer.

use crate::layout::mindformers_new::analysis::{NewAnalysis, RankAnswer, UNREAD};
use crate::ui::theme::Theme;
use ratatui::text::{Line, Span};

/// The last path component (`…/iteration_00000010` → `iteration_00000010`).
fn folder(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// The first sentence of a message, up to a quoted path's end (`Loaded nothing from
/// '…/x.safetensors'`), for a card line; the report has it whole.
fn gist(m: &str) -> String {
    let first = match m.find("'. ") {
        Some(i) => &m[..=i],
        None => m,
    };
    // a quoted absolute path shortened to its file name (the cell panel has the whole path)
    match (first.find("'/"), first.rfind('/')) {
        (Some(q), Some(slash)) if slash > q => format!("{}'…/{}", &first[..q], &first[slash + 1..]),
        _ => first.to_owned(),
    }
}

/// A rank's answer in a few words.
fn short(r: &RankAnswer) -> String {
    match r {
        RankAnswer::Loads {
            load_path: None, ..
        } => "starts from scratch".into(),
        RankAnswer::Loads {
            load_path: Some(p),
            initial_step,
            ..
        } => format!("{} (step {initial_step})", folder(p)),
        // not MindFormers' error: ckptscope could not read an input
        RankAnswer::Raises { error, .. } if error.class == UNREAD => {
            format!("unknown: {}", gist(&error.message))
        }
        RankAnswer::Raises { error, .. } => {
            format!("{} {}: {}", error.stage, error.class, gist(&error.message))
        }
    }
}

pub fn card<'a>(n: &NewAnalysis, t: &Theme) -> Vec<Line<'a>> {
    let (ok, bad, arrow) = (t.sym("✓", "ok"), t.sym("✗", "x"), t.sym("→", "->"));
    let dim = |text: String| Line::styled(text, t.dim());
    let mut out = Vec::new();
    let fails: Vec<&RankAnswer> = n
        .per_rank
        .iter()
        .filter(|r| matches!(r, RankAnswer::Raises { error, .. } if error.class != UNREAD))
        .collect();
    let first = n.per_rank.first().map(short).unwrap_or_default();
    // as the report decides (`NewAnalysis::outcome`): a rank that certainly fails fails the
    // job, whatever ckptscope could not tell about the others
    let (verdict, good) = match (fails.first(), &n.unknown) {
        (None, Some(_)) => ("? cannot tell (an input was not read)".to_owned(), false),
        (Some(RankAnswer::Raises { rank, error }), _) => (
            format!(
                "{bad} fails on {} of {} ranks: rank {rank} at the {} stage: {}: {}",
                fails.len(),
                n.per_rank.len(),
                error.stage,
                error.class,
                gist(&error.message)
            ),
            false,
        ),
        _ => (ok.to_owned(), true),
    };
    let style = if good { t.good() } else { t.bad() };
    let pick = match n.per_rank.first() {
        Some(RankAnswer::Raises { .. }) | None => "-".to_owned(),
        Some(_) => first,
    };
    out.push(Line::from(vec![
        Span::styled(format!("MindFormers {arrow} {pick} "), style),
        Span::styled(verdict, style),
    ]));
    if let Some(tr) = &n.tracker {
        out.push(dim(format!(
            "  tracker says {}",
            crate::py::py_repr(tr.trim())
        )));
    }
    if let Some(k) = &n.skip {
        out.push(Line::raw(format!("  skip {k} batches")));
    }
    match &n.safe {
        None => out.push(Line::styled(
            format!("Safe {arrow} none {bad} no folder is complete and intact"),
            t.bad(),
        )),
        Some(p) => {
            out.push(Line::styled(
                format!("Safe {arrow} {} (step {}) {ok}", p.folder, p.initial_step),
                t.good(),
            ));
            for x in p.passed_over.iter().take(2) {
                out.push(dim(format!("  passed over {x}")));
            }
            if let Some(c) = &p.change {
                out.push(Line::raw(format!("  {c}")));
            }
        }
    }
    out
}
