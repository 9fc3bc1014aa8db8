//! The header line: whether anything is simulated or frozen (first, so a long path can never
//! push it off the screen), then where, how watched, and how fresh.

use crate::ui::state::State;
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let age = super::ago(s.last_event.elapsed().as_secs_f64());
    let mut spans = vec![Span::styled(" ckptscope ", t.title())];
    if let Some(why) = &s.watch_failed {
        spans.push(Span::styled(format!(" NOT UPDATING: {why} "), t.alert()));
    }
    if !s.session.overlay().is_empty() {
        let n = s.session.overlay().edits().len();
        spans.push(Span::styled(
            format!(" SIMULATION: {n} edit(s), disk untouched "),
            t.alert(),
        ));
    }
    if s.frozen() {
        spans.push(Span::styled(
            format!(" FROZEN (+{} pending) ", s.pending),
            t.alert(),
        ));
    }
    let mode = match &s.mode {
        Some(m) if m.is_degraded() => {
            spans.push(Span::styled(format!(" {} ", m.short()), t.alert()));
            String::new()
        }
        Some(m) => m.short(),
        None => "not watched".into(),
    };
    let layout = s.derived().current().layout.name();
    spans.push(Span::raw(format!(
        " {}  {mode}  last event {age}  {layout}",
        crate::report::terminal::safe(&s.root)
    )));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
