//! Building the grid: columns are steps (one per restart prefix, epoch and step, oldest first),
//! rows are ranks `0 … W−1`, and each cell is that rank's shard of that step. The columns
//! MindFormers and the safe resolver pick are marked, and so is each rank's `meta.json` target.

use super::cell::CellState;
use crate::layout::mindformers::classify::{classify, EntryKind};
use crate::layout::mindformers::names::{parse_ckpt_name, CkptName, Fmt};
use crate::layout::rank_dir_number;
use crate::model::{FileRead, Tree};
use crate::py::json::{self, PyValue};
use crate::resolve::mindformers::{MfResolution, RankResult};
use crate::resolve::safe::SafePick;
use std::collections::{BTreeSet, HashMap, HashSet};

/// One step column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub stem: String,
    pub restart: u64,
    pub epoch: u64,
    pub step: u64,
    /// The global step stored in rank 0's file (`step_num`), once verified.
    pub global_step: Option<i64>,
    /// A new-format column: one `iteration_*` folder (`step` is its number).
    pub new: Option<NewColumn>,
}

/// What a new-format column names: its folder and how its shards are named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewColumn {
    pub folder: String,
    /// The shard names' prefix (`llama` in `llama-model-0000003-0000008.safetensors`).
    pub prefix: Option<String>,
    /// The shard names' file count (`-0000008`).
    pub total: u64,
}

impl NewColumn {
    /// Rank `rank`'s shard of `kind` (`model` or `opt`) in this folder.
    pub fn shard(&self, rank: u64, kind: &str) -> String {
        let p = self
            .prefix
            .as_deref()
            .map_or(String::new(), |p| format!("{p}-"));
        format!("{p}{kind}-{rank:07}-{:07}.safetensors", self.total)
    }
}

impl Column {
    /// The folder and file a cell of rank `rank` names: `rank_R/` and the rank's shard, or —
    /// new format — the `iteration_*` folder and the rank's model shard.
    pub fn cell_file(&self, rank: u64, fmt: Fmt) -> (String, String) {
        match &self.new {
            Some(n) => (n.folder.clone(), n.shard(rank, "model")),
            None => (format!("rank_{rank}"), self.file_for(rank, fmt)),
        }
    }

    /// `20_2`, or `_1-25_2` for a restarted run; the iteration number for a new-format folder.
    pub fn label(&self) -> String {
        if self.new.is_some() {
            return self.step.to_string();
        }
        if self.restart == 0 {
            format!("{}_{}", self.epoch, self.step)
        } else {
            format!("_{}-{}_{}", self.restart, self.epoch, self.step)
        }
    }

    pub fn file_for(&self, rank: u64, fmt: Fmt) -> String {
        CkptName {
            stem: self.stem.clone(),
            rank,
            restart: self.restart,
            epoch: self.epoch,
            step: self.step,
            fmt,
        }
        .file_name()
    }
}

/// The whole grid.
#[derive(Clone, Debug, PartialEq)]
pub struct GridModel {
    pub fmt: Fmt,
    pub columns: Vec<Column>,
    /// Rank numbers, one row each.
    pub ranks: Vec<u64>,
    cells: Vec<CellState>,
    /// The column MindFormers resumes from (rank 0's pick).
    pub mf_column: Option<usize>,
    /// New format: the column the tracker names.
    pub tracker_column: Option<usize>,
    pub safe_column: Option<usize>,
    /// Per rank: the column its `meta.json` points at.
    pub meta_target: Vec<Option<usize>>,
    /// Per column: how many listed names make it (a folder change that empties a column, or
    /// names a new one, changes the columns: the grid is rebuilt, not patched).
    contributors: Vec<u32>,
    /// Listed names shown in a column by epoch and step alone (an exception save, a
    /// leading-zero name …): with any, a column added or removed may move them, so the grid is
    /// rebuilt rather than re-laid.
    others: u32,
    /// Columns added since the grid was built whose global step is still to be read.
    unread_steps: Vec<usize>,
    /// The columns changed: every rank's `meta.json` target is looked up again.
    targets_stale: bool,
}

/// What a folder change does to a grid (see [`GridModel::folder_changed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderChange {
    /// Same columns and rows: this rank's row is refilled (`None`: the folder has no row).
    Row(Option<u64>),
    /// The columns or rows change: build the grid again.
    Rebuild,
}

