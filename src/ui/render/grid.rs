//! The grid widget. It paints only the visible cells straight into the buffer, so a frame costs
//! the same for 8 ranks and for 8,192: rows are ranks (or groups of ranks when zoomed out, the
//! worst state winning), columns are steps, and the three header lines (markers, `E_S`, stored
//! step) stay put while the body scrolls.

use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Borders, Widget};
use ratatui::Frame;

const HEAD: u16 = 12;
const HEADER_ROWS: u16 = 3;

/// The first visible index so that `cursor` stays within `visible` slots.
fn first_visible(cursor: usize, visible: usize) -> usize {
    if visible == 0 || cursor < visible {
        0
    } else {
        cursor + 1 - visible
    }
}

/// The first visible step column: the newest steps stay on screen (where a resume happens)
/// while the cursor is among them; left of them, the cursor is the first column shown.
fn first_column(cursor: usize, visible: usize, count: usize) -> usize {
    let anchored = count.saturating_sub(visible);
    cursor.min(anchored)
}

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let zoom = if s.zoom > 1 {
        format!(" · {} ranks per row", s.zoom)
    } else {
        String::new()
    };
    let filter = if s.problems_only {
        " · problems only"
    } else {
        ""
    };
    let what = match s.grid().columns.iter().any(|c| c.new.is_some()) {
        true => "iterations",
        false => "steps",
    };
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {what} × ranks{zoom}{filter} "));
    let inner = block.inner(area);
    // steps off screen, on either side, said in the frame (not silently cut)
    let cols = s.visible_columns();
    if let Some(geo) = geometry(s, inner, &cols) {
        let older = geo.col0;
        let newer = cols.len().saturating_sub(geo.col0 + geo.vis_cols);
        let mut hidden = Vec::new();
        if older > 0 {
            hidden.push(format!("{} {older} older", t.sym("◂", "<")));
        }
        if newer > 0 {
            hidden.push(format!("{newer} newer {}", t.sym("▸", ">")));
        }
        if !hidden.is_empty() {
            block = block.title(
                ratatui::text::Line::styled(format!(" {} ", hidden.join(" · ")), t.mark())
                    .right_aligned(),
            );
        }
    }
    block.render(area, f.buffer_mut());
    paint(f.buffer_mut(), inner, s, t);
}

/// Whether this cell changed within the last few seconds.
fn flashed(s: &State, rank: u64, label: &str) -> bool {
    !s.flashes.is_empty()
        && s.flashes
            .get(&(rank, label.to_owned()))
            .is_some_and(|at| at.elapsed() < crate::ui::state::FLASH)
}

/// Width of one step column for the visible columns `cols` (the widest label, plus a gap).
fn column_width(s: &State, cols: &[usize]) -> u16 {
    let g = s.grid();
    cols.iter()
        .map(|c| g.columns[*c].label().len())
        .max()
        .unwrap_or(4)
        .clamp(4, 14) as u16
        + 1
}

/// The width the grid fills with every visible step on screen (frame included).
pub fn need(s: &State) -> u16 {
    let cols = s.visible_columns();
    let n = u16::try_from(cols.len()).unwrap_or(u16::MAX);
    n.saturating_mul(column_width(s, &cols))
        .saturating_add(HEAD + 3)
}

/// Column width, visible columns and rows, and the first visible row and column.
struct Geometry {
    cw: u16,
    vis_cols: usize,
    vis_rows: usize,
    row0: usize,
    col0: usize,
}

fn geometry(s: &State, inner: Rect, cols: &[usize]) -> Option<Geometry> {
    if inner.height <= HEADER_ROWS || inner.width <= HEAD || cols.is_empty() || s.rows() == 0 {
        return None;
    }
    let cw = column_width(s, cols);
    let vis_cols = ((inner.width - HEAD) / cw) as usize;
    let vis_rows = (inner.height - HEADER_ROWS) as usize;
    Some(Geometry {
        cw,
        vis_cols,
        vis_rows,
        row0: first_visible(s.row, vis_rows),
        col0: first_column(s.col, vis_cols, cols.len()),
    })
}

