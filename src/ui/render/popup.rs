//! Popups over the middle of the screen: help (generated from the keymap), the legend, and the
//! one-line prompt.

use crate::grid::cell::CellState;
use crate::ui::help;
use crate::ui::keymap::HelpLine;
use crate::ui::state::{HelpView, Popup, PromptKind, State};
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

/// `area` is the middle of the screen, `screen` all of it (the help takes most of it).
pub fn draw(f: &mut Frame, area: Rect, screen: Rect, s: &State, t: &Theme) {
    let Some(p) = &s.popup else { return };
    let (title, lines): (&str, Vec<Line>) = match p {
        Popup::Help(h) => return help(f, screen, h, t),
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

/// The help: bindings in columns (column-major, from `h.scroll`), then a status line with the
/// filter or how to use it and which lines are shown.
fn help(f: &mut Frame, screen: Rect, h: &HelpView, t: &Theme) {
    let all = help::lines(h);
    let area = help::area(screen, all.len());
    let (cols, rows, colw) = help::layout(area);
    let first = h.scroll.min(help::max_scroll(all.len(), screen));
    let shown = &all[first.min(all.len())..];
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" keys · ? or Esc closes · / filters ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let fit = |text: String| -> String {
        let w = colw.saturating_sub(1) as usize;
        match text.chars().count() > w {
            true => text
                .chars()
                .take(w.saturating_sub(1))
                .chain(['…'])
                .collect(),
            false => text,
        }
    };
    // what fits on one page is spread evenly over the columns
    let per_col = match shown.len() <= cols * rows {
        true => shown.len().div_ceil(cols).max(1),
        false => rows.max(1),
    };
    for (i, l) in shown.iter().take(cols * rows).enumerate() {
        let (c, r) = (i / per_col, i % per_col);
        let x = inner.x + c as u16 * colw;
        let y = inner.y + r as u16;
        let (text, style) = match l {
            HelpLine::Group(g) => (format!("— {g} —"), t.title()),
            HelpLine::Key { keys, help } => (format!("{keys:<12} {help}"), Style::default()),
        };
        f.buffer_mut().set_string(x, y, fit(text), style);
    }
    let last = (first + cols * rows).min(all.len());
    let status = if h.typing {
        format!("filter: {}▏ (Enter keeps it · Esc clears)", h.filter)
    } else if all.is_empty() {
        format!("no key matches '{}' (/ to change the filter)", h.filter)
    } else {
        let filter = match h.filter.is_empty() {
            true => String::new(),
            false => format!(" matching '{}'", h.filter),
        };
        let more = match last < all.len() {
            true => " · ↓ j PgDn for more",
            false => "",
        };
        format!("lines {}–{last} of {}{filter}{more}", first + 1, all.len())
    };
    let y = inner.y + inner.height.saturating_sub(1);
    f.buffer_mut()
        .set_string(inner.x, y, crate::report::terminal::safe(&status), t.dim());
}