type Key = (u64, u64, u64, String);

/// Rows of a grid of `tree`: ranks `0 … W−1`, more when a folder names a higher rank.
fn rows_for(tree: &Tree, world: u64) -> u64 {
    let max_dir = tree
        .dirs
        .keys()
        .filter_map(|d| rank_dir_number(d))
        .max()
        .map_or(0, |m| m + 1);
    world.max(max_dir)
}
type ColumnIndex<'c> = HashMap<(&'c str, u64, u64, u64), usize>;

fn column_index(columns: &[Column]) -> ColumnIndex<'_> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.stem.as_str(), c.restart, c.epoch, c.step), i))
        .collect()
}

/// The column key a listed name makes, if any (a shard of format `fmt`, or its `.tmp`).
fn key_of(name: &str, fmt: Fmt) -> Option<Key> {
    classify(name)
        .shard(fmt)
        .map(|n| (n.restart, n.epoch, n.step, n.stem))
}

/// What the simulation changed, for cell states.
#[derive(Clone, Debug, Default)]
pub struct SimMarks<'a> {
    pub deleted: Option<&'a HashSet<(String, String)>>,
    pub marked: Option<&'a HashSet<(String, String)>>,
}

impl GridModel {
    /// Set the cell of shard `file` in folder `dir` (a verifier result that changes nothing
    /// else); `false` when the grid has no such cell (the caller rebuilds it).
    pub fn set(&mut self, dir: &str, file: &str, state: CellState) -> bool {
        let (Some(rank), Some(n)) = (rank_dir_number(dir), parse_ckpt_name(file)) else {
            return false;
        };
        let Ok(row) = self.ranks.binary_search(&rank) else {
            return false;
        };
        let Some(col) = self.columns.iter().position(|c| {
            (c.stem.as_str(), c.restart, c.epoch, c.step)
                == (n.stem.as_str(), n.restart, n.epoch, n.step)
        }) else {
            return false;
        };
        if n.rank != rank || n.fmt != self.fmt {
            return false;
        }
        let w = self.columns.len();
        match self.cells.get_mut(row * w + col) {
            Some(CellState::SimCorrupt | CellState::SimDeleted) => false,
            Some(c) => {
                *c = state;
                true
            }
            None => false,
        }
    }

    /// A grid of these columns, rows and cells, nothing marked: what [`GridModel::build`]
    /// starts from, and a layout of its own (the new format's iteration columns) uses as it is
    /// — no per-rank `meta.json` targets, rebuilt on every change rather than patched.
    pub fn from_cells(columns: Vec<Column>, ranks: Vec<u64>, cells: Vec<CellState>) -> Self {
        let n = ranks.len();
        GridModel {
            fmt: Fmt::Safetensors,
            contributors: vec![0; columns.len()],
            columns,
            ranks,
            cells,
            mf_column: None,
            tracker_column: None,
            safe_column: None,
            meta_target: vec![None; n],
            others: 0,
            unread_steps: Vec::new(),
            targets_stale: false,
        }
    }

