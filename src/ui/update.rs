//! State transitions: actions from keys, prompt input, and model updates from the watcher.

use super::action::Action;
use super::state::{Popup, PromptKind, State};
use crate::model::Verdict;
use crate::resolve::config::ResumeTraining;
use crate::sim::Edit;

/// Rows a page moves.
pub const PAGE: usize = 20;

pub fn update(s: &mut State, a: Action) {
    match a {
        Action::Quit => s.quit = true,
        Action::CloseMost => s.popup = None,
        Action::Help => s.popup = Some(Popup::Help(Default::default())),
        Action::Legend => s.popup = Some(Popup::Legend),
        Action::Freeze => freeze(s),
        Action::Up
        | Action::Down
        | Action::Left
        | Action::Right
        | Action::PageUp
        | Action::PageDown => step_cursor(s, a),
        Action::FirstRank => s.row = 0,
        Action::LastRank => s.row = s.rows().saturating_sub(1),
        Action::FirstStep => s.col = 0,
        Action::LastStep => s.col = s.visible_columns().len().saturating_sub(1),
        Action::NextProblem => seek_problem(s, true),
        Action::PrevProblem => seek_problem(s, false),
        Action::ZoomOut => zoom(s, true),
        Action::ZoomIn => zoom(s, false),
        Action::ProblemsOnly => problems_only(s),
        Action::Jump => s.popup = Some(Popup::Prompt(PromptKind::Jump, String::new())),
        Action::LogUp => s.log_back = (s.log_back + 1).min(s.log.len().saturating_sub(1)),
        Action::LogDown => s.log_back = s.log_back.saturating_sub(1),
        Action::SetBatchSize => s.popup = Some(Popup::Prompt(PromptKind::BatchSize, String::new())),
        Action::SetDataSkipSteps => {
            s.popup = Some(Popup::Prompt(PromptKind::DataSkipSteps, String::new()))
        }
        Action::Undo => {
            let done = s.session.edit(|o| o.undo());
            s.refresh();
            match done {
                Some(d) => s.log(format!("undo: {d}")),
                None => s.log("nothing to undo"),
            }
        }
        Action::Redo => {
            let done = s.session.edit(|o| o.redo());
            s.refresh();
            match done {
                Some(d) => s.log(format!("redo: {d}")),
                None => s.log("nothing to redo"),
            }
        }
        Action::Reset => {
            if s.session.edit(|o| o.reset()) {
                s.log("simulation reset (u brings it back)");
            } else {
                s.log("nothing to reset");
            }
            s.refresh();
        }
        Action::Yank => yank(s),
        Action::NextBeat => next_beat(s),
        _ => simulate(s, a),
    }
}

/// Freeze the view (the live model keeps following the disk), or thaw it: the view then shows
/// the live model with every change made meanwhile, and the watcher is asked for a full resync
/// so that nothing it might have missed stays hidden.
fn freeze(s: &mut State) {
    let frozen = !s.frozen();
    let before = Cells::of(s.grid());
    s.session.set_frozen(frozen);
    s.refresh();
    if frozen {
        s.log("live updates frozen");
        return;
    }
    let missed = std::mem::take(&mut s.pending);
    s.resync_wanted = true;
    s.log(format!("live updates resumed ({missed} change(s) applied)"));
    flash_changes(s, &before);
    s.last_change = std::time::Instant::now();
}

fn step_cursor(s: &mut State, a: Action) {
    let (rows, cols) = (s.rows(), s.visible_columns().len());
    match a {
        Action::Up => s.row = s.row.saturating_sub(1),
        Action::Down => s.row = (s.row + 1).min(rows.saturating_sub(1)),
        Action::Left => s.col = s.col.saturating_sub(1),
        Action::Right => s.col = (s.col + 1).min(cols.saturating_sub(1)),
        Action::PageUp => s.row = s.row.saturating_sub(PAGE),
        _ => s.row = (s.row + PAGE).min(rows.saturating_sub(1)),
    }
}

