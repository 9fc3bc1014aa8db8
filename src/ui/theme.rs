//! Colours. Every state also has its own glyph, so with colour off (`NO_COLOR`, `--color never`)
//! the screen says the same; the cursor is then shown reversed.

use crate::grid::cell::CellState;
use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub light: bool,
    /// ASCII only: the glyphs `● ○ ◐ ≠ ※ ·`, arrows and box lines have an ambiguous width,
    /// and terminals in CJK locales draw them two columns wide, which shears the grid.
    pub ascii: bool,
}

impl Theme {
    /// `fancy`, or `plain` in ASCII mode: for words where the one-character stand-ins of
    /// [`ascii_of`] (which rewrites every finished frame) would read poorly (`->`, `ok`).
    pub fn sym<'a>(&self, fancy: &'a str, plain: &'a str) -> &'a str {
        if self.ascii {
            plain
        } else {
            fancy
        }
    }
}

/// The ASCII stand-in for a symbol the screen draws, when it has one (ASCII mode rewrites
/// every drawn cell through this: borders, separators, arrows, glyphs).
pub fn ascii_of(sym: &str) -> Option<char> {
    let mut chars = sym.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    if c.is_ascii() {
        return None;
    }
    if let Some(s) = CellState::ALL.iter().find(|s| s.glyph() == c) {
        return Some(s.ascii_glyph());
    }
    Some(match c {
        '─' | '━' | '—' | '–' => '-',
        '│' | '┃' | '▏' => '|',
        '┌' | '┐' | '└' | '┘' | '├' | '┤' | '┬' | '┴' | '┼' => '+',
        '·' | '•' | '…' => '.',
        '→' | '▸' | '▶' => '>',
        '←' | '◂' | '◀' => '<',
        '↑' => '^',
        '↓' => 'v',
        '✓' => 'v',
        '✗' | '×' => 'x',
        _ => return None,
    })
}

impl Theme {
    fn c(&self, dark: Color, light: Color) -> Style {
        if !self.color {
            return Style::default();
        }
        Style::default().fg(if self.light { light } else { dark })
    }

    /// A cell's style: missing and damaged shards are the loudest things on screen (red,
    /// bold), healthy ones the quietest (plain green), "not checked yet" recedes.
    pub fn cell(&self, s: CellState) -> Style {
        let loud = |st: Style| st.add_modifier(Modifier::BOLD);
        match s {
            CellState::Ok => self.c(Color::Green, Color::Green),
            CellState::Unverified => self.c(Color::DarkGray, Color::DarkGray),
            CellState::Verifying => self.c(Color::Cyan, Color::Blue),
            CellState::InProgress => self.c(Color::Yellow, Color::Rgb(150, 100, 0)),
            CellState::Encrypted => self.c(Color::Blue, Color::Blue),
            CellState::Other => self.c(Color::White, Color::Black),
            CellState::SimDeleted | CellState::SimCorrupt => {
                loud(self.c(Color::Magenta, Color::Magenta))
            }
            CellState::Missing
            | CellState::Incomplete
            | CellState::CrcMismatch
            | CellState::HashMismatch
            | CellState::Corrupt
            | CellState::Truncated
            | CellState::ZeroByte
            | CellState::Unreadable => loud(self.c(Color::LightRed, Color::Red)),
        }
    }

    pub fn cursor(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn title(&self) -> Style {
        self.c(Color::Cyan, Color::Blue)
            .add_modifier(Modifier::BOLD)
    }

    /// Explanations, axis labels, the `^` marker: receding, yet readable on the terminal's
    /// background (light grey on a light background was not).
    pub fn dim(&self) -> Style {
        self.c(Color::Gray, Color::DarkGray)
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

    /// A resolver's headline that works.
    pub fn good(&self) -> Style {
        self.c(Color::Green, Color::Rgb(0, 110, 0))
            .add_modifier(Modifier::BOLD)
    }

    /// A resolver's headline that fails (or loads damage).
    pub fn bad(&self) -> Style {
        self.c(Color::LightRed, Color::Red)
            .add_modifier(Modifier::BOLD)
    }

    pub fn mark(&self) -> Style {
        self.c(Color::Yellow, Color::Rgb(150, 100, 0))
            .add_modifier(Modifier::BOLD)
    }
}
