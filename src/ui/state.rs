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
    /// `p`: only the steps and the ranks with a problem (and the `M`/`S` steps).
    pub problems_only: bool,
    /// With `problems_only`: the grid's rank and column indices shown, and the grid version
    /// they were taken from (kept by [`State::refresh`]: a pass over every cell, done once per
    /// grid change, not once per frame).
    filtered: Option<Filtered>,
    /// The zoom and cursor were fitted to the screen (done once, on the first frame).
    pub fitted: bool,
    /// Changes that arrived while frozen (the live model has them; the view does not yet).
    pub pending: usize,
    /// Set when the view is unfrozen: the event loop asks the watcher for a full resync.
    pub resync_wanted: bool,
    pub popup: Option<Popup>,
    /// Newest first.
    pub log: VecDeque<String>,
    /// When each log line was written (same order as `log`).
    pub log_at: VecDeque<std::time::SystemTime>,
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
    /// The demo's narration of its current beat.
    pub caption: Option<String>,
    /// Presenter mode (the TUI demo): Space tells the trainer to go on.
    pub presenter: Option<crossbeam_channel::Sender<()>>,
    /// The trainer waits for Space.
    pub waiting: bool,
    /// Where to put the cursor once the grid shows it: a rank and a step `E_S` (the cell a
    /// demo event just changed).
    pub focus: Option<(u64, Option<String>)>,
    /// The last move of MindFormers' resume point (`20_2 → 15_2`), and when.
    pub moved: Option<(String, Instant)>,
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

/// The ranks and steps `p` shows.
struct Filtered {
    stamp: u64,
    ranks: Vec<usize>,
    columns: Vec<usize>,
}

/// Zoom levels: ranks per grid row.
pub const ZOOMS: [usize; 5] = [1, 8, 64, 512, 4096];

/// How long a changed cell stays highlighted.
pub const FLASH: std::time::Duration = std::time::Duration::from_secs(3);

impl State {
    pub fn new(session: Session, color: bool) -> Self {
        // a job given as several roots: the header names them all
        let root = session.ctx().roots_label();
        let mut s = State {
            session,
            root,
            row: 0,
            col: 0,
            zoom: 1,
            problems_only: false,
            filtered: None,
            fitted: false,
            pending: 0,
            resync_wanted: false,
            popup: None,
            log: VecDeque::new(),
            log_at: VecDeque::new(),
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
            presenter: None,
            waiting: false,
            focus: None,
            moved: None,
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
        let stamp = self.session.grid_stamp();
        match (self.problems_only, &self.filtered) {
            (false, _) => self.filtered = None,
            (true, Some(f)) if f.stamp == stamp => {}
            (true, _) => {
                let g = self.grid();
                let ranks = (0..g.ranks.len())
                    .filter(|r| (0..g.columns.len()).any(|c| g.cell(*r, c).is_problem()))
                    .collect();
                let mut columns = g.problem_columns();
                columns.extend(g.mf_column);
                columns.extend(g.safe_column);
                columns.sort_unstable();
                columns.dedup();
                self.filtered = Some(Filtered {
                    stamp,
                    ranks,
                    columns,
                });
            }
        }
        let cols = self.visible_columns().len();
        self.col = self.col.min(cols.saturating_sub(1));
        self.row = self.row.min(self.rows().saturating_sub(1));
    }

    /// Fit the view to a screen of `screen` once, on the first frame: the smallest zoom at
    /// which every rank row fits, the cursor on the step MindFormers resumes from (else the
    /// newest), on its worst rank — so the answer and its trouble are on screen at once.
    pub fn fit(&mut self, screen: ratatui::layout::Rect) {
        if self.fitted {
            return;
        }
        self.fitted = true;
        let Some(areas) = super::render::areas_for(self, screen) else {
            return;
        };
        let rows_fit = areas.grid.height.saturating_sub(2 + 3).max(1) as usize;
        let ranks = self.shown_rank_count();
        self.zoom = ZOOMS
            .iter()
            .copied()
            .find(|z| ranks.div_ceil(*z) <= rows_fit)
            .unwrap_or(ZOOMS[ZOOMS.len() - 1]);
        let cols = self.visible_columns();
        let mf = self.grid().mf_column;
        self.col = mf
            .and_then(|m| cols.iter().position(|c| *c == m))
            .unwrap_or(cols.len().saturating_sub(1));
        self.row = self.worst_row(self.col).unwrap_or(0);
        self.refresh();
    }

    /// The row holding the worst cell of visible column `col` (the first of equals).
    pub fn worst_row(&self, col: usize) -> Option<usize> {
        let c = *self.visible_columns().get(col)?;
        (0..self.rows()).max_by_key(|r| {
            (
                self.shown(self.row_worst(*r, c)).severity(),
                std::cmp::Reverse(*r),
            )
        })
    }

    /// How many ranks the rows show (all, or those with a problem).
    pub fn shown_rank_count(&self) -> usize {
        match &self.filtered {
            Some(f) => f.ranks.len(),
            None => self.grid().ranks.len(),
        }
    }

    /// The grid's rank index of the `i`-th rank shown.
    pub fn shown_rank(&self, i: usize) -> Option<usize> {
        match &self.filtered {
            Some(f) => f.ranks.get(i).copied(),
            None => (i < self.grid().ranks.len()).then_some(i),
        }
    }

    /// The grid's rank indices of row `row` (one, or `zoom` when zoomed out).
    pub fn row_members(&self, row: usize) -> impl Iterator<Item = usize> + '_ {
        let z = self.zoom.max(1);
        (row * z..(row + 1) * z).map_while(|i| self.shown_rank(i))
    }

    /// The worst state of row `row` in grid column `col`.
    pub fn row_worst(&self, row: usize, col: usize) -> crate::grid::cell::CellState {
        let g = self.grid();
        match &self.filtered {
            None => {
                let z = self.zoom.max(1);
                g.worst(row * z..((row + 1) * z).min(g.ranks.len()), col)
            }
            Some(_) => self
                .row_members(row)
                .map(|r| g.cell(r, col))
                .max_by_key(|s| s.severity())
                .unwrap_or(crate::grid::cell::CellState::Missing),
        }
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
        self.log_at
            .push_front(self.now.unwrap_or_else(std::time::SystemTime::now));
        self.log.truncate(LOG_MAX);
        self.log_at.truncate(LOG_MAX);
    }

    /// Grid rows at the current zoom (one row = `zoom` ranks).
    pub fn rows(&self) -> usize {
        self.shown_rank_count().div_ceil(self.zoom.max(1))
    }

    /// The visible step columns: all, or with `p` those with a problem and the steps
    /// MindFormers and the safe pick resume from.
    pub fn visible_columns(&self) -> Vec<usize> {
        match &self.filtered {
            Some(f) => f.columns.clone(),
            None => (0..self.grid().columns.len()).collect(),
        }
    }

    /// `(rank folder, file)` under the cursor (the first rank of a zoomed row).
    pub fn cursor_file(&self) -> Option<(String, String)> {
        let g = self.grid();
        let col = *self.visible_columns().get(self.col)?;
        let rank = g.ranks[self.row_members(self.row).next()?];
        Some(g.columns.get(col)?.cell_file(rank, g.fmt))
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
