//! Incremental re-resolution: a session that takes verifier results one by one — recomputing
//! its answers only when they read that shard, patching one grid cell otherwise — always shows
//! what a session computing everything afresh on the same model shows.

use crate::common::mem_tree;
use ckptscope::model::{intern, AppendValues, Delta, FileId, Num, ShardCheck, Verdict, Verified};
use ckptscope::{Environment, JobContext, JobFlags, Session};
use proptest::prelude::*;
use std::sync::Arc;

const RANKS: usize = 4;
const STEPS: [i64; 4] = [5, 10, 15, 20];

/// A 4-rank tree (steps 5 … 20, meta.json on 20_2), in memory.
fn tree() -> ckptscope::model::Tree {
    let ranks: Vec<Vec<(String, i64)>> = (0..RANKS)
        .map(|r| {
            STEPS
                .iter()
                .map(|e| (format!("llama_rank_{r}-{e}_2.ckpt"), 1_700_000_000 + e))
                .collect()
        })
        .collect();
    let metas: Vec<Option<String>> = (0..RANKS)
        .map(|r| Some(format!("{{\"last_epoch\": 20, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-20_2.ckpt\"}}")))
        .collect();
    mem_tree("/job/checkpoint", &ranks, &metas)
}

fn session(t: ckptscope::model::Tree) -> Session {
    let env = Environment::with(&[], "/job");
    let flags = JobFlags {
        world_size: Some(RANKS as u64),
        ..Default::default()
    };
    let ctx =
        JobContext::gather(&ckptscope::fsys::RealFs, &env, "/job/checkpoint", &flags).unwrap();
    Session::from_tree(Arc::new(ckptscope::fsys::RealFs), ctx, t).without_disk_checks()
}

/// A verifier result for shard (rank, step index) of `t`: one of a few verdicts, the append
/// entries complete or cut before the batch size (so runs' evidence flips too).
fn verified(t: &ckptscope::model::Tree, rank: usize, step: usize, kind: u8) -> Verified {
    let dir = format!("rank_{rank}");
    let e = STEPS[step];
    let file = format!("llama_rank_{rank}-{e}_2.ckpt");
    let st = t.dirs[&dir]
        .listing
        .find(&file)
        .unwrap()
        .stat()
        .unwrap()
        .clone();
    let append = |gbs: bool| AppendValues {
        epoch_num: Some(Num::Int(e)),
        step_num: Some(Num::Int(2 * e)),
        global_step: None,
        loss_scale: gbs.then_some(Num::Float(1.0)),
        global_batch_size: gbs.then_some(Num::Int(8)),
    };
    let (verdict, a) = match kind {
        0 | 1 => (Verdict::Ok, Some(append(true))),
        2 => (Verdict::Ok, Some(append(false))),
        3 => (Verdict::Truncated, None),
        _ => (Verdict::ZeroByte, None),
    };
    let check = ShardCheck {
        verdict,
        deep: false,
        detail: format!("kind {kind}").into(),
        size: st.size,
        append: a.map(intern),
        sha256: None,
    };
    Verified {
        dir,
        file,
        id: FileId::from(&st),
        check,
    }
}

/// Apply `ops` (`(rank, step index, kind, look)`, each made a delta by `delta` on the live
/// model) to a live session — its views asking in between where `look`, as the TUI does on
/// every frame — and return it with a session computing afresh on the model it ends with.
fn replay(
    ops: Vec<(usize, usize, u8, bool)>,
    delta: impl Fn(&ckptscope::model::Tree, usize, usize, u8) -> Delta,
) -> (Session, Session) {
    let mut live = session(tree());
    live.derived();
    live.grid();
    for (rank, step, kind, look) in ops {
        let d = delta(live.tree(), rank, step, kind);
        live.apply(d);
        if look {
            live.derived();
            live.grid();
        }
    }
    let fresh = session(live.tree().clone());
    (live, fresh)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn incremental_answers_equal_a_full_recomputation(
        results in prop::collection::vec((0..RANKS, 0..STEPS.len(), 0u8..5, any::<bool>()), 1..40)
    ) {
        let (mut live, mut fresh) =
            replay(results, |t, r, s, k| Delta::Verdict(verified(t, r, s, k)));
        prop_assert_eq!(&live.derived().real, &fresh.derived().real);
        prop_assert_eq!(live.grid(), fresh.grid());
    }
}

/// A folder change of kind `kind` on rank `rank` (step index `step`): a shard deleted or
/// restored, a new step saved (a new column), `meta.json` moved on, an exception save added,
/// the new step and exception saves removed (a column may vanish), the folder gone or back.
fn folder_change(t: &ckptscope::model::Tree, rank: usize, step: usize, kind: u8) -> Delta {
    use ckptscope::model::{Entry, FileRead, Listing};
    let dir = format!("rank_{rank}");
    let Some(node) = t.dirs.get(&dir) else {
        // the folder is back, as it was first listed
        return Delta::Dir(dir.clone(), tree().dirs.get(&dir).cloned());
    };
    let mut node = (**node).clone();
    let mut entries: Vec<Entry> = node.listing.entries().iter().collect();
    let template = entries[0].clone();
    let named = |name: String| Entry {
        name: name.into(),
        ..template.clone()
    };
    let e = match kind {
        3 => 25,
        _ => STEPS[step],
    };
    let file = format!("llama_rank_{rank}-{e}_2.ckpt");
    match kind {
        0 => entries.retain(|x| *x.name != file),
        1 | 3 => {
            if !entries.iter().any(|x| *x.name == file) {
                entries.push(named(file));
            }
        }
        2 => {
            node.meta = Some(FileRead::Bytes(
                format!(
                    "{{\"last_epoch\": {e}, \"last_step\": 2, \"last_ckpt_file\": \"{file}\"}}"
                )
                .into_bytes(),
            ))
        }
        // an exception save: shown in its step's column by epoch and step alone
        4 => entries.push(named(format!("llama_rank_{rank}-{e}_2_breakpoint.ckpt"))),
        // the new step and the exception saves gone again (a column may vanish)
        5 => entries.retain(|x| !x.name.contains("-25_2") && !x.name.contains("breakpoint")),
        _ => return Delta::Dir(dir, None),
    }
    node.listing = Listing::Entries(entries.into());
    Delta::Dir(dir, Some(Arc::new(node)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Folder changes too: the grid keeps what a change cannot touch and fills the changed
    /// rank's row again — and still equals a grid built afresh.
    #[test]
    fn folder_changes_and_results_equal_a_full_recomputation(
        ops in prop::collection::vec(
            (0..RANKS, 0..STEPS.len(), 0u8..12, any::<bool>()), 1..40)
    ) {
        let (mut live, mut fresh) = replay(ops, |t, r, s, k| match k {
            0..=4 => Delta::Verdict(verified_if_listed(t, r, s, k)),
            k => folder_change(t, r, s, k - 5),
        });
        prop_assert_eq!(&live.derived().real, &fresh.derived().real);
        prop_assert_eq!(live.grid(), fresh.grid());
    }
}

/// [`verified`] when the shard is listed, else a result for a file that is not there (the
/// model ignores it, as it ignores a result for a file that vanished).
fn verified_if_listed(t: &ckptscope::model::Tree, rank: usize, step: usize, kind: u8) -> Verified {
    let dir = format!("rank_{rank}");
    let file = format!("llama_rank_{rank}-{}_2.ckpt", STEPS[step]);
    match t.dirs.get(&dir).and_then(|n| n.listing.find(&file)) {
        Some(_) => verified(t, rank, step, kind),
        None => verified(&tree(), rank, step, kind),
    }
}
