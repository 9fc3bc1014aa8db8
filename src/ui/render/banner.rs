//! The demo's banner, under the header: the narration of the current beat (wrapped, never
//! cut at the screen's edge), MindFormers' resume point when it just moved, and — in presenter
//! mode — that Space goes on.

use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// How long "resume point A → B" stays in the banner.
const MOVED_FOR: std::time::Duration = std::time::Duration::from_secs(20);

/// The banner's lines (none: no banner).
pub fn lines(s: &State, t: &Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if let Some(c) = &s.caption {
        out.push(Line::styled(format!("{} {c}", t.sym("▶", ">")), t.title()));
    }
    let mut status = Vec::new();
    if let Some((text, at)) = &s.moved {
        if at.elapsed() < MOVED_FOR {
            status.push(text.replace('→', t.sym("→", "->")));
        }
    }
    if s.waiting && s.presenter.is_some() {
        status.push("Space: next beat".into());
    }
    if !status.is_empty() {
        out.push(Line::styled(status.join("   "), t.mark()));
    }
    out
}

/// Rows the banner takes at width `width` (0: none), frame included.
pub fn height(s: &State, t: &Theme, width: u16) -> u16 {
    let l = lines(s, t);
    if l.is_empty() {
        return 0;
    }
    let w = usize::from(width.saturating_sub(2).max(1));
    let rows: usize = l.iter().map(|x| x.width().div_ceil(w).max(1)).sum();
    u16::try_from(rows.min(4)).unwrap_or(4) + 2
}

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    if area.height == 0 {
        return;
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.dim())
        .title(" demo ");
    f.render_widget(
        Paragraph::new(lines(s, t))
            .block(block)
            .wrap(Wrap { trim: true }),
        area,
    );
}