    /// Column `col`'s markers — `T` the tracker's folder, `M` MindFormers', `S` the safe
    /// pick — spaced when `width` allows, else run together (`TMS`).
    pub fn marks(&self, col: usize, width: usize) -> String {
        let on = |c: Option<usize>, m: &'static str| (c == Some(col)).then_some(m);
        let ms: Vec<&str> = [
            on(self.tracker_column, "T"),
            on(self.mf_column, "M"),
            on(self.safe_column, "S"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match ms.len() * 2 <= width {
            true => ms.join(" "),
            false => ms.concat(),
        }
    }

    pub fn cell(&self, row: usize, col: usize) -> CellState {
        self.cells[row * self.columns.len() + col]
    }

    pub fn build(
        tree: &Tree,
        fmt: Fmt,
        world: u64,
        mf: Option<&MfResolution>,
        safe: Option<&SafePick>,
        sim: &SimMarks,
    ) -> Self {
        let (columns, contributors) = columns(tree, fmt, sim);
        let ranks: Vec<u64> = (0..rows_for(tree, world)).collect();
        let (cells, others) = fill_cells(tree, &columns, ranks.len(), fmt, sim);
        let mut g = GridModel::from_cells(columns, ranks, cells);
        (g.fmt, g.contributors, g.others) = (fmt, contributors, others);
        g.meta_target = g.ranks.iter().map(|r| g.meta_column(tree, *r)).collect();
        g.mark_picks(mf, safe);
        g
    }

    /// The column of shard `name`.
    fn find(&self, name: &str) -> Option<usize> {
        parse_ckpt_name(name).and_then(|n| {
            self.columns.iter().position(|c| {
                c.stem == n.stem && c.restart == n.restart && c.epoch == n.epoch && c.step == n.step
            })
        })
    }

    fn meta_column(&self, tree: &Tree, rank: u64) -> Option<usize> {
        meta_file(tree, rank).and_then(|f| self.find(&f))
    }

    fn mark_picks(&mut self, mf: Option<&MfResolution>, safe: Option<&SafePick>) {
        self.mf_column = mf.and_then(|m| match m.per_rank.first() {
            Some(RankResult::File(f)) => self.find(f),
            _ => None,
        });
        self.safe_column = safe.and_then(|s| self.find(&s.config.resume_training));
    }

    /// Folder `dir` of the (real, unsimulated) tree changed from `old` to `new`: whether the
    /// grid keeps its columns and rows, so that only that rank's row needs filling again
    /// ([`GridModel::refresh_rows`]). On 8,192 ranks × 200 steps, that is 200 names to read
    /// instead of 1.6 M. A column added or gone re-lays the cells (see `relay`) unless a name
    /// shown by epoch and step alone could move with it.
    pub fn folder_changed(
        &mut self,
        dir: &str,
        old: Option<&crate::model::DirNode>,
        new: Option<&crate::model::DirNode>,
    ) -> FolderChange {
        let rank = rank_dir_number(dir);
        if rank.is_some_and(|r| r as usize >= self.ranks.len()) {
            return FolderChange::Rebuild;
        }
        if rank == Some(0) {
            // rank 0's files give every column's global step: all are read again
            self.unread_steps = (0..self.columns.len()).collect();
        }
        let mut delta: std::collections::BTreeMap<Key, i64> = Default::default();
        let mut others = i64::from(self.others);
        for (node, sign) in [(old, -1), (new, 1)] {
            for e in node.map(|n| n.listing.entries()).unwrap_or_default() {
                if let Some(k) = key_of(&e.name, self.fmt) {
                    *delta.entry(k).or_default() += sign;
                }
                if rank.is_some_and(|r| is_other(&e.name, r, self.fmt)) {
                    others += sign;
                }
            }
        }
        let index = column_index(&self.columns);
        let mut counts: std::collections::BTreeMap<Key, u32> = self
            .columns
            .iter()
            .zip(&self.contributors)
            .map(|(c, n)| ((c.restart, c.epoch, c.step, c.stem.clone()), *n))
            .collect();
        let mut relaid = false;
        for (k, d) in delta {
            let known = index.contains_key(&(k.3.as_str(), k.0, k.1, k.2));
            let n = i64::from(counts.get(&k).copied().unwrap_or(0)) + d;
            relaid |= (n > 0) != known;
            if n > 0 {
                counts.insert(k, n as u32);
            } else {
                counts.remove(&k);
            }
        }
        let before = self.others;
        self.others = u32::try_from(others).unwrap_or(u32::MAX);
        if relaid && (before > 0 || self.others > 0 || self.columns.is_empty()) {
            return FolderChange::Rebuild;
        }
        if relaid {
            self.relay(counts);
        } else {
            self.contributors = counts.into_values().collect();
        }
        FolderChange::Row(rank)
    }

    /// Lay the grid out on the columns `counts` names (some new, some gone): every kept
    /// column keeps its cells, a new one starts empty (its rows are filled by whoever has its
    /// files: the changed folder) and has its global step read at the next refresh.
    fn relay(&mut self, counts: std::collections::BTreeMap<Key, u32>) {
        let old: HashMap<Key, usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| ((c.restart, c.epoch, c.step, c.stem.clone()), i))
            .collect();
        let mut columns = Vec::with_capacity(counts.len());
        let mut from: Vec<Option<usize>> = Vec::with_capacity(counts.len());
        let reread: std::collections::HashSet<usize> = self.unread_steps.drain(..).collect();
        for (i, (k, _)) in counts.iter().enumerate() {
            let was = old.get(k).copied();
            from.push(was);
            match was {
                Some(o) => {
                    if reread.contains(&o) {
                        self.unread_steps.push(i);
                    }
                    columns.push(self.columns[o].clone())
                }
                None => {
                    self.unread_steps.push(i);
                    columns.push(Column {
                        stem: k.3.clone(),
                        restart: k.0,
                        epoch: k.1,
                        step: k.2,
                        global_step: None,
                        new: None,
                    });
                }
            }
        }
        let (w_old, w_new) = (self.columns.len(), columns.len());
        let mut cells = vec![CellState::Missing; self.ranks.len() * w_new];
        for r in 0..self.ranks.len() {
            for (c, f) in from.iter().enumerate() {
                if let Some(o) = f {
                    cells[r * w_new + c] = self.cells[r * w_old + o];
                }
            }
        }
        let to: HashMap<usize, usize> = from
            .iter()
            .enumerate()
            .filter_map(|(c, f)| f.map(|o| (o, c)))
            .collect();
        for m in self.meta_target.iter_mut() {
            *m = m.and_then(|o| to.get(&o).copied());
        }
        // a target that had no column may have one now (or lose it)
        self.targets_stale = true;
        self.columns = columns;
        self.cells = cells;
        self.contributors = counts.into_values().collect();
    }

    /// Fill rows `ranks` again from `tree` (after [`GridModel::folder_changed`]) and mark the
    /// new picks; `false` when the rows no longer match `world` (the caller rebuilds).
    pub fn refresh_rows(
        &mut self,
        tree: &Tree,
        ranks: &BTreeSet<u64>,
        world: u64,
        mf: Option<&MfResolution>,
        safe: Option<&SafePick>,
    ) -> bool {
        // many rows: a full build shares them out between the cores
        let many = ranks.len() > 64 && ranks.len() > self.ranks.len() / 8;
        if rows_for(tree, world) as usize != self.ranks.len() || many {
            return false;
        }
        let n = self.columns.len();
        let index = column_index(&self.columns);
        let sim = SimMarks::default();
        let mut folders: HashMap<u64, Vec<(&String, &crate::model::DirNode)>> = HashMap::new();
        for (dir, node) in &tree.dirs {
            if let Some(r) = rank_dir_number(dir).filter(|r| ranks.contains(r)) {
                folders.entry(r).or_default().push((dir, node));
            }
        }
        for &r in ranks {
            let Some(row) = self.cells.get_mut(r as usize * n..(r as usize + 1) * n) else {
                return false;
            };
            row.fill(CellState::Missing);
            for (dir, node) in folders.remove(&r).unwrap_or_default() {
                fill_row(
                    tree,
                    &self.columns,
                    &index,
                    self.fmt,
                    &sim,
                    r,
                    row,
                    dir,
                    node,
                );
            }
        }
        let all: Vec<u64>;
        let targets = match std::mem::take(&mut self.targets_stale) {
            true => {
                all = self.ranks.clone();
                &all[..]
            }
            false => &ranks.iter().copied().collect::<Vec<_>>()[..],
        };
        for &r in targets {
            let t = self.meta_column(tree, r);
            if let Some(m) = self.meta_target.get_mut(r as usize) {
                *m = t;
            }
        }
        for c in std::mem::take(&mut self.unread_steps) {
            if let Some(col) = self.columns.get_mut(c) {
                col.global_step = global_step(tree, col, self.fmt);
            }
        }
        self.mark_picks(mf, safe);
        true
    }

    /// Columns where some rank has a problem, for the "problems only" filter.
    pub fn problem_columns(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|c| (0..self.ranks.len()).any(|r| self.cell(r, *c).is_problem()))
            .collect()
    }

