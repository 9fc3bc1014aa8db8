//! The grid of a new-format tree: one column per `iteration_*` folder (oldest first), one row
//! per rank, each cell the worse of the rank's model and optimizer shards (both are in the
//! cell panel). Markers: the tracker's folder (`T`), MindFormers' (`M`), the safe pick (`S`).

use super::cell::CellState;
use super::model::{Column, GridModel, NewColumn, SimMarks};
use crate::layout::mindformers_new::analysis::{NewAnalysis, RankAnswer};
use crate::layout::mindformers_new::names::parse_shard_name;
use crate::layout::mindformers_new::tracker::{iteration_dir, parse, TRACKER};
use crate::model::{FileRead, Tree};

/// The grid of `tree` as `a` answers for it.
pub fn build(tree: &Tree, a: &NewAnalysis, sim: &SimMarks) -> GridModel {
    let columns: Vec<Column> = a
        .iterations
        .iter()
        .map(|it| column(tree, &it.folder, it.number.unwrap_or(0)))
        .collect();
    let ranks: Vec<u64> = (0..a.world_size.max(1)).collect();
    let w = columns.len();
    let mut cells = vec![CellState::Missing; ranks.len() * w];
    for (c, col) in columns.iter().enumerate() {
        let Some(node) = col.new.as_ref().and_then(|n| tree.dirs.get(&n.folder)) else {
            continue;
        };
        let folder = &col.new.as_ref().expect("a new-format column").folder;
        // which kinds (bit 0 model, bit 1 optimizer) each rank has, and the folder has
        let mut kinds = vec![0u8; ranks.len()];
        let mut folder_kinds = 0u8;
        for e in node.listing.entries() {
            let Some((n, tmp)) = shard_of(&e.name) else {
                continue;
            };
            let bit = match n.kind {
                crate::layout::mindformers_new::names::ShardKind::Model => 1,
                crate::layout::mindformers_new::names::ShardKind::Opt => 2,
            };
            folder_kinds |= bit;
            if n.idx >= ranks.len() as u64 {
                continue;
            }
            kinds[n.idx as usize] |= bit;
            let slot = &mut cells[n.idx as usize * w + c];
            let key = (folder.clone(), e.name.to_string());
            let state = if sim.deleted.is_some_and(|d| d.contains(&key)) {
                CellState::SimDeleted
            } else if sim.marked.is_some_and(|m| m.contains(&key)) {
                CellState::SimCorrupt
            } else if tmp {
                CellState::InProgress
            } else {
                tree.verdict(folder, &e.name)
                    .map_or(CellState::Unverified, |v| {
                        CellState::from_verdict(v.verdict)
                    })
            };
            // the worse of the model and optimizer shards (a missing one is worst of all,
            // so a present shard replaces "missing" only when it is the first seen)
            *slot = match *slot {
                CellState::Missing => state,
                s if state.severity() > s.severity() => state,
                s => s,
            };
        }
        // a rank without one of the kinds the folder has lacks a shard: the cell is missing
        for (r, k) in kinds.iter().enumerate() {
            if *k != 0 && *k != folder_kinds {
                cells[r * w + c] = CellState::Missing;
            }
        }
    }
    let mut g = GridModel::from_cells(columns, ranks, cells);
    let col_of = |folder: &str| {
        g.columns
            .iter()
            .position(|c| c.new.as_ref().is_some_and(|n| n.folder == folder))
    };
    g.mf_column = a.per_rank.first().and_then(|r| match r {
        RankAnswer::Loads {
            load_path: Some(p), ..
        } => col_of(
            p.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default(),
        ),
        _ => None,
    });
    g.safe_column = a.safe.as_ref().and_then(|s| col_of(&s.folder));
    g.tracker_column = match tree.root_files.get(TRACKER) {
        Some(FileRead::Bytes(b)) => parse(TRACKER, b)
            .ok()
            .and_then(|n| col_of(&iteration_dir(&n))),
        _ => None,
    };
    g
}

/// The shard a listed name is, and whether it is still being written: a save writes
/// `x.tmp` and renames it to `x.safetensors` (§5.3).
fn shard_of(name: &str) -> Option<(crate::layout::mindformers_new::names::ShardName, bool)> {
    match name.strip_suffix(".tmp") {
        Some(stem) => parse_shard_name(&format!("{stem}.safetensors")).map(|n| (n, true)),
        None => parse_shard_name(name).map(|n| (n, false)),
    }
}

/// The column of folder `folder`: its number, its shards' naming, and `common.json`'s
/// `step_num` as the stored step.
fn column(tree: &Tree, folder: &str, number: u64) -> Column {
    let node = tree.dirs.get(folder);
    let named = node
        .into_iter()
        .flat_map(|n| n.listing.entries().iter())
        .find_map(|e| shard_of(&e.name).map(|(n, _)| n));
    let step = node
        .and_then(|n| n.control.iter().find(|(c, _)| c == "common.json"))
        .and_then(|(_, r)| match r {
            FileRead::Bytes(b) => crate::py::json::load(b)
                .ok()?
                .get("step_num")
                .and_then(|v| match v {
                    crate::py::json::PyValue::Int(i) => i.to_i64(),
                    _ => None,
                }),
            _ => None,
        });
    Column {
        stem: folder.to_owned(),
        restart: 0,
        epoch: 0,
        step: number,
        global_step: step,
        new: Some(NewColumn {
            folder: folder.to_owned(),
            prefix: named.as_ref().and_then(|n| n.prefix.clone()),
            total: named.map_or(1, |n| n.total),
        }),
    }
}
