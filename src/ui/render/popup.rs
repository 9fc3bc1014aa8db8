//! Popups over the middle of the screen: help (generated from the keymap), the legend, and the
//! one-line prompt.

use crate::grid::cell::CellState;
use crate::ui::keymap;
use crate::ui::state::{Popup, PromptKind, State};
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, s: &State, t: &Theme) {
    let Some(p) = &s.popup else { return };
    let (title, lines): (&str, Vec<Line>) = match p {
        Popup::Help => (
            " keys (Esc closes) ",
            keymap::help_lines().into_iter().map(Line::raw).collect(),
        ),
        Popup::Legend => (
            " legend (Esc closes) ",
            CellState::ALL
                .iter()
                .map(|st| {
                    Line::from(vec![
                        Span::styled(st.glyph().to_string(), t.cell(*st)),
                        Span::raw(format!("  {}", st.name())),
                    ])
                })
                .chain([
                    Line::raw(""),
                    Line::raw(
                        "M MindFormers resumes here · S safe resume step · ^ meta.json points here",
                    ),
                ])
                .collect(),
        ),
        Popup::Prompt(kind, text) => {
            let q = match kind {
                PromptKind::BatchSize => "new global batch size",
                PromptKind::DataSkipSteps => "data_skip_steps (empty: unset)",
                PromptKind::Jump => "jump to rank number or step E_S",
            };
            let area = Rect {
                height: 3,
                y: area.y + area.height / 2,
                ..area
            };
            f.render_widget(Clear, area);
            let block = Block::default()
                .borders(Borders::ALL)
                .title(format!(" {q} (Enter / Esc) "));
            f.render_widget(Paragraph::new(format!("{text}▏")).block(block), area);
            return;
        }
    };
    f.render_widget(Clear, area);
    let block = Block::default().borders(Borders::ALL).title(title);
    f.render_widget(Paragraph::new(lines).block(block), area);
}
