//! The event log: recent changes, verdicts, simulation edits and the demo's narration,
//! oldest first with the time of day (the newest line at the bottom, like a terminal), and
//! scrollable back with `[`.

use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

/// `HH:MM:SS` in the local time zone.
fn clock(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives on this stack frame
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return "--:--:--".into();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let height = area.height.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = s
        .log
        .iter()
        .zip(&s.log_at)
        .skip(s.log_back)
        .take(height)
        .map(|(l, at)| Line::raw(format!("{} {l}", clock(*at))))
        .collect();
    lines.reverse();
    let title = match s.log_back {
        0 => " log ".to_owned(),
        n => format!(" log (back {n}: ] returns) "),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(t.dim());
    f.render_widget(Paragraph::new(lines).block(block), area);
}