/// Zoom out (more ranks per row: the cursor's row goes into its group) or in — onto the
/// worst rank of the group in the cursor's column, not its first.
fn zoom(s: &mut State, out: bool) {
    use super::state::ZOOMS;
    let at = ZOOMS.iter().position(|z| *z == s.zoom).unwrap_or(0);
    let next = match out {
        true => ZOOMS[(at + 1).min(ZOOMS.len() - 1)],
        false => ZOOMS[at.saturating_sub(1)],
    };
    if next == s.zoom {
        return;
    }
    let first = s.row * s.zoom;
    let worst = match (out, s.visible_columns().get(s.col)) {
        (false, Some(&c)) => {
            let g = s.grid();
            (first..(first + s.zoom).min(s.shown_rank_count()))
                .max_by_key(|i| {
                    let st = s.shown_rank(*i).map(|r| s.shown(g.cell(r, c)));
                    (st.map(|st| st.severity()), std::cmp::Reverse(*i))
                })
                .unwrap_or(first)
        }
        _ => first,
    };
    s.zoom = next;
    s.row = worst / s.zoom;
}

/// `p`: only the steps and the ranks with a problem (keeping the steps MindFormers and the
/// safe pick resume from); on a clean tree, say so instead of showing an empty grid.
fn problems_only(s: &mut State) {
    if !s.problems_only && s.grid().problem_columns().is_empty() {
        return s.log("no problems: every rank has every step, and nothing checked is damaged");
    }
    s.problems_only = !s.problems_only;
    s.refresh();
    s.col = s.visible_columns().len().saturating_sub(1);
    s.row = s.worst_row(s.col).unwrap_or(0);
    s.log(match s.problems_only {
        true => "showing only steps and ranks with a problem (p shows all)",
        false => "showing every step and rank",
    });
}

fn seek_problem(s: &mut State, forward: bool) {
    let cols = s.visible_columns();
    let rows = s.rows();
    let total = rows * cols.len();
    if total == 0 {
        return;
    }
    let here = s.col * rows + s.row;
    for k in 1..=total {
        let i = if forward {
            (here + k) % total
        } else {
            (here + total - k % total) % total
        };
        let (c, r) = (i / rows, i % rows);
        if s.row_worst(r, cols[c]).is_problem() {
            s.col = c;
            s.row = r;
            return;
        }
    }
    s.log("no problem cells");
}

/// Apply a prompt's answer (Enter).
pub fn submit_prompt(s: &mut State, kind: PromptKind, text: &str) {
    let t = text.trim();
    match kind {
        PromptKind::BatchSize => match count(t, 1) {
            Ok(v) => push(s, Edit::SetGlobalBatchSize { value: v }),
            Err(why) => s.log(format!("global batch size: {why}")),
        },
        PromptKind::DataSkipSteps => match t {
            "" => push(s, Edit::SetDataSkipSteps { value: None }),
            _ => match count(t, 0) {
                Ok(v) => push(s, Edit::SetDataSkipSteps { value: Some(v) }),
                Err(why) => s.log(format!("data_skip_steps: {why} (empty: not set)")),
            },
        },
        PromptKind::Jump => jump(s, t),
    }
}

/// A whole number of at least `min` typed into a prompt, or what is wrong with it (shown
/// escaped: a prompt takes any key).
fn count(t: &str, min: i64) -> Result<i64, String> {
    let shown = crate::report::terminal::safe(t);
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{shown}' is not a whole number"));
    }
    match t.parse::<i64>() {
        Ok(v) if v >= min => Ok(v),
        Ok(_) => Err(format!("'{shown}' is less than {min}")),
        Err(_) => Err(format!("'{shown}' is too large (at most {})", i64::MAX)),
    }
}

fn jump(s: &mut State, t: &str) {
    let g = s.grid();
    if let Ok(rank) = t.trim_start_matches("rank").trim().parse::<u64>() {
        let shown =
            (0..s.shown_rank_count()).find(|i| s.shown_rank(*i).map(|r| g.ranks[r]) == Some(rank));
        if let Some(i) = shown {
            s.row = i / s.zoom;
            return;
        }
    }
    let cols = s.visible_columns();
    if let Some(c) = cols.iter().position(|c| g.columns[*c].label() == t) {
        s.col = c;
        return;
    }
    s.log(format!("jump: no rank or step '{t}'"));
}