    /// The worst state among rows `rows` of column `col` (zoomed-out cells).
    pub fn worst(&self, rows: std::ops::Range<usize>, col: usize) -> CellState {
        rows.map(|r| self.cell(r, col))
            .max_by_key(|s| s.severity())
            .unwrap_or(CellState::Missing)
    }
}

fn columns(tree: &Tree, fmt: Fmt, sim: &SimMarks) -> (Vec<Column>, Vec<u32>) {
    type Keys = std::collections::BTreeMap<Key, u32>;
    let add = |set: &mut Keys, name: &str| {
        if let Some(k) = key_of(name, fmt) {
            *set.entry(k).or_default() += 1;
        }
    };
    // every name of every folder is parsed (1.6 M on 8,192 × 200): the folders are shared out
    // between the cores, each collecting its own set
    let nodes: Vec<&crate::model::DirNode> = tree.dirs.values().map(|d| &**d).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = nodes.len().div_ceil(cores).max(256);
    let mut set: Keys = std::thread::scope(|s| {
        let parts: Vec<_> = nodes
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    let mut set = Keys::new();
                    for e in part.iter().flat_map(|d| d.listing.entries()) {
                        add(&mut set, &e.name);
                    }
                    set
                })
            })
            .collect();
        let mut all = Keys::new();
        for p in parts {
            for (k, n) in p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                *all.entry(k).or_default() += n;
            }
        }
        all
    });
    for (_, f) in sim.deleted.into_iter().flatten() {
        add(&mut set, f);
    }
    let counts = set.values().copied().collect();
    let columns = set
        .into_keys()
        .map(|(restart, epoch, step, stem)| {
            let mut c = Column {
                stem,
                restart,
                epoch,
                step,
                global_step: None,
                new: None,
            };
            c.global_step = global_step(tree, &c, fmt);
            c
        })
        .collect();
    (columns, counts)
}

