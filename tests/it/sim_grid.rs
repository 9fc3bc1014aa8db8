//! Simulation (edits over the real model, undoable, never touching the disk) and the grid built
//! from real and simulated views.

use crate::common;
use ckptscope::grid::cell::CellState;
use ckptscope::model::Verdict;
use ckptscope::resolve::config::{ResumeConfig, ResumeTraining};
use ckptscope::resolve::context::RunSettings;
use ckptscope::resolve::mindformers::RankResult;
use ckptscope::resolve::Analysis;
use ckptscope::sim::{Edit, Overlay};
use ckptscope::Session;
use common::copy_fixture;

fn pick(a: &Analysis) -> String {
    match &a.mindformers.per_rank[0] {
        RankResult::File(f) => f.clone(),
        other => format!("{other:?}"),
    }
}

/// The analysis shown as "now" (simulated when edits are active).
fn now(s: &mut Session) -> Analysis {
    s.derived().current().clone()
}

#[test]
fn edits_change_the_answer_and_undo_restores_it() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture("tree-seed-run1", tmp.path());
    let root = tmp.path().join("checkpoint");
    let mut s = common::session_with(&root, &Default::default());
    let base = now(&mut s);
    assert_eq!(pick(&base), "llama3_1_8b_rank_0-20_2.ckpt");
    assert_eq!(
        base.data_skip.as_ref().unwrap().first_printed_step,
        Some(42)
    );

    s.edit(|o| {
        o.push(Edit::DeleteShard {
            dir: "rank_3".into(),
            file: "llama3_1_8b_rank_3-20_2.ckpt".into(),
        })
    });
    let a = now(&mut s);
    assert_eq!(pick(&a), "llama3_1_8b_rank_0-15_2.ckpt");
    assert_eq!(a.data_skip.as_ref().unwrap().first_printed_step, Some(32));
    let g = s.grid();
    assert_eq!(g.cell(3, 2), CellState::SimDeleted);
    assert_eq!((g.mf_column, g.safe_column), (Some(1), Some(1)));
    assert_eq!(
        pick(&s.analysis().clone()),
        "llama3_1_8b_rank_0-20_2.ckpt",
        "the real answer stays"
    );

    s.edit(|o| o.push(Edit::SetGlobalBatchSize { value: 16 }));
    let d = now(&mut s).data_skip.unwrap();
    assert_eq!(
        (d.initial_step, d.skip_batches, d.first_printed_step),
        (Some(15), Some(15), Some(17))
    );

    s.edit(|o| {
        o.undo();
        o.undo();
    });
    assert_eq!(pick(&now(&mut s)), "llama3_1_8b_rank_0-20_2.ckpt");
    s.edit(|o| {
        o.redo();
    });
    assert_eq!(pick(&now(&mut s)), "llama3_1_8b_rank_0-15_2.ckpt");
    s.edit(|o| o.reset());
    assert!(s.overlay().is_empty());
    // the disk was never touched
    assert!(root.join("rank_3/llama3_1_8b_rank_3-20_2.ckpt").exists());
}

#[test]
fn every_edit_kind() {
    let ft = common::fixture_tree("tree-seed-run1");
    let mut s = common::session_with(&ft.root, &Default::default());
    let mut with = |e: Edit| {
        s.edit(|o| {
            o.reset();
            o.push(e);
        });
        let d = s.derived();
        let (v, a) = d.sim.as_ref().expect("simulated");
        (a.clone(), v.marked.clone())
    };
    let (a, _) = with(Edit::DeleteStep {
        stem: "llama3_1_8b".into(),
        restart: 0,
        epoch: 20,
        step: 2,
    });
    assert_eq!(pick(&a), "llama3_1_8b_rank_0-15_2.ckpt");
    let (a, _) = with(Edit::DeleteRank {
        dir: "rank_1".into(),
    });
    assert!(
        matches!(&a.mindformers.per_rank[0], RankResult::Error(e) if e.message.contains("rank_1 is not found!"))
    );
    let (a, marked) = with(Edit::MarkDamaged {
        dir: "rank_2".into(),
        file: "llama3_1_8b_rank_2-20_2.ckpt".into(),
        verdict: Verdict::Truncated,
    });
    assert_eq!(
        pick(&a),
        "llama3_1_8b_rank_0-20_2.ckpt",
        "MindFormers checks names only"
    );
    assert_eq!(
        a.safe.outcome.pick.unwrap().config.resume_training,
        "llama3_1_8b_rank_0-15_2.ckpt"
    );
    assert!(marked.contains(&(
        "rank_2".to_owned(),
        "llama3_1_8b_rank_2-20_2.ckpt".to_owned()
    )));
    let (a, _) = with(Edit::SetResumeTraining {
        value: ResumeTraining::Name("llama3_1_8b_rank_0-10_2".into()),
    });
    assert_eq!(pick(&a), "llama3_1_8b_rank_0-10_2.ckpt");
    let (a, _) = with(Edit::SetIgnoreDataSkip { value: true });
    assert_eq!(a.data_skip.unwrap().skip_batches, Some(0));
    let (a, _) = with(Edit::SetDataSkipSteps { value: Some(2) });
    assert_eq!(a.data_skip.unwrap().skip_batches, Some(2));
    s.edit(|o| {
        o.reset();
        for r in 0..4 {
            o.push(Edit::DeleteMeta {
                dir: format!("rank_{r}"),
            });
        }
    });
    let a = now(&mut s);
    assert_eq!(a.mindformers.record.as_deref(), Some("FOUND NO META.JSON"));
    assert!(a
        .mindformers
        .per_rank
        .iter()
        .all(|r| *r == RankResult::Newest));
    assert_eq!(
        a.context.map(|c| c.file).as_deref(),
        Some("llama3_1_8b_rank_0-20_2.ckpt"),
        "each rank loads its newest file by mtime: -20_2 as the files were written"
    );
}

