//! The resume panel, a verdict card per resolver: a coloured headline (`MindFormers → 145_2
//! ✗ fails: rank 900 …`, `Safe → 140_2 ✓`), then why, the ranks that differ, the steps passed
//! over, the data skip and the config change. With simulated edits, the real and the
//! simulated cards stand side by side under the list of settings in force.

use crate::grid::cell::CellState;
use crate::layout::mindformers::names::Fmt;
use crate::resolve::load::LoadKind;
use crate::resolve::mindformers::{Branch, RankResult};
use crate::resolve::Analysis;
use crate::ui::state::State;
use crate::ui::theme::Theme;
use crate::verify::verdict::thousands;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// `llama_rank_0-20_2.ckpt` → `20_2` (with the restart suffix when there is one).
fn short(f: &str) -> String {
    match crate::layout::mindformers::names::parse_ckpt_name(f) {
        Some(n) if n.restart > 0 => format!("_{}-{}_{}", n.restart, n.epoch, n.step),
        Some(n) => format!("{}_{}", n.epoch, n.step),
        None => f.to_owned(),
    }
}

/// A rank's answer in a few characters.
fn rank_short(r: &RankResult) -> String {
    match r {
        RankResult::File(f) => short(f),
        RankResult::Newest => "newest by mtime".into(),
        RankResult::Off => "no resume".into(),
        RankResult::Error(e) => format!("fails: {}", e.first_line()),
        RankResult::Unknown(_) => "unknown".into(),
    }
}

/// The gist of a sentence for a card line: up to its first `: ` or ` — ` (past the name
/// that usually starts it), at most 90 characters; the log and `resolve` have the rest.
fn gist(text: &str) -> String {
    let cut = [": ", " — "]
        .iter()
        .filter_map(|sep| text.get(12..)?.find(sep).map(|i| i + 12))
        .min()
        .unwrap_or(text.len());
    let g = &text[..cut];
    match g.chars().count() > 90 {
        true => g.chars().take(89).chain(['…']).collect(),
        false => g.to_owned(),
    }
}

/// Each rank's answer in a few characters: the step of the file it loads (found as
/// MindFormers finds it — by mtime where it takes the newest), else what it does.
fn rank_texts(a: &Analysis, tree: &crate::model::Tree, fmt: Fmt) -> Vec<String> {
    let pr = &a.mindformers.per_rank;
    // only the newest-by-mtime rule needs the tree to say which file a rank loads (the
    // card is drawn every frame: 8,192 ranks' lookups are not free)
    let files = pr
        .iter()
        .any(|r| matches!(r, RankResult::Newest))
        .then(|| crate::resolve::safe::mf_files(tree, &a.mindformers, fmt))
        .flatten();
    (0..pr.len())
        .map(|r| {
            let file = files.as_ref().map(|f| f.get(r).cloned().flatten());
            match (file, &pr[r]) {
                (Some(Some(f)), RankResult::Newest) => format!("{} (newest)", short(&f)),
                (Some(Some(f)), _) => short(&f),
                // the rule finds nothing to load there (no folder, no file)
                (Some(None), RankResult::Newest | RankResult::File(_)) => "nothing to load".into(),
                (_, res) => rank_short(res),
            }
        })
        .collect()
}

/// The ranks whose answers differ, grouped: `ranks 0–2, 4–7 → 150_2 · rank 3 → 145_2`
/// (`None` when every rank resumes alike).
fn per_rank(texts: &[String], arrow: &str) -> Option<String> {
    let first = texts.first()?;
    if texts.iter().all(|t| t == first) {
        return None;
    }
    let mut groups: Vec<(&String, Vec<u64>)> = Vec::new();
    for (r, t) in texts.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == t) {
            Some((_, rs)) => rs.push(r as u64),
            None => groups.push((t, vec![r as u64])),
        }
    }
    let shown: Vec<String> = groups
        .iter()
        .take(4)
        .map(|(t, rs)| {
            let which = crate::report::group::ranges_text(&crate::report::group::ranges(
                rs.iter().copied(),
            ));
            let word = if rs.len() == 1 { "rank" } else { "ranks" };
            format!("{word} {which} {arrow} {t}")
        })
        .collect();
    let more = match groups.len() > 4 {
        true => format!(" · {} more answers", groups.len() - 4),
        false => String::new(),
    };
    Some(format!("{}{more}", shown.join(" · ")))
}

