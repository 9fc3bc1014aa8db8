//! The help popup (`?`), modelled on lazygit's: it covers most of the screen, lays the
//! bindings out in columns when the terminal is wide, scrolls, filters as you type after `/`,
//! and swallows every key while open — a key meant for it never also acts on the grid.

use super::keymap::{help_lines, HelpLine};
use super::state::HelpView;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;

/// Width of one column of bindings (keys, then their text: the longest fits).
pub const COLUMN: u16 = 56;
/// Most columns side by side.
const MAX_COLUMNS: u16 = 3;

/// Where the help goes on a screen of `screen` for `lines` lines: as tall as they need when
/// they all fit in its columns, else nearly all of the screen.
pub fn area(screen: Rect, lines: usize) -> Rect {
    let w = screen.width.saturating_sub(4).min(COLUMN * MAX_COLUMNS + 2);
    let tallest = screen.height.saturating_sub(2);
    let cols = (w.saturating_sub(2) / COLUMN).clamp(1, MAX_COLUMNS) as usize;
    let need = lines.div_ceil(cols).max(1).saturating_add(3);
    let h = tallest.min(u16::try_from(need).unwrap_or(u16::MAX));
    Rect {
        x: screen.x + (screen.width - w) / 2,
        y: screen.y + (screen.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Columns, lines per column, and column width inside the popup's frame `area` (the last
/// inner line is the status line).
pub fn layout(area: Rect) -> (usize, usize, u16) {
    let inner_w = area.width.saturating_sub(2);
    let rows = area.height.saturating_sub(3) as usize;
    let cols = (inner_w / COLUMN).clamp(1, MAX_COLUMNS);
    (cols as usize, rows, inner_w / cols)
}

/// How many lines fit at once on a screen of `screen`.
pub fn capacity(screen: Rect) -> usize {
    let (cols, rows, _) = layout(area(screen, usize::MAX));
    cols * rows
}

/// The furthest the help can scroll with `lines` lines on a screen of `screen`.
pub fn max_scroll(lines: usize, screen: Rect) -> usize {
    lines.saturating_sub(capacity(screen))
}

/// The lines the help shows for `h`.
pub fn lines(h: &HelpView) -> Vec<HelpLine> {
    help_lines(&h.filter)
}

/// Apply a key to the open help on a screen of `screen`; `false` closes it.
pub fn key(h: &mut HelpView, k: KeyEvent, screen: Rect) -> bool {
    if h.typing {
        match k.code {
            KeyCode::Char(c) => h.filter.push(c),
            KeyCode::Backspace => {
                h.filter.pop();
            }
            KeyCode::Enter => h.typing = false,
            KeyCode::Esc => {
                h.typing = false;
                h.filter.clear();
            }
            _ => {}
        }
        h.scroll = 0;
        return true;
    }
    let max = max_scroll(lines(h).len(), screen);
    let page = capacity(screen).max(1);
    match k.code {
        KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') => return false,
        KeyCode::Char('/') => {
            h.typing = true;
            h.filter.clear();
        }
        KeyCode::Down | KeyCode::Char('j') => h.scroll = (h.scroll + 1).min(max),
        KeyCode::Up | KeyCode::Char('k') => h.scroll = h.scroll.saturating_sub(1),
        KeyCode::PageDown | KeyCode::Char(' ') => h.scroll = (h.scroll + page).min(max),
        KeyCode::PageUp => h.scroll = h.scroll.saturating_sub(page),
        KeyCode::Home | KeyCode::Char('g') => h.scroll = 0,
        KeyCode::End | KeyCode::Char('G') => h.scroll = max,
        _ => {}
    }
    true
}
