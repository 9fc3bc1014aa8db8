//! The detail pane: the cell under the cursor (or the group of ranks it stands for).

use crate::grid::cell::CellState;
use crate::model::FileRead;
use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(" cell ");
    let lines = if s.zoom > 1 {
        group_lines(s)
    } else {
        cell_lines(s, t)
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn cell_lines<'a>(s: &'a State, t: &Theme) -> Vec<Line<'a>> {
    let Some((dir, file)) = s.cursor_file() else {
        return vec![Line::raw("no cell")];
    };
    let g = s.grid();
    let col = s.visible_columns().get(s.col).copied().unwrap_or(0);
    let rank = s.row_members(s.row).next().unwrap_or(0);
    let state = s.shown(g.cell(rank, col));
    let tree = s.current_tree();
    let mut out = vec![
        Line::raw(format!("{} · {file}", dir.replacen("rank_", "rank ", 1))),
        // (the root that holds the folder, for a job given as several; else the header's)
        Line::styled(
            match tree.roots().is_empty() {
                true => format!("{}/{dir}/{file}", s.root),
                false => format!("{}/{dir}/{file}", tree.label_of(&dir)),
            },
            t.dim(),
        ),
        Line::styled(format!("{} {}", state.glyph(), state.name()), t.cell(state)),
    ];
    if let Some(e) = tree.dirs.get(&dir).and_then(|d| d.listing.find(&file)) {
        if let Ok(st) = e.stat() {
            let age = s
                .now
                .unwrap_or_else(std::time::SystemTime::now)
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
                - st.mtime_f64();
            out.push(Line::raw(format!(
                "{} · modified {} · mode {:o}",
                humansize::format_size(st.size, humansize::BINARY),
                super::ago(age),
                st.mode & 0o7777
            )));
        }
    }
    if let Some(v) = tree.verdict(&dir, &file) {
        out.push(Line::raw(v.detail.to_string()));
        // (a new-format shard holds no resume context: common.json, below, has it)
        if let Some(a) = v.append.as_ref().filter(|_| !dir.starts_with("iteration_")) {
            let n = |x: Option<crate::model::Num>| {
                x.map_or("-".to_owned(), |v| match v {
                    crate::model::Num::Int(i) => i.to_string(),
                    crate::model::Num::Float(f) => f.to_string(),
                })
            };
            out.push(Line::raw(format!(
                "epoch {} · step {} · gbs {} · loss scale {}",
                n(a.epoch_num),
                n(a.step_num),
                n(a.global_batch_size),
                n(a.loss_scale)
            )));
        }
        out.push(Line::raw(format!(
            "SHA-256: {}",
            v.sha256
                .as_deref()
                .map(String::as_str)
                .unwrap_or("not computed (ckptscope verify --hash)")
        )));
    }
    if dir.starts_with("iteration_") {
        out.extend(iteration_lines(tree, &dir, &file));
        return out;
    }
    let meta = match tree.dirs.get(&dir).and_then(|d| d.meta.as_ref()) {
        Some(FileRead::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => "absent".into(),
    };
    let points = if meta.contains(&format!("\"{file}\"")) {
        " ← points here"
    } else {
        ""
    };
    out.push(Line::raw(format!("meta.json: {meta}{points}")));
    if state == CellState::Missing {
        out.push(Line::styled("no such file in this rank's folder", t.dim()));
    }
    out
}

/// A new-format cell's other half and its folder's control files: the optimizer shard next
/// to the model shard (the cell shows the worse), `common.json` (the resume context) and
/// whether `metadata.json` is there.
fn iteration_lines<'a>(tree: &crate::model::Tree, dir: &str, file: &str) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    let node = tree.dirs.get(dir);
    if let Some(opt) = crate::layout::mindformers_new::names::opt_sibling(file) {
        let listed = node.and_then(|n| {
            n.listing.find(&opt).map(|_| ()).or_else(|| {
                n.listing
                    .find(&opt.replace(".safetensors", ".tmp"))
                    .map(|_| ())
            })
        });
        let state = match (listed, tree.verdict(dir, &opt)) {
            (None, _) => "missing".to_owned(),
            (Some(_), Some(v)) => format!("{}: {}", v.verdict.name(), v.detail),
            (Some(_), None) if node.is_some_and(|n| n.listing.find(&opt).is_none()) => {
                "being written (.tmp)".to_owned()
            }
            (Some(_), None) => "not checked yet".to_owned(),
        };
        out.push(Line::raw(format!("optimizer shard {opt}: {state}")));
    }
    let control = |name: &str| {
        node.and_then(|n| n.control.iter().find(|(c, _)| c == name))
            .map(|(_, r)| r)
    };
    let common = match control("common.json") {
        Some(FileRead::Bytes(b)) => String::from_utf8_lossy(b)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => format!("{other:?}"),
        None => "absent".into(),
    };
    out.push(Line::raw(format!("common.json: {common}")));
    let metadata = match control("metadata.json") {
        Some(FileRead::Bytes(b)) => format!("{} bytes", b.len()),
        Some(other) => format!("{other:?}"),
        None => "absent".into(),
    };
    out.push(Line::raw(format!("metadata.json: {metadata}")));
    out
}

/// A zoomed-out cell: counts of each state among its ranks.
fn group_lines(s: &State) -> Vec<Line<'_>> {
    let g = s.grid();
    let Some(&col) = s.visible_columns().get(s.col) else {
        return vec![];
    };
    let members: Vec<usize> = s.row_members(s.row).collect();
    let mut counts: std::collections::BTreeMap<CellState, usize> = Default::default();
    for r in &members {
        *counts.entry(s.shown(g.cell(*r, col))).or_default() += 1;
    }
    let (first, last) = (
        members.first().map_or(0, |r| g.ranks[*r]),
        members.last().map_or(0, |r| g.ranks[*r]),
    );
    let mut out = vec![Line::raw(format!(
        "step {} · ranks {}–{}{}",
        g.columns[col].label(),
        first,
        last,
        if s.problems_only {
            " with a problem"
        } else {
            ""
        }
    ))];
    out.extend(
        counts
            .iter()
            .map(|(st, n)| Line::raw(format!("{} {:<6} {}", st.glyph(), n, st.name()))),
    );
    out
}
