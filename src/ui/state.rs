//! Everything the screen shows, and nothing else: the session (model, overlay, job context and
//! the answers it computed), and the view state (cursor, zoom, popups, log, watch mode).
//! Rendering reads it; only `update` and the event loop change it, and they call
//! [`State::refresh`] after every change so the session's answers are current when drawn.

use crate::grid::model::GridModel;
use crate::resolve::config::ResumeConfig;
use crate::resolve::context::RunSettings;
use crate::resolve::Analysis;
use crate::session::{Derived, Session};
use crate::watch::Mode;
use std::collections::VecDeque;
use std::time::Instant;

/// A text prompt and what its answer sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    BatchSize,
    DataSkipSteps,
    Jump,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Popup {
    Help(HelpView),
    Legend,
    Prompt(PromptKind, String),
}

/// The help popup's view: how far it is scrolled and what it is filtered by (lazygit's `?`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelpView {
    /// The first line shown.
    pub scroll: usize,
    /// Only bindings whose keys, text or group contain this (case-insensitive).
    pub filter: String,
    /// Keys go to the filter (after `/`, until Enter or Esc).
    pub typing: bool,
}

pub struct State {
    pub session: Session,
    /// The folder as the header shows it.
    pub root: String,
    pub row: usize,
    pub col: usize,
    pub zoom: usize,
    pub problems_only: bool,
    /// Changes that arrived while frozen (the live model has them; the view does not yet).
    pub pending: usize,
    /// Set when the view is unfrozen: the event loop asks the watcher for a full resync.
    pub resync_wanted: bool,
    pub popup: Option<Popup>,
    pub log: VecDeque<String>,
    pub log_back: usize,
    /// How the tree is watched (`None`: not watched, e.g. a test on a fixed tree).
    pub mode: Option<Mode>,
    /// When the watcher last reported anything (the header shows its age).
    pub last_event: Instant,
    /// When the shown model last changed.
    pub last_change: Instant,
    pub color: bool,
    pub quit: bool,
    /// Ended by a signal (SIGTERM, SIGHUP, SIGINT from outside): the exit status says so.
    pub killed: bool,
    /// Cells that changed recently: `(rank, column label)` → when.
    pub flashes: std::collections::HashMap<(u64, String), Instant>,
    /// Text waiting to be sent to the terminal's clipboard (OSC 52).
    pub clipboard: Option<String>,
    /// The demo's narration of its current event.
    pub caption: Option<String>,
    /// A background verifier checks every present shard (so "not verified yet" means queued).
    pub verifying: bool,
    /// The watcher stopped: the view is no longer updated (said in the header).
    pub watch_failed: Option<String>,
    /// "Now" for file ages; `None` is the real clock (tests fix it so frames are reproducible).
    pub now: Option<std::time::SystemTime>,
    /// The terminal's size when last drawn (set by the event loop): keys that scroll a popup
    /// need to know what fits.
    pub screen: ratatui::layout::Rect,
}

pub const LOG_MAX: usize = 500;

/// How long a changed cell stays highlighted.
pub const FLASH: std::time::Duration = std::time::Duration::from_secs(3);

impl State {
    pub fn new(session: Session, color: bool) -> Self {
        let root = session.ctx().root.clone();
        let mut s = State {
            session,
            root,
            row: 0,
            col: 0,
            zoom: 1,
            problems_only: false,
            pending: 0,
            resync_wanted: false,
            popup: None,
            log: VecDeque::new(),
            log_back: 0,
            mode: None,
            last_event: Instant::now(),
            last_change: Instant::now(),
            color,
            quit: false,
            killed: false,
            flashes: Default::default(),
            clipboard: None,
            now: None,
            verifying: false,
            caption: None,
            watch_failed: None,
            screen: ratatui::layout::Rect::new(0, 0, 80, 24),
        };
        s.refresh();
        let warnings: Vec<String> = s
            .derived()
            .real
            .warnings
            .iter()
            .map(|w| format!("warning [{}]: {}", w.code, w.message))
            .collect();
        s.log.extend(warnings);
        s
    }

    /// Bring the session's answers up to date and keep the cursor inside the grid.
    pub fn refresh(&mut self) {
        self.session.grid();
        let cols = self.grid().columns.len();
        self.col = self.col.min(cols.saturating_sub(1));
        self.row = self.row.min(self.rows().saturating_sub(1));
    }

    /// The answers for the current view (kept current by [`State::refresh`]).
    pub fn derived(&self) -> &Derived {
        self.session
            .computed()
            .expect("State::refresh runs after every change")
    }

    pub fn grid(&self) -> &GridModel {
        self.session
            .computed_grid()
            .expect("State::refresh runs after every change")
    }

    pub fn frozen(&self) -> bool {
        self.session.is_frozen()
    }

    pub fn log(&mut self, line: impl Into<String>) {
        self.log.push_front(line.into());
        self.log.truncate(LOG_MAX);
    }

    /// Grid rows at the current zoom (one row = `zoom` ranks).
    pub fn rows(&self) -> usize {
        self.grid().ranks.len().div_ceil(self.zoom.max(1))
    }

    /// The visible step columns (all, or those with a problem).
    pub fn visible_columns(&self) -> Vec<usize> {
        let g = self.grid();
        if self.problems_only {
            g.problem_columns()
        } else {
            (0..g.columns.len()).collect()
        }
    }

    /// `(rank folder, file)` under the cursor (the first rank of a zoomed row).
    pub fn cursor_file(&self) -> Option<(String, String)> {
        let g = self.grid();
        let col = *self.visible_columns().get(self.col)?;
        let rank = *g.ranks.get(self.row * self.zoom)?;
        Some((
            format!("rank_{rank}"),
            g.columns.get(col)?.file_for(rank, g.fmt),
        ))
    }

    /// A cell's state as shown: unverified cells are "being verified" while a verifier runs.
    pub fn shown(&self, st: crate::grid::cell::CellState) -> crate::grid::cell::CellState {
        use crate::grid::cell::CellState;
        if self.verifying && st == CellState::Unverified {
            CellState::Verifying
        } else {
            st
        }
    }

    /// The configuration in force (simulated when edits are active).
    pub fn current_config(&self) -> &ResumeConfig {
        self.derived()
            .sim
            .as_ref()
            .map_or(&self.session.ctx().config, |(v, _)| &v.config)
    }

    pub fn current_run(&self) -> &RunSettings {
        self.derived()
            .sim
            .as_ref()
            .map_or(&self.session.ctx().run, |(v, _)| &v.run)
    }

    /// The analysis shown as "now": simulated when edits are active.
    pub fn current(&self) -> &Analysis {
        self.derived().current()
    }

    /// The tree the cells describe: the simulated one when edits are active.
    pub fn current_tree(&self) -> &crate::model::Tree {
        self.derived()
            .sim
            .as_ref()
            .map_or(self.session.shown_tree(), |(v, _)| &v.tree)
    }
}