/// MindFormers' headline: where it resumes and whether that works.
fn mf_headline<'a>(a: &Analysis, texts: &[String], t: &Theme) -> Line<'a> {
    let (ok, bad) = (t.sym("✓", "ok"), t.sym("✗", "x"));
    let arrow = t.sym("→", "->");
    let pr = &a.mindformers.per_rank;
    let pick = match texts.first() {
        _ if per_rank(texts, arrow).is_some() => "ranks differ".to_owned(),
        Some(r) => r.clone(),
        None => "-".into(),
    };
    let errors = pr
        .iter()
        .filter(|r| matches!(r, RankResult::Error(_)))
        .count();
    let fails: Vec<_> = a
        .load
        .iter()
        .filter(|p| p.kind == LoadKind::Fails)
        .collect();
    let silent: Vec<_> = a
        .load
        .iter()
        .filter(|p| p.kind == LoadKind::Silent)
        .collect();
    let (verdict, good) = if a.mindformers.unknown.is_some() {
        (
            "? cannot tell (an input could not be read)".to_owned(),
            false,
        )
    } else if errors > 0 {
        (
            format!("{bad} fails on {errors} of {} ranks", pr.len()),
            false,
        )
    } else if let Some(p) = fails.first() {
        let more = match fails.len() {
            1 => String::new(),
            n => format!(" (and {} more ranks)", n - 1),
        };
        (
            format!("{bad} fails: rank {} {}{more}", p.rank, gist(&p.why)),
            false,
        )
    } else if let Some(p) = silent.first() {
        (
            format!(
                "{bad} rank {} loads a damaged file silently: {}",
                p.rank,
                gist(&p.why)
            ),
            false,
        )
    } else if matches!(pr.first(), Some(RankResult::Off)) {
        (String::new(), true)
    } else {
        (ok.to_owned(), true)
    };
    let style = if good { t.good() } else { t.bad() };
    Line::from(vec![
        Span::styled(format!("MindFormers {arrow} {pick} "), style),
        Span::styled(verdict, style),
    ])
}

/// How many present shards the background verifier has still to check (`None` when it is
/// not running or is done).
fn verifying(s: &State) -> Option<(usize, usize)> {
    if !s.verifying {
        return None;
    }
    let g = s.grid();
    let (mut present, mut waiting) = (0, 0);
    for r in 0..g.ranks.len() {
        for c in 0..g.columns.len() {
            match g.cell(r, c) {
                CellState::Missing | CellState::SimDeleted => {}
                CellState::Unverified => {
                    present += 1;
                    waiting += 1;
                }
                _ => present += 1,
            }
        }
    }
    (waiting > 0).then_some((present - waiting, present))
}

/// The safe pick's headline: the step intact on every rank, or why there is none yet.
fn safe_headline<'a>(a: &Analysis, s: &State, t: &Theme) -> Line<'a> {
    let arrow = t.sym("→", "->");
    if a.mindformers.branch == Branch::SingleFile {
        return Line::styled(
            format!("Safe {arrow} not applicable: every rank loads that one file"),
            t.dim(),
        );
    }
    // counting the cells still to verify is a pass over the grid: only when there is no pick
    let progress = || verifying(s);
    match (
        &a.safe.outcome.pick,
        a.safe.outcome.pick.is_none().then(progress).flatten(),
    ) {
        (Some(p), _) => {
            let same = if p.same_as_mindformers {
                " (MindFormers' step)"
            } else {
                ""
            };
            Line::styled(
                format!(
                    "Safe {arrow} {}_{} {}{same}",
                    p.epoch,
                    p.step,
                    t.sym("✓", "ok")
                ),
                t.good(),
            )
        }
        (None, Some((done, total))) => Line::styled(
            format!(
                "Safe {arrow} verifying {} / {} shards…",
                thousands(done as u64),
                thousands(total as u64)
            ),
            t.mark(),
        ),
        (None, None) => Line::styled(
            format!(
                "Safe {arrow} none intact {}: no step is whole on every rank",
                t.sym("✗", "x")
            ),
            t.bad(),
        ),
    }
}

/// The card of one analysis: both headlines and what explains them (`why`: MindFormers'
/// reason too, which side by side cards give only where it differs).
fn card<'a>(
    a: &Analysis,
    tree: &crate::model::Tree,
    s: &State,
    t: &Theme,
    why: bool,
) -> Vec<Line<'a>> {
    if let Some(n) = &a.newfmt {
        return super::resume_new::card(n, t);
    }
    let dim = |text: String| Line::styled(text, t.dim());
    let texts = rank_texts(a, tree, s.grid().fmt);
    let mut out = vec![mf_headline(a, &texts, t)];
    if why {
        out.push(dim(format!("  why: {}", crate::report::text::why(a))));
    }
    if let Some(pr) = per_rank(&texts, t.sym("→", "->")) {
        out.push(Line::raw(format!("  per rank: {pr}")));
    }
    if let Some(d) = &a.data_skip {
        let o = |v: Option<i64>| v.map_or("?".to_owned(), |v| v.to_string());
        out.push(Line::raw(format!(
            "  skip {} · first step {}",
            o(d.skip_batches),
            o(d.first_printed_step)
        )));
        if let Some(x) = d.scale.filter(|x| *x != 1.0) {
            out.push(Line::raw(format!("  batch-size scale {x}")));
        }
    }
    out.push(safe_headline(a, s, t));
    if let Some(p) = &a.safe.outcome.pick {
        for r in p.reasons.iter().take(1) {
            out.push(dim(format!("  why: {}", gist(r))));
        }
    }
    for skipped in a.safe.outcome.skipped.iter().take(2) {
        out.push(dim(format!("  passed over {}", gist(skipped))));
    }
    if let Some(p) = &a.safe.outcome.pick {
        if !p.same_as_mindformers {
            out.push(Line::raw(format!(
                "  set resume_training: \"{}\" (y copies)",
                p.config.resume_training
            )));
        }
    }
    out
}

