//! The grid as plain text (`ckptscope grid DIR`, or any non-terminal output): one line per rank,
//! one column per step, a glyph per cell, markers for MindFormers' pick (`M`), the safe pick
//! (`S`) and each rank's `meta.json` target (`^` under the cell), and a legend.

use super::cell::CellState;
use super::model::GridModel;
use std::fmt::Write;

pub fn render(g: &GridModel, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{title}");
    let width = g
        .columns
        .iter()
        .map(|c| c.label().len())
        .max()
        .unwrap_or(4)
        .max(4)
        + 1;
    let head = 9;
    let mark = |i: usize| g.marks(i, width);
    let _ = write!(s, "{:head$}", "");
    for (i, _) in g.columns.iter().enumerate() {
        let _ = write!(s, "{:>width$}", mark(i));
    }
    let _ = write!(
        s,
        "\n{:head$}",
        if g.columns.iter().any(|c| c.new.is_some()) {
            "iter"
        } else {
            "E_S"
        }
    );
    for c in &g.columns {
        let _ = write!(s, "{:>width$}", c.label());
    }
    let _ = write!(s, "\n{:head$}", "step");
    for c in &g.columns {
        let _ = write!(
            s,
            "{:>width$}",
            c.global_step.map_or("?".into(), |v| v.to_string())
        );
    }
    s.push('\n');
    for (row, rank) in g.ranks.iter().enumerate() {
        let _ = write!(s, "{:head$}", format!("rank {rank}"));
        for col in 0..g.columns.len() {
            let cell = g.cell(row, col);
            let meta = if g.meta_target[row] == Some(col) {
                "^"
            } else {
                " "
            };
            let _ = write!(s, "{:>w$}{meta}", cell.glyph(), w = width - 1);
        }
        s.push('\n');
    }
    let new = g.columns.iter().any(|c| c.new.is_some());
    let _ = match new {
        true => writeln!(s, "\nT the tracker names this folder   M MindFormers resumes here   S safe resume folder   step: common.json's step_num   (a cell: the rank's model and optimizer shards, the worse of the two)"),
        false => writeln!(s, "\nM MindFormers resumes here   S safe resume step   ^ the rank's meta.json points here   step: stored step_num"),
    };
    let used: Vec<CellState> = CellState::ALL
        .iter()
        .copied()
        .filter(|st| (0..g.ranks.len()).any(|r| (0..g.columns.len()).any(|c| g.cell(r, c) == *st)))
        .collect();
    let legend: Vec<String> = used
        .iter()
        .map(|st| format!("{} {}", st.glyph(), st.name()))
        .collect();
    let _ = writeln!(s, "{}", legend.join("   "));
    s
}