/// Every cell, in one pass over each folder's entries (not one lookup per cell: a grid of
/// 8,192 ranks × 200 steps has 1.6 M cells).
fn fill_cells(
    tree: &Tree,
    columns: &[Column],
    ranks: usize,
    fmt: Fmt,
    sim: &SimMarks,
) -> (Vec<CellState>, u32) {
    let index = column_index(columns);
    let n = columns.len();
    let mut cells = vec![CellState::Missing; ranks * n];
    // each folder fills its own row: rows are disjoint, so the folders are shared out between
    // threads (a grid of 8,192 × 200 is 1.6 M names to classify)
    // (`rank_1` and `rank_01` are both rank 1: a row may have several folders)
    let mut folders: Vec<Vec<(&String, &crate::model::DirNode)>> = vec![Vec::new(); ranks];
    for (dir, node) in &tree.dirs {
        if let Some(r) = rank_dir_number(dir).filter(|r| (*r as usize) < ranks) {
            folders[r as usize].push((dir, node));
        }
    }
    let others = std::sync::atomic::AtomicU32::new(0);
    let fill = |rank: u64, row: &mut [CellState], dir: &String, node: &crate::model::DirNode| {
        let n = fill_row(tree, columns, &index, fmt, sim, rank, row, dir, node);
        others.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    };
    if n > 0 {
        let workers = std::thread::available_parallelism()
            .map_or(1, |w| w.get())
            .min(8);
        let per = ranks.div_ceil(workers).max(1);
        std::thread::scope(|sc| {
            for (k, (rows, dirs)) in cells
                .chunks_mut(per * n)
                .zip(folders.chunks(per))
                .enumerate()
            {
                let fill = &fill;
                sc.spawn(move || {
                    for (i, (row, fs)) in rows.chunks_mut(n).zip(dirs).enumerate() {
                        for (dir, node) in fs {
                            fill((k * per + i) as u64, row, dir, node);
                        }
                    }
                });
            }
        });
    }
    for (dir, file) in sim.deleted.into_iter().flatten() {
        if let (Some(rank), Some(c)) = (
            rank_dir_number(dir),
            parse_ckpt_name(file).and_then(|p| {
                index
                    .get(&(p.stem.as_str(), p.restart, p.epoch, p.step))
                    .copied()
            }),
        ) {
            if (rank as usize) < ranks && parse_ckpt_name(file).is_some_and(|p| p.rank == rank) {
                cells[rank as usize * n + c] = CellState::SimDeleted;
            }
        }
    }
    (cells, others.into_inner())
}

