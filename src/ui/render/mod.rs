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

mod banner;
mod detail;
mod grid;
mod header;
mod log;
mod popup;
mod resume;
mod resume_new;

use super::keymap;
use super::state::State;
use super::theme::Theme;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Where each region goes on a screen of `area` (`None`: too small). Pure, so that mouse
/// clicks can be mapped to cells with the same geometry the frame was drawn with.
pub struct Areas {
    pub header: Rect,
    /// The demo's narration (zero rows outside the demo).
    pub banner: Rect,
    pub grid: Rect,
    pub detail: Rect,
    pub resume: Rect,
    pub log: Rect,
    pub bar: Rect,
}

/// `grid_need` is the width the grid would fill (its labels and every step column): the
/// side panels get the rest, between a readable minimum and a bit over half the screen, so a
/// grid of three steps does not sit in a wide empty box beside a cramped cell panel. The log
/// shrinks on short terminals so the panels keep their lines.
pub fn areas(area: Rect, grid_need: u16, banner: u16) -> Option<Areas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let log = (area.height / 6).clamp(3, 8);
    let banner = banner.min(area.height / 4);
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(banner),
            Constraint::Min(8),
            Constraint::Length(log),
            Constraint::Length(1),
        ])
        .split(area);
    let least = if area.width >= 120 { 44 } else { 36 };
    let most = (area.width * 55 / 100).max(least);
    let side = area.width.saturating_sub(grid_need).clamp(least, most);
    let mid = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Min(20), Constraint::Length(side)])
        .split(rows[2]);
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(mid[1]);
    Some(Areas {
        header: rows[0],
        banner: rows[1],
        grid: mid[0],
        detail: right[0],
        resume: right[1],
        log: rows[3],
        bar: rows[4],
    })
}

/// The layout of a screen of `area` for the state `s` (see [`areas`]).
pub fn areas_for(s: &State, area: Rect) -> Option<Areas> {
    // the banner's height does not depend on colours or glyphs
    let theme = Theme {
        color: false,
        light: false,
        ascii: false,
    };
    areas(area, grid::need(s), banner::height(s, &theme, area.width))
}

pub fn draw(f: &mut Frame, s: &State, theme: &Theme) {
    let area = f.area();
    let Some(a) = areas_for(s, area) else {
        let msg = format!("terminal too small: {}×{} (ckptscope needs {MIN_WIDTH}×{MIN_HEIGHT}); enlarge it or press q", area.width, area.height);
        f.render_widget(
            Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    };
    header::draw(f, a.header, s, theme);
    banner::draw(f, a.banner, s, theme);
    grid::draw(f, a.grid, s, theme);
    detail::draw(f, a.detail, s, theme);
    resume::draw(f, a.resume, s, theme);
    log::draw(f, a.log, s, theme);
    f.render_widget(
        Paragraph::new(Line::styled(keymap::bar(bar_mode(s)), theme.dim())),
        a.bar,
    );
    popup::draw(f, centered(area), area, s, theme);
    if theme.ascii {
        asciify(f.buffer_mut());
    }
}

/// Redraw every ambiguous-width symbol of a finished frame in ASCII (`--ascii`): borders,
/// separators, arrows and glyphs alike, whichever region drew them.
fn asciify(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        if let Some(c) = super::theme::ascii_of(cell.symbol()) {
            cell.set_char(c);
        }
    }
}

/// An age in the unit a person reads at a glance: `12 s ago`, `5 min ago`, `30 h ago`,
/// `3 d ago` (an mtime in the future: `in the future`).
pub fn ago(secs: f64) -> String {
    if secs.is_nan() || secs < -1.0 {
        return "in the future".into();
    }
    let s = secs.max(0.0) as u64;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7_199 => format!("{} min ago", s / 60),
        7_200..=172_799 => format!("{} h ago", s / 3_600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// What the key bar shows keys for: the popup in front, else a simulation or a frozen view.
fn bar_mode(s: &State) -> keymap::BarMode {
    use super::state::Popup;
    use keymap::BarMode;
    match &s.popup {
        Some(Popup::Help(_)) => BarMode::Help,
        Some(Popup::Legend) => BarMode::Legend,
        Some(Popup::Prompt(..)) => BarMode::Prompt,
        None if !s.session.overlay().is_empty() => BarMode::Simulating,
        None if s.frozen() => BarMode::Frozen,
        None => BarMode::Normal,
    }
}

/// The grid cell at screen position `(x, y)`, as `(row, visible column)`.
pub fn cell_at(s: &State, screen: Rect, x: u16, y: u16) -> Option<(usize, usize)> {
    grid::hit(s, areas_for(s, screen)?.grid, x, y)
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

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_in_human_units() {
        let cases = [
            (0.0, "0 s ago"),
            (59.4, "59 s ago"),
            (119.0, "119 s ago"),
            (120.0, "2 min ago"),
            (3_600.0, "60 min ago"),
            (7_200.0, "2 h ago"),
            (108_494.0, "30 h ago"),
            (172_800.0, "2 d ago"),
            (-30.0, "in the future"),
            (f64::NAN, "in the future"),
            (f64::INFINITY, "213503982334601 d ago"),
        ];
        for (secs, want) in cases {
            assert_eq!(super::ago(secs), want, "{secs}");
        }
    }
}
