//! Everything the screen shows, and nothing else: the real model (as the watcher last reported
//! it, or frozen), the simulation overlay, what the resolvers derived from both, and the view
//! state (cursor, zoom, popups, log). Rendering reads it; only `update` changes it.

use crate::grid::model::{GridModel, SimMarks};
use crate::layout::mindformers::names::Fmt;
use crate::model::Tree;
use crate::resolve::config::{EnvFacts, PathFacts, ResumeConfig};
use crate::resolve::context::RunSettings;
use crate::resolve::{analyze, Analysis};
use crate::sim::{Overlay, SimView};
use std::collections::VecDeque;
use std::time::Instant;

/// What the resolvers need besides the tree.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub fmt: Fmt,
    pub config: ResumeConfig,
    pub env: EnvFacts,
    pub paths: PathFacts,
    pub run: RunSettings,
}

/// A text prompt and what its answer sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    BatchSize,
    DataSkipSteps,
    Jump,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Popup {
    Help,
    Legend,
    Prompt(PromptKind, String),
}

/// Results derived from the model and the overlay (recomputed only when either changes).
pub struct Derived {
    pub real: Analysis,
    /// The simulated view and its analysis, when any edit is active.
    pub sim: Option<(SimView, Analysis)>,
    pub grid: GridModel,
}

pub struct State {
    pub root: String,
    pub inputs: Inputs,
    pub real: Tree,
    pub overlay: Overlay,
    pub derived: Derived,
    pub row: usize,
    pub col: usize,
    pub zoom: usize,
    pub problems_only: bool,
    pub frozen: bool,
    /// Changes that arrived while frozen.
    pub pending: usize,
    pub popup: Option<Popup>,
    pub log: VecDeque<String>,
    pub log_back: usize,
    pub mode: String,
    pub last_change: Instant,
    pub color: bool,
    pub quit: bool,
    /// Cells that changed recently: `(rank, column label)` → when.
    pub flashes: std::collections::HashMap<(u64, String), Instant>,
    /// Text waiting to be sent to the terminal's clipboard (OSC 52).
    pub clipboard: Option<String>,
    /// The demo's narration of its current event.
    pub caption: Option<String>,
    /// A background verifier checks every present shard (so "not verified yet" means queued).
    pub verifying: bool,
    /// "Now" for file ages; `None` is the real clock (tests fix it so frames are reproducible).
    pub now: Option<std::time::SystemTime>,
}

pub const LOG_MAX: usize = 500;

/// How long a changed cell stays highlighted.
pub const FLASH: std::time::Duration = std::time::Duration::from_secs(3);

impl State {
    pub fn new(root: String, inputs: Inputs, real: Tree, color: bool) -> Self {
        let derived = derive(&real, &Overlay::default(), &inputs);
        let log = derived
            .real
            .warnings
            .iter()
            .map(|w| format!("warning [{}]: {}", w.code, w.message))
            .collect();
        State {
            root,
            inputs,
            real,
            overlay: Overlay::default(),
            derived,
            row: 0,
            col: 0,
            zoom: 1,
            problems_only: false,
            frozen: false,
            pending: 0,
            popup: None,
            log,
            log_back: 0,
            mode: "scan".into(),
            last_change: Instant::now(),
            color,
            quit: false,
            flashes: Default::default(),
            clipboard: None,
            now: None,
            verifying: false,
            caption: None,
        }
    }

    pub fn recompute(&mut self) {
        self.derived = derive(&self.real, &self.overlay, &self.inputs);
        let g = &self.derived.grid;
        self.col = self.col.min(g.columns.len().saturating_sub(1));
        self.row = self.row.min(self.rows().saturating_sub(1));
    }

    pub fn log(&mut self, line: impl Into<String>) {
        self.log.push_front(line.into());
        self.log.truncate(LOG_MAX);
    }

    /// Grid rows at the current zoom (one row = `zoom` ranks).
    pub fn rows(&self) -> usize {
        self.derived.grid.ranks.len().div_ceil(self.zoom.max(1))
    }

    /// The visible step columns (all, or those with a problem).
    pub fn visible_columns(&self) -> Vec<usize> {
        let g = &self.derived.grid;
        if self.problems_only {
            g.problem_columns()
        } else {
            (0..g.columns.len()).collect()
        }
    }

    /// `(rank folder, file)` under the cursor (the first rank of a zoomed row).
    pub fn cursor_file(&self) -> Option<(String, String)> {
        let g = &self.derived.grid;
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
        self.derived
            .sim
            .as_ref()
            .map_or(&self.inputs.config, |(v, _)| &v.config)
    }

    pub fn current_run(&self) -> &RunSettings {
        self.derived
            .sim
            .as_ref()
            .map_or(&self.inputs.run, |(v, _)| &v.run)
    }

    /// The analysis shown as "now": simulated when edits are active.
    pub fn current(&self) -> &Analysis {
        self.derived
            .sim
            .as_ref()
            .map_or(&self.derived.real, |(_, a)| a)
    }
}

/// Run the resolvers on the real model and, with edits, on the simulated one. Shard facts and
/// the resume context come from the verdicts in the model: the UI never reads the disk.
pub fn derive(real: &Tree, overlay: &Overlay, inputs: &Inputs) -> Derived {
    let run_one = |tree: &Tree, config: &ResumeConfig, run: &RunSettings| {
        let n = tree.rank_entry_count();
        let env = EnvFacts {
            world_size: if inputs.env.world_size == 0 {
                n as u64
            } else {
                inputs.env.world_size
            },
            ..inputs.env.clone()
        };
        let facts = crate::grid::facts_from(tree);
        let read = |f: &str| {
            tree.verdict("rank_0", f)
                .and_then(|c| c.append.clone())
                .ok_or_else(|| "not verified yet".to_owned())
        };
        let check = |d: &str, f: &str| facts(d, f);
        analyze(tree, config, &env, &inputs.paths, run, &read, Some(&check))
    };
    let real_a = run_one(real, &inputs.config, &inputs.run);
    let sim = (!overlay.is_empty()).then(|| {
        let v = overlay.apply(real, &inputs.config, &inputs.run);
        let a = run_one(&v.tree, &v.config, &v.run);
        (v, a)
    });
    let (tree, a, marks) = match &sim {
        Some((v, a)) => (
            &v.tree,
            a,
            SimMarks {
                deleted: Some(&v.deleted),
                marked: Some(&v.marked),
            },
        ),
        None => (real, &real_a, SimMarks::default()),
    };
    let safe = a.safe.as_ref().and_then(|s| s.outcome.pick.as_ref());
    let grid = GridModel::build(
        tree,
        inputs.fmt,
        a.world_size,
        Some(&a.mindformers),
        safe,
        &marks,
    );
    Derived {
        real: real_a,
        sim,
        grid,
    }
}