/// Simulate `e`, unless it changes nothing (then the log says why and no edit is counted).
fn push(s: &mut State, e: Edit) {
    let what = e.describe();
    if let Edit::SetGlobalBatchSize { value } = e {
        if current_gbs(s) == Some(value) {
            return s.log(format!(
                "the global batch size is already {value}: nothing to simulate"
            ));
        }
    }
    let ctx = s.session.ctx();
    let (config, run) = (ctx.config.clone(), ctx.run.clone());
    if s.session.edit(|o| o.push_over(e, Some((&config, &run)))) {
        s.log(format!("simulate: {what}"));
    } else {
        s.log(format!("{what}: already so, nothing to simulate"));
    }
    s.refresh();
}

/// The global batch size the simulation currently assumes (set, or the stored one).
fn current_gbs(s: &State) -> Option<i64> {
    let a = s.current();
    let stored = a
        .context
        .as_ref()?
        .append
        .as_ref()?
        .global_batch_size?
        .as_i64()?;
    let scale = a.data_skip.as_ref()?.scale?;
    Some((stored as f64 / scale).round() as i64)
}

fn simulate(s: &mut State, a: Action) {
    let cursor = s.cursor_file();
    let col = s.visible_columns().get(s.col).copied();
    let edit = match (a, cursor) {
        (Action::DeleteShard, Some((dir, file))) => Some(Edit::DeleteShard { dir, file }),
        (Action::DeleteRank, Some((dir, _))) => Some(Edit::DeleteRank { dir }),
        (Action::DeleteMeta, Some((dir, _))) => Some(Edit::DeleteMeta { dir }),
        (Action::MarkTruncated, Some((dir, file))) => Some(Edit::MarkDamaged {
            dir,
            file,
            verdict: Verdict::Truncated,
        }),
        (Action::MarkCorrupt, Some((dir, file))) => Some(Edit::MarkDamaged {
            dir,
            file,
            verdict: Verdict::Corrupt,
        }),
        (Action::DeleteStep, _) => col.map(|c| {
            let c = &s.grid().columns[c];
            if let Some(n) = &c.new {
                // a new-format column is one folder
                return Edit::DeleteRank {
                    dir: n.folder.clone(),
                };
            }
            Edit::DeleteStep {
                stem: c.stem.clone(),
                restart: c.restart,
                epoch: c.epoch,
                step: c.step,
            }
        }),
        (Action::DoubleBatchSize, _) => current_gbs(s)
            .and_then(|g| g.checked_mul(2))
            .map(|value| Edit::SetGlobalBatchSize { value }),
        (Action::HalveBatchSize, _) => current_gbs(s).map(|g| Edit::SetGlobalBatchSize {
            value: (g / 2).max(1),
        }),
        (Action::ToggleIgnoreDataSkip, _) => Some(Edit::SetIgnoreDataSkip {
            value: !s.current_run().ignore_data_skip,
        }),
        (Action::CycleResumeTraining, cur) => Some(Edit::SetResumeTraining {
            value: next_resume(s, cur.map(|c| c.1)),
        }),
        (Action::ToggleHealth, _) => Some(Edit::SetHealth {
            value: !matches!(
                s.current_config().health,
                crate::resolve::config::HealthSetting::Bool(true)
            ),
        }),
        (Action::ToggleNoLoadOptim, _) => {
            s.current().newfmt.as_ref().map(|n| Edit::SetNoLoadOptim {
                value: !n.no_load_optim,
            })
        }
        (Action::DeleteTracker, _) => Some(Edit::DeleteTracker),
        // only a folder the tracker can name (`iteration_00000030`, not `iteration_30` or a
        // name whose number does not parse)
        (Action::SetTrackerHere, _) => col
            .and_then(|c| {
                let column = &s.grid().columns[c];
                let named = crate::layout::mindformers_new::tracker::iteration_dir(
                    &crate::py::int::PyInt::from_i64(i64::try_from(column.step).ok()?),
                );
                let folder = &column.new.as_ref()?.folder;
                (named == *folder).then_some(column.step)
            })
            .map(|iteration| Edit::SetTracker { iteration }),
        _ => None,
    };
    match edit {
        Some(e) => push(s, e),
        None => s.log(
            "nothing to simulate here (no shard under the cursor, or the batch size is unknown)",
        ),
    }
}

