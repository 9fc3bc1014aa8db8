//! The header line: where, how watched, how fresh, and whether anything is simulated or frozen.

use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let age = s.last_change.elapsed().as_secs();
    let mut spans = vec![
        Span::styled(" ckptscope ", t.title()),
        Span::raw(format!(
            "{}  mindformers-legacy  {}  changed {}s ago ",
            s.root, s.mode, age
        )),
    ];
    if !s.overlay.is_empty() {
        spans.push(Span::styled(
            format!(
                " SIMULATION: {} edit(s), disk untouched ",
                s.overlay.edits().len()
            ),
            t.alert(),
        ));
    }
    if s.frozen {
        spans.push(Span::styled(
            format!(" FROZEN (+{} pending) ", s.pending),
            t.alert(),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
