//! Drawing, one small function per screen region, all from `&State` (drawing never changes it).
//!
//! ```text
//! ┌ header: root · layout · watcher mode · last change · SIMULATION banner · FROZEN ──────┐
//! ├ grid (steps × ranks, markers M/S/^) ─────────────┬ detail (cell under the cursor) ────┤
//! │                                                   ├ resume (real → simulated) ─────────┤
//! ├ event log ───────────────────────────────────────┴─────────────────────────────────────┤
//! └ key bar (from the keymap) ─────────────────────────────────────────────────────────────┘
//! ```
//! Popups (help, legend, prompt) draw over the middle. Below 60×16 only a message is drawn.

mod detail;
mod grid;
mod header;
mod log;
mod popup;
mod resume;

use super::keymap;
use super::state::State;
use super::theme::Theme;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

pub fn draw(f: &mut Frame, s: &State, theme: &Theme) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!("terminal too small: {}×{} (ckptscope needs {MIN_WIDTH}×{MIN_HEIGHT}); enlarge it or press q", area.width, area.height);
        f.render_widget(
            Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(8),
            Constraint::Length(6),
            Constraint::Length(1),
        ])
        .split(area);
    header::draw(f, rows[0], s, theme);
    let side = if area.width >= 120 { 50 } else { 36 };
    let mid = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Min(20), Constraint::Length(side)])
        .split(rows[1]);
    grid::draw(f, mid[0], s, theme);
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
        .split(mid[1]);
    detail::draw(f, right[0], s, theme);
    resume::draw(f, right[1], s, theme);
    log::draw(f, rows[2], s, theme);
    f.render_widget(
        Paragraph::new(Line::styled(keymap::bar(), theme.dim())),
        rows[3],
    );
    popup::draw(f, centered(area), s, theme);
}

fn centered(a: Rect) -> Rect {
    let w = a.width.saturating_sub(8).min(90);
    let h = a.height.saturating_sub(4).min(30);
    Rect {
        x: a.x + (a.width - w) / 2,
        y: a.y + (a.height - h) / 2,
        width: w,
        height: h,
    }
}