/// The cell under screen position `(x, y)` inside the grid region `area`.
pub fn hit(s: &State, area: Rect, x: u16, y: u16) -> Option<(usize, usize)> {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let cols = s.visible_columns();
    let geo = geometry(s, inner, &cols)?;
    let (dx, dy) = (
        x.checked_sub(inner.x + HEAD)?,
        y.checked_sub(inner.y + HEADER_ROWS)?,
    );
    let (slot, vr) = ((dx / geo.cw) as usize, dy as usize);
    let (row, col) = (geo.row0 + vr, geo.col0 + slot);
    (slot < geo.vis_cols && vr < geo.vis_rows && row < s.rows() && col < cols.len())
        .then_some((row, col))
}

fn paint(buf: &mut Buffer, inner: Rect, s: &State, t: &Theme) {
    let g = s.grid();
    let cols = s.visible_columns();
    let Some(geo) = geometry(s, inner, &cols) else {
        if inner.height > 0 && inner.width > 0 {
            buf.set_string(inner.x, inner.y, "no checkpoint steps here", t.dim());
        }
        return;
    };
    let Geometry {
        cw,
        vis_cols,
        vis_rows,
        row0,
        col0,
    } = geo;
    let shown: Vec<(usize, usize)> = cols
        .iter()
        .copied()
        .enumerate()
        .skip(col0)
        .take(vis_cols)
        .collect();
    for (slot, (vi, c)) in shown.iter().enumerate() {
        let x = inner.x + HEAD + slot as u16 * cw;
        let col = &g.columns[*c];
        let mark = &g.marks(*c, cw as usize);
        let right = |text: &str| x + cw.saturating_sub(text.len() as u16 + 1);
        buf.set_string(right(mark), inner.y, mark, t.mark());
        let label = col.label();
        let style = if *vi == s.col {
            t.cursor()
        } else {
            ratatui::style::Style::default()
        };
        buf.set_string(right(&label), inner.y + 1, &label, style);
        let step = col.global_step.map_or("?".to_owned(), |v| v.to_string());
        buf.set_string(right(&step), inner.y + 2, &step, t.dim());
    }
    let new = g.columns.iter().any(|c| c.new.is_some());
    buf.set_string(
        inner.x,
        inner.y + 1,
        if new { "iteration" } else { "E_S" },
        t.dim(),
    );
    buf.set_string(inner.x, inner.y + 2, "step", t.dim());
    for vr in 0..vis_rows {
        let row = row0 + vr;
        if row >= s.rows() {
            break;
        }
        let y = inner.y + HEADER_ROWS + vr as u16;
        let (first, last) = {
            let mut m = s.row_members(row);
            let first = m.next().unwrap_or(0);
            (first, m.last().unwrap_or(first))
        };
        let label = if s.zoom == 1 {
            format!("rank {}", g.ranks[first])
        } else {
            format!("r{}-{}", g.ranks[first], g.ranks[last])
        };
        let style = if row == s.row {
            t.cursor()
        } else {
            ratatui::style::Style::default()
        };
        buf.set_string(
            inner.x,
            y,
            format!("{label:<w$}", w = HEAD as usize - 1),
            style,
        );
        for (slot, (vi, c)) in shown.iter().enumerate() {
            let state = s.shown(s.row_worst(row, *c));
            let x = inner.x + HEAD + slot as u16 * cw + cw - 2;
            let mut st = t.cell(state);
            if s.zoom == 1 && flashed(s, g.ranks[first], &g.columns[*c].label()) {
                st = st.add_modifier(
                    ratatui::style::Modifier::UNDERLINED | ratatui::style::Modifier::BOLD,
                );
            }
            if row == s.row && *vi == s.col {
                st = st.patch(t.cursor());
            }
            buf.set_string(x, y, state.glyph().to_string(), st);
            if s.zoom == 1 && g.meta_target.get(first) == Some(&Some(*c)) {
                buf.set_string(x + 1, y, "^", t.dim());
            }
        }
    }
}
