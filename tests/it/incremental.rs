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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn incremental_answers_equal_a_full_recomputation(
        results in prop::collection::vec((0..RANKS, 0..STEPS.len(), 0u8..5, any::<bool>()), 1..40)
    ) {
        let t = tree();
        let mut live = session(t.clone());
        live.derived();
        live.grid();
        for (rank, step, kind, look) in results {
            let v = verified(live.tree(), rank, step, kind);
            live.apply(Delta::Verdict(v));
            if look {
                // the views ask in between, as the TUI does on every frame
                live.derived();
                live.grid();
            }
        }
        let mut fresh = session(live.tree().clone());
        prop_assert_eq!(&live.derived().real, &fresh.derived().real);
        prop_assert_eq!(live.grid(), fresh.grid());
    }
}