/// Fill `row` (rank `rank`) from folder `dir`, in one pass over its entries; returns how many
/// of them are shown by epoch and step alone (see [`GridModel::folder_changed`]).
#[allow(clippy::too_many_arguments)]
fn fill_row(
    tree: &Tree,
    columns: &[Column],
    index: &ColumnIndex,
    fmt: Fmt,
    sim: &SimMarks,
    rank: u64,
    row: &mut [CellState],
    dir: &str,
    node: &crate::model::DirNode,
) -> u32 {
    let mut others = 0;
    let col = |p: &CkptName, rank: u64| {
        (p.rank == rank)
            .then(|| {
                index
                    .get(&(p.stem.as_str(), p.restart, p.epoch, p.step))
                    .copied()
            })
            .flatten()
    };
    if let crate::model::Listing::Error(_) = node.listing {
        // the folder cannot be listed: nothing is known of its shards
        row.fill(CellState::Unreadable);
        return 0;
    }
    let in_dir = tree.verdicts.in_dir(dir);
    for e in node.listing.entries() {
        let kind = classify(&e.name);
        let shard = kind.shard(fmt);
        if let EntryKind::Tmp { .. } = kind {
            if let Some(c) = shard.as_ref().and_then(|p| col(p, rank)) {
                if row[c] == CellState::Missing {
                    row[c] = CellState::InProgress;
                }
            }
            continue;
        }
        let Some(c) = shard.as_ref().and_then(|p| col(p, rank)) else {
            if let Some((ep, st)) = other_key(&e.name, rank, fmt) {
                others += 1;
                if let Some(c) = columns.iter().position(|c| c.epoch == ep && c.step == st) {
                    if row[c] == CellState::Missing {
                        row[c] = CellState::Other;
                    }
                }
            }
            continue;
        };
        let marked = sim
            .marked
            .is_some_and(|m| !m.is_empty() && m.contains(&(dir.to_string(), e.name.to_string())));
        row[c] = if marked {
            CellState::SimCorrupt
        } else {
            tree.verdict_of(in_dir, &e)
                .map_or(CellState::Unverified, |v| {
                    CellState::from_verdict(v.verdict)
                })
        };
    }
    others
}

/// The epoch and step of a non-canonical file of this rank that names one (a
/// `_breakpoint.ckpt`, a leading-zero `-020_2`, a `.bak` …): it is shown in the first column of
/// that epoch and step, but it is not the shard MindFormers would use.
fn other_key(name: &str, rank: u64, fmt: Fmt) -> Option<(u64, u64)> {
    let base = name.replace("_breakpoint.", ".");
    let (e, s) = crate::layout::mindformers::names::epoch_and_step(&base, fmt).ok()?;
    let (e, s) = (e.to_i64()? as u64, s.to_i64()? as u64);
    (crate::layout::mindformers::names::rank_id(name)
        .ok()?
        .to_i64()? as u64
        == rank)
        .then_some((e, s))
}

/// Whether [`fill_row`] shows `name` (in the folder of `rank`) by [`other_key`].
fn is_other(name: &str, rank: u64, fmt: Fmt) -> bool {
    let kind = classify(name);
    if matches!(kind, EntryKind::Tmp { .. }) || kind.shard(fmt).is_some_and(|p| p.rank == rank) {
        return false;
    }
    other_key(name, rank, fmt).is_some()
}

/// The global step rank 0's file of column `c` stores (`step_num`), once verified.
fn global_step(tree: &Tree, c: &Column, fmt: Fmt) -> Option<i64> {
    tree.verdict("rank_0", &c.file_for(0, fmt))
        .and_then(|v| v.append.as_ref()?.step_num?.as_i64())
}

/// The file name a rank's `meta.json` records (`last_ckpt_file`), when it parses.
fn meta_file(tree: &Tree, rank: u64) -> Option<String> {
    let node = tree.dirs.get(&format!("rank_{rank}"))?;
    // (kept in the folder's memo: a grid whose columns change looks every rank's up again)
    let file = node.memo.get_or("grid\0meta_file", || {
        let Some(FileRead::Bytes(b)) = node.meta.as_ref() else {
            return None;
        };
        match json::load(b).ok()?.get("last_ckpt_file")? {
            PyValue::Str(s) => Some(s.clone()),
            _ => None,
        }
    });
    (*file).clone()
}