#[test]
fn an_edit_whose_file_vanished_says_so() {
    let ft_seed_run1 = crate::common::fixture_tree("tree-seed-run1");
    let root = ft_seed_run1.root.clone();
    let real = ckptscope::scan::scan(&ckptscope::fsys::RealFs, &root.to_string_lossy());
    let mut o = Overlay::default();
    o.push(Edit::DeleteShard {
        dir: "rank_0".into(),
        file: "no-such-file.ckpt".into(),
    });
    let v = o.apply(&real, &ResumeConfig::default(), &RunSettings::default());
    assert_eq!(v.stale.len(), 1);
    assert!(v.stale[0].contains("the file is gone"), "{:?}", v.stale);
}

#[test]
fn plain_text_grid_marks_picks_damage_and_meta() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture("tree-seed-run1", tmp.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(
            tmp.path()
                .join("checkpoint/rank_2/llama3_1_8b_rank_2-20_2.ckpt"),
        )
        .unwrap()
        .set_len(8000)
        .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["grid", tmp.path().join("checkpoint").to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["S", "M"],
        "{text}"
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["E_S", "10_2", "15_2", "20_2"]
    );
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["step", "20", "30", "40"]
    );
    assert_eq!(
        lines[6].split_whitespace().collect::<Vec<_>>(),
        ["rank", "2", "●", "●", "~^"],
        "{text}"
    );
    assert!(text.contains("~ truncated"));
}

/// A breakpoint file for a step is shown as "another file", not as the shard; a truncated shard
/// is red with its own glyph; with a verifier running, unchecked shards read "being verified".
#[test]
fn other_files_truncation_and_verifying_cells() {
    use ckptscope::ui::state::State;
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture("tree-seed-run1", tmp.path());
    let root = tmp.path().join("checkpoint");
    std::fs::remove_file(root.join("rank_1/llama3_1_8b_rank_1-20_2.ckpt")).unwrap();
    std::fs::write(
        root.join("rank_1/llama3_1_8b_rank_1-20_2_breakpoint.ckpt"),
        b"x",
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("rank_2/llama3_1_8b_rank_2-20_2.ckpt"))
        .unwrap()
        .set_len(4000)
        .unwrap();
    let mut s = common::session_with(&root, &Default::default());
    common::verify_all(&mut s);
    let g = s.grid();
    assert_eq!(
        (g.cell(1, 2), g.cell(2, 2), g.cell(3, 2)),
        (CellState::Other, CellState::Truncated, CellState::Ok)
    );
    let theme = ckptscope::ui::theme::Theme {
        color: true,
        light: false,
        ascii: false,
    };
    assert_eq!(
        theme.cell(CellState::Truncated).fg,
        Some(ratatui::style::Color::LightRed)
    );
    assert_eq!(CellState::Truncated.glyph(), '~');
    let mut s = State::new(common::session_with(&root, &Default::default()), true);
    assert_eq!(
        s.shown(s.grid().cell(0, 0)),
        CellState::Unverified,
        "10_2 is not needed by the answer, so not checked yet"
    );
    s.verifying = true;
    assert_eq!(s.shown(s.grid().cell(0, 0)), CellState::Verifying);
}

/// With an edit active from the start, the simulated grid shows the verdicts the resolvers
/// checked on the way (it once showed them as "not verified").
#[test]
fn the_simulated_grid_has_the_verdicts_the_answer_used() {
    let ft = common::fixture_tree("tree-seed-run1");
    let unverified = |s: &mut Session| {
        let g = s.grid().clone();
        (0..g.ranks.len())
            .flat_map(|r| (0..g.columns.len()).map(move |c| (r, c)))
            .filter(|(r, c)| g.cell(*r, *c) == CellState::Unverified)
            .count()
    };
    let mut plain = common::session_with(&ft.root, &Default::default());
    let n_plain = unverified(&mut plain);
    let mut sim = common::session_with(&ft.root, &Default::default());
    sim.edit(|o| o.push(Edit::SetIgnoreDataSkip { value: true }));
    assert_eq!(unverified(&mut sim), n_plain);
    assert!(
        n_plain < 12,
        "the answer checked some shards: {n_plain} unverified"
    );
}
