//! Colours. Every state also has its own glyph, so with colour off (`NO_COLOR`, `--color never`)
//! the screen says the same; the cursor is then shown reversed.

use crate::grid::cell::CellState;
use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub light: bool,
}

impl Theme {
    fn c(&self, dark: Color, light: Color) -> Style {
        if !self.color {
            return Style::default();
        }
        Style::default().fg(if self.light { light } else { dark })
    }

    pub fn cell(&self, s: CellState) -> Style {
        match s {
            CellState::Ok => self.c(Color::Green, Color::Green),
            CellState::Unverified => self.c(Color::Gray, Color::DarkGray),
            CellState::Verifying => self.c(Color::Cyan, Color::Blue),
            CellState::InProgress => self.c(Color::Yellow, Color::Rgb(160, 110, 0)),
            CellState::Encrypted => self.c(Color::Blue, Color::Blue),
            CellState::Other => self.c(Color::White, Color::Black),
            CellState::Missing => self.c(Color::DarkGray, Color::Gray),
            CellState::SimDeleted | CellState::SimCorrupt => self.c(Color::Magenta, Color::Magenta),
            CellState::Incomplete | CellState::CrcMismatch | CellState::HashMismatch => {
                self.c(Color::LightRed, Color::Red)
            }
            CellState::Corrupt
            | CellState::Truncated
            | CellState::ZeroByte
            | CellState::Unreadable => self.c(Color::Red, Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    pub fn cursor(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn title(&self) -> Style {
        self.c(Color::Cyan, Color::Blue)
            .add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        self.c(Color::DarkGray, Color::Gray)
    }

    pub fn alert(&self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::Black)
                .bg(Color::Magenta)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    pub fn mark(&self) -> Style {
        self.c(Color::Yellow, Color::Rgb(160, 110, 0))
            .add_modifier(Modifier::BOLD)
    }
}
