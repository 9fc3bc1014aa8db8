//! The event log: recent changes, verdicts and simulation edits, newest first, scrollable.

use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = s
        .log
        .iter()
        .skip(s.log_back)
        .take(height)
        .map(|l| Line::raw(l.as_str()))
        .collect();
    // the demo's narration of its current event is the log's title
    let title = match (&s.caption, s.log_back) {
        (_, n) if n > 0 => format!(" log (back {n}) "),
        (Some(c), _) => format!(" ▶ {c} "),
        (None, _) => " log ".into(),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(t.dim());
    f.render_widget(Paragraph::new(lines).block(block), area);
}