/// `true` → the file under the cursor (as rank 0's name) → `false` → `true`.
fn next_resume(s: &State, file: Option<String>) -> ResumeTraining {
    match (&s.current_config().resume_training, file) {
        (ResumeTraining::Bool(true), Some(f)) => {
            let rank0 = crate::layout::mindformers::names::replace_rank_id(
                &f,
                &crate::py::int::PyInt::from_i64(0),
            )
            .unwrap_or(f);
            ResumeTraining::Name(rank0)
        }
        (ResumeTraining::Name(_), _) => ResumeTraining::Bool(false),
        _ => ResumeTraining::Bool(true),
    }
}

/// Copy the safe pick's YAML to the clipboard with OSC 52 (the terminal does the copying):
/// the simulated pick when edits are active — and then the log says so — with
/// `load_checkpoint` always absolute (a config pasted elsewhere must not depend on the folder
/// ckptscope was started from).
fn yank(s: &mut State) {
    let simulated = !s.session.overlay().is_empty();
    let Some(p) = s.current().safe.outcome.pick.as_ref() else {
        return s.log(match simulated {
            true => "no safe pick to copy (simulated)",
            false => "no safe pick to copy",
        });
    };
    let given = std::path::Path::new(&p.config.load_checkpoint);
    let ctx = s.session.ctx();
    let load = match given.is_absolute() {
        true => p.config.load_checkpoint.clone(),
        // the pick names the folder as it was given: the job's folder, resolved
        false => ctx.canonical.display().to_string(),
    };
    let text = format!(
        "load_checkpoint: {load}\nresume_training: \"{}\"\n",
        p.config.resume_training
    );
    s.clipboard = Some(text);
    s.log(match simulated {
        true => "copied (simulated): the safe config of the simulation, to the clipboard (OSC 52)",
        false => "copied: the safe config, to the clipboard (OSC 52)",
    });
}

/// Presenter mode: tell the demo's trainer to go on.
fn next_beat(s: &mut State) {
    match &s.presenter {
        Some(next) if s.waiting => {
            let _ = next.send(());
            s.waiting = false;
        }
        Some(_) => s.log("the demo is still playing this beat"),
        None => s.log("Space steps through a presented demo (ckptscope demo)"),
    }
}

/// Take a cue from the demo: narration into the banner and the log, the cursor onto the cell
/// an event changed, a variation as simulated settings.
pub fn on_cue(s: &mut State, c: crate::demo::Cue) {
    use crate::demo::Cue;
    match c {
        Cue::Say(line) => {
            let text = line.trim_start();
            match text.strip_prefix('▶') {
                // a beat's title: the banner (without a second ▶) and the log
                Some(title) => {
                    let title = title.trim().to_owned();
                    s.log(format!("demo: {title}"));
                    s.caption = Some(title);
                }
                None => s.log(format!("demo: {text}")),
            }
        }
        Cue::Focus { rank, step } => {
            s.focus = Some((rank, step));
            apply_focus(s);
        }
        Cue::Waiting(w) => s.waiting = w,
        Cue::Simulate { label, edits } => {
            s.session.edit(|o| {
                o.reset();
            });
            let ctx = s.session.ctx();
            let (config, run) = (ctx.config.clone(), ctx.run.clone());
            s.session.edit(|o| {
                for e in edits {
                    o.push_over(e, Some((&config, &run)));
                }
            });
            s.log(format!("simulate: {label}"));
            s.refresh();
        }
    }
}

