//! The header line: whether anything is simulated or frozen (first, so a long path can never
//! push it off the screen), then where, how watched, and how fresh.

use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let age = s.last_change.elapsed().as_secs();
    let mut spans = vec![Span::styled(" ckptscope ", t.title())];
    if !s.overlay.is_empty() {
        let n = s.overlay.edits().len();
        spans.push(Span::styled(
            format!(" SIMULATION: {n} edit(s), disk untouched "),
            t.alert(),
        ));
    }
    if s.frozen {
        spans.push(Span::styled(
            format!(" FROZEN (+{} pending) ", s.pending),
            t.alert(),
        ));
    }
    spans.push(Span::raw(format!(
        " {}  {}  changed {age}s ago  mindformers-legacy",
        s.root, s.mode
    )));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