/// The simulated settings that differ from the real job, in words (`gbs 8 → 12`, not a
/// scale factor), and the tree edits.
fn settings(s: &State, t: &Theme) -> Vec<String> {
    let arrow = t.sym("→", "->");
    let Some((v, sim)) = &s.derived().sim else {
        return Vec::new();
    };
    let (ctx, real) = (s.session.ctx(), &s.derived().real);
    let stored = |a: &Analysis| {
        a.context
            .as_ref()
            .and_then(|c| c.append.as_ref())
            .and_then(|ap| ap.global_batch_size)
            .and_then(|n| n.as_i64())
    };
    let mut out = Vec::new();
    if v.run.new_global_batch_size != ctx.run.new_global_batch_size {
        let was = ctx.run.new_global_batch_size.or(stored(real));
        let o = |x: Option<i64>| x.map_or("?".to_owned(), |x| x.to_string());
        out.push(format!(
            "gbs {} {arrow} {}",
            o(was),
            o(v.run.new_global_batch_size.or(stored(sim)))
        ));
    }
    if v.run.ignore_data_skip != ctx.run.ignore_data_skip {
        out.push(format!("ignore_data_skip {}", v.run.ignore_data_skip));
    }
    if v.run.data_skip_steps != ctx.run.data_skip_steps {
        let o = |x: Option<i64>| x.map_or("unset".to_owned(), |x| x.to_string());
        out.push(format!(
            "data_skip_steps {} {arrow} {}",
            o(ctx.run.data_skip_steps),
            o(v.run.data_skip_steps)
        ));
    }
    if v.config.resume_training != ctx.config.resume_training {
        out.push(
            crate::sim::Edit::SetResumeTraining {
                value: v.config.resume_training.clone(),
            }
            .describe(),
        );
    }
    let tree_edits: Vec<String> = s
        .session
        .overlay()
        .edits()
        .iter()
        .filter(|e| e.changes_tree())
        .map(|e| e.describe())
        .collect();
    match tree_edits.as_slice() {
        [] => {}
        [one] => out.push(one.clone()),
        [first, rest @ ..] => out.push(format!("{first} (+{} more)", rest.len())),
    }
    out
}

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(" resume ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut top: Vec<Line> = Vec::new();
    let pending = s.derived().pending;
    if pending > 0 {
        // the names decide MindFormers' pick; the safe pick and the data skip wait for content
        top.push(Line::styled(
            format!(
                "checking {pending} shard(s) the answer needs… (safe pick and data skip follow)"
            ),
            t.alert(),
        ));
    }
    let wrap = Wrap { trim: false };
    let Some((v, sim)) = &s.derived().sim else {
        top.extend(card(&s.derived().real, s.session.shown_tree(), s, t, true));
        f.render_widget(Paragraph::new(top).wrap(wrap), inner);
        return;
    };
    top.push(Line::styled(
        format!("simulated: {}", settings(s, t).join(" · ")),
        t.alert(),
    ));
    for st in &v.stale {
        top.push(Line::styled(format!("no longer applies: {st}"), t.alert()));
    }
    // the lines above the columns, as wrapped
    let w = usize::from(inner.width.max(1));
    let wrapped: usize = top.iter().map(|l| l.width().div_ceil(w).max(1)).sum();
    let head = u16::try_from(wrapped).unwrap_or(u16::MAX).min(inner.height);
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(head), Constraint::Min(0)])
        .split(inner);
    f.render_widget(Paragraph::new(top).wrap(wrap), rows[0]);
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(rows[1]);
    let real = &s.derived().real;
    let differs = crate::report::text::why(real) != crate::report::text::why(sim);
    for (col, (title, a, tree, why)) in cols.iter().zip([
        ("real", real, s.session.shown_tree(), false),
        ("simulated", sim, &v.tree, differs),
    ]) {
        let mut lines = vec![Line::styled(
            title,
            Style::default().add_modifier(ratatui::style::Modifier::UNDERLINED),
        )];
        lines.extend(card(a, tree, s, t, why));
        f.render_widget(Paragraph::new(lines).wrap(wrap), *col);
    }
}
