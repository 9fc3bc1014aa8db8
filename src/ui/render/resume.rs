//! The resume panel: MindFormers' pick and the safe pick, data skip and first printed step —
//! real → simulated side by side when edits are active — and the config for the safe pick.

use crate::resolve::load::LoadKind;
use crate::resolve::mindformers::RankResult;
use crate::resolve::Analysis;
use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// MindFormers' pick, and how many ranks then fail (or load damage silently) loading it.
fn mf(a: &Analysis) -> String {
    let pick = pick(a);
    let count = |k| a.load.iter().filter(|p| p.kind == k).count();
    let (fails, silent) = (count(LoadKind::Fails), count(LoadKind::Silent));
    match (fails, silent) {
        (0, 0) => pick,
        (0, n) => format!("{pick} — {n} rank(s) load a damaged file silently"),
        (n, _) => format!("{pick} — FAILS loading on {n} rank(s)"),
    }
}

fn pick(a: &Analysis) -> String {
    match a.mindformers.per_rank.first() {
        Some(RankResult::File(f)) => short(f),
        Some(RankResult::Newest) => "newest by mtime".into(),
        Some(RankResult::Off) => "no resume".into(),
        Some(RankResult::Error(e)) => format!("FAILS: {}", e.first_line()),
        Some(RankResult::Unknown(_)) => "UNKNOWN (an input ckptscope cannot read)".into(),
        None => "-".into(),
    }
}

/// `llama_rank_0-20_2.ckpt` → `20_2` (with the restart suffix when there is one).
fn short(f: &str) -> String {
    match crate::layout::mindformers::names::parse_ckpt_name(f) {
        Some(n) if n.restart > 0 => format!("_{}-{}_{}", n.restart, n.epoch, n.step),
        Some(n) => format!("{}_{}", n.epoch, n.step),
        None => f.to_owned(),
    }
}

fn safe(a: &Analysis) -> String {
    match a.safe.outcome.pick.as_ref() {
        Some(p) => short(&p.config.resume_training),
        None => "none intact".into(),
    }
}

fn skip(a: &Analysis) -> String {
    let o = |v: Option<i64>| v.map_or("?".to_owned(), |v| v.to_string());
    match &a.data_skip {
        Some(d) => format!(
            "skip {} · print {} · scale {}",
            o(d.skip_batches),
            o(d.first_printed_step),
            d.scale.map_or("?".into(), |x| format!("{x}"))
        ),
        None => "data skip unknown".into(),
    }
}

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let real = &s.derived().real;
    let mut lines = Vec::new();
    let pending = s.derived().pending;
    if pending > 0 {
        // the names decide MindFormers' pick; the safe pick and the data skip wait for content
        lines.push(Line::styled(
            format!(
                "checking {pending} shard(s) the answer needs… (safe pick and data skip follow)"
            ),
            t.alert(),
        ));
    }
    match &s.derived().sim {
        None => {
            lines.push(Line::raw(format!("MindFormers: {}", mf(real))));
            lines.push(Line::raw(format!("  {}", skip(real))));
            lines.push(Line::raw(format!("safe: {}", safe(real))));
        }
        Some((v, sim)) => {
            lines.push(Line::styled("real → simulated", t.dim()));
            lines.push(Line::raw(format!(
                "MindFormers: {} → {}",
                mf(real),
                mf(sim)
            )));
            lines.push(Line::raw(format!("  {}", skip(real))));
            lines.push(Line::raw(format!("→ {}", skip(sim))));
            lines.push(Line::raw(format!("safe: {} → {}", safe(real), safe(sim))));
            for st in &v.stale {
                lines.push(Line::styled(format!("no longer applies: {st}"), t.alert()));
            }
        }
    }
    let now = s.current();
    if let Some(p) = now.safe.outcome.pick.as_ref() {
        for r in p.reasons.iter().take(2) {
            lines.push(Line::styled(r.clone(), t.dim()));
        }
        if !p.same_as_mindformers {
            lines.push(Line::raw(format!(
                "resume_training: \"{}\"",
                p.config.resume_training
            )));
        }
    }
    let block = Block::default().borders(Borders::ALL).title(" resume ");
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