/// Put the cursor on the pending focus cell once the grid has it (zoomed in when every rank
/// row still fits, else onto its group).
pub fn apply_focus(s: &mut State) {
    let Some((rank, step)) = s.focus.clone() else {
        return;
    };
    let g = s.grid();
    let Some(ri) = g.ranks.iter().position(|r| *r == rank) else {
        return;
    };
    let col = match &step {
        Some(label) => {
            let Some(c) = g.columns.iter().position(|c| &c.label() == label) else {
                return;
            };
            Some(c)
        }
        None => None,
    };
    let shown = (0..s.shown_rank_count()).find(|i| s.shown_rank(*i) == Some(ri));
    let Some(i) = shown else { return };
    s.row = i / s.zoom.max(1);
    if let Some(c) = col {
        if let Some(v) = s.visible_columns().iter().position(|x| *x == c) {
            s.col = v;
        }
    }
    s.focus = None;
}

/// MindFormers' resume step as the grid marks it (`M`).
fn resume_point(s: &State) -> Option<String> {
    let g = s.grid();
    g.mf_column.map(|c| g.columns[c].label())
}

/// Apply the watcher's deltas to the session. While frozen the live model still takes them
/// (so nothing is lost) and the view only counts them.
pub fn apply_deltas(s: &mut State, deltas: Vec<crate::model::Delta>) {
    let n = deltas.len();
    let before = Cells::of(s.grid());
    let was = resume_point(s);
    for d in deltas {
        s.session.apply(d);
    }
    if s.frozen() {
        s.pending += n;
        return;
    }
    s.last_change = std::time::Instant::now();
    s.refresh();
    flash_changes(s, &before);
    // MindFormers' resume point moved: said in words, not only by the M marker
    let now = resume_point(s);
    if let (Some(a), Some(b)) = (&was, &now) {
        if a != b {
            let text = format!("resume point {a} → {b}");
            s.log(text.clone());
            s.moved = Some((text, std::time::Instant::now()));
        }
    }
    apply_focus(s);
}

/// The grid's cell states as they were: the states themselves (a byte each) and where each
/// rank and column was, so a grid that gained rows or columns is compared by name — without
/// a map entry per cell (a 16,384-rank grid has 327,680 of them, compared a few times a second).
struct Cells {
    rows: std::collections::HashMap<u64, usize>,
    cols: std::collections::HashMap<String, usize>,
    states: Vec<crate::grid::cell::CellState>,
    width: usize,
}

impl Cells {
    fn of(g: &crate::grid::model::GridModel) -> Cells {
        let width = g.columns.len();
        let mut states = Vec::with_capacity(g.ranks.len() * width);
        for r in 0..g.ranks.len() {
            states.extend((0..width).map(|c| g.cell(r, c)));
        }
        Cells {
            rows: g.ranks.iter().enumerate().map(|(i, r)| (*r, i)).collect(),
            cols: g
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.label(), i))
                .collect(),
            states,
            width,
        }
    }

    fn get(&self, rank: u64, col: &str) -> Option<crate::grid::cell::CellState> {
        let (r, c) = (self.rows.get(&rank)?, self.cols.get(col)?);
        self.states.get(r * self.width + c).copied()
    }
}

/// More cells changing at once than this (the first verification pass of a big tree, a
/// rescan) is not highlighted: a flash marks what just happened to a few cells.
const FLASH_MAX: usize = 4_096;

/// Remember the cells whose state changed, so the grid can highlight them for a moment.
fn flash_changes(s: &mut State, before: &Cells) {
    let now = std::time::Instant::now();
    s.flashes
        .retain(|_, at| now.duration_since(*at) < super::state::FLASH);
    if before.states.is_empty() {
        return;
    }
    let g = s.grid();
    let mut changed = Vec::new();
    for (c, col) in g.columns.iter().enumerate() {
        let label = col.label();
        for (r, rank) in g.ranks.iter().enumerate() {
            if before.get(*rank, &label) != Some(g.cell(r, c)) {
                if changed.len() == FLASH_MAX {
                    return;
                }
                changed.push((*rank, label.clone()));
            }
        }
    }
    for key in changed {
        s.flashes.insert(key, now);
    }
}
