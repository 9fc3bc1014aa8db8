//! The TUI on a new-format tree: iteration columns with the tracker, MindFormers' and the
//! safe markers, the new format's verdict card, and the seed-style walkthrough in simulation
//! — a damaged shard of rank 1 in the newest folder turns MindFormers' answer into rank 1's
//! weights error, and the safe pick moves to the previous folder with the change that gets
//! there.

use crate::common::{self, tui::*};
use ckptscope::ui::state::State;
use std::path::{Path, PathBuf};

/// A state on a copy of new-format fixture `name` (its `checkpoint/` root), every shard
/// verified.
fn new_state(name: &str) -> (State, tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/mindformers-new")
        .join(name);
    assert!(src.is_dir(), "fixture missing: {}", src.display());
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(&src, tmp.path());
    let root = tmp.path().join("checkpoint");
    let mut session = common::session_with(&root, &Default::default());
    common::verify_all(&mut session);
    let s = fixed(State::new(session, false));
    (s, tmp, root)
}

/// The frame's text with each line's borders dropped and the lines joined: a sentence the
/// panel wraps reads whole.
fn screen(s: &mut State) -> String {
    let t = text(&frame(s, 200, 50, COLOR));
    t.lines()
        .map(|l| {
            l.trim_matches('"')
                .split('│')
                .filter(|p| !p.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The resume panel's text, its wrapped lines joined.
fn card(s: &mut State) -> String {
    let t = text(&frame(s, 200, 50, COLOR));
    let lines: Vec<&str> = t.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.contains("┌ resume"))
        .expect("a resume panel");
    let col = lines[top].find("┌ resume").unwrap();
    lines[top + 1..]
        .iter()
        .take_while(|l| !l.get(col..).unwrap_or("").starts_with('└'))
        .map(|l| {
            l.get(col..)
                .unwrap_or("")
                .trim_matches(|c| c == '│' || c == '"')
                .trim_end()
        })
        .collect::<Vec<_>>()
        .join("")
}

/// Whether `hay` holds `needle`, spaces aside (a wrapped line loses the space it broke at).
fn has(hay: &str, needle: &str) -> bool {
    let squeeze = |x: &str| x.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squeeze(hay).contains(&squeeze(needle))
}

/// The simulated analysis' answer for rank `r` and its safe folder.
fn simulated(s: &State, r: usize) -> (String, Option<String>) {
    let (_, a) = s.derived().sim.as_ref().expect("a simulation");
    let n = a.newfmt.as_ref().expect("a new-format analysis");
    (
        serde_json::to_string(&n.per_rank[r]).unwrap(),
        n.safe.as_ref().map(|p| p.folder.clone()),
    )
}

#[test]
fn a_new_format_tree_shows_iterations_and_its_card() {
    let (mut s, _tmp, _) = new_state("tree-truncated-shard");
    let g = s.session.grid().clone();
    assert_eq!(
        g.columns.iter().map(|c| c.label()).collect::<Vec<_>>(),
        ["6", "8", "10"]
    );
    assert_eq!(
        (g.tracker_column, g.mf_column, g.safe_column),
        (Some(2), Some(2), Some(1))
    );
    let c = card(&mut s);
    assert!(has(&c, "MindFormers → iteration_00000010 (step 10) ✗ fails on 1 of 2 ranks: rank 1 at the weights stage: ValueError: Loaded nothing from"), "{c}");
    assert!(has(&c, "Safe → iteration_00000008 (step 8) ✓"), "{c}");
    let out = screen(&mut s);
    assert!(
        out.contains("iterations × ranks") && out.contains("mindformers-new"),
        "{out}"
    );
    assert!(
        out.contains("T M") && out.contains("common.json: {"),
        "{out}"
    );
}

#[test]
fn simulated_damage_moves_the_answer_and_the_safe_pick() {
    let (mut s, _tmp, _) = new_state("tree-healthy-2rank");
    let c = card(&mut s);
    assert!(
        c.contains("MindFormers → iteration_00000010 (step 10) ✓"),
        "{c}"
    );
    // the cursor to rank 1, iteration 10 (the last column), and mark its shard truncated
    let g = s.session.grid().clone();
    let col = s
        .visible_columns()
        .iter()
        .position(|c| g.columns[*c].label() == "10")
        .unwrap();
    s.col = col;
    s.row = (0..2)
        .find(|r| s.row_members(*r).next() == Some(1))
        .unwrap();
    assert_eq!(
        s.cursor_file(),
        Some((
            "iteration_00000010".into(),
            "llama-model-0000001-0000002.safetensors".into()
        ))
    );
    keys(&mut s, "t");
    let (r1, safe) = simulated(&s, 1);
    assert!(
        r1.contains(r#""stage":"weights","type":"ValueError","message":"Loaded nothing from '"#),
        "{r1}"
    );
    assert!(
        simulated(&s, 0).0.contains(r#""initial_step":"10""#),
        "rank 0 still loads"
    );
    assert_eq!(safe.as_deref(), Some("iteration_00000008"));
    let c = card(&mut s);
    assert!(has(&c, "rank 1 at the weights stage"), "{c}");
    assert!(has(&c, "Safe → iteration_00000008 (step 8) ✓"), "{c}");
    assert!(
        has(&c, "set checkpoint.load_path (or load_checkpoint) to"),
        "{c}"
    );
    // deleting it instead fails every rank at verification (metadata.json lists it)
    keys(&mut s, "ux");
    let (r0, safe) = simulated(&s, 0);
    assert!(r0.contains(r#""stage":"resolve","type":"FileNotFoundError","message":"Checkpoint file validation failed"#), "{r0}");
    assert_eq!(safe.as_deref(), Some("iteration_00000008"));
}

/// The new format's simulation keys: `K` deletes the tracker (MindFormers then verifies the
/// root itself and fails), `w` makes it name the folder under the cursor, `o` loads the
/// weights only (step 0), `H` switches health mode on (no folder has `ckpt_status` 0).
#[test]
fn tracker_no_load_optim_and_health_in_simulation() {
    let (mut s, _tmp, _) = new_state("tree-healthy-2rank");
    keys(&mut s, "K");
    let (r0, _) = simulated(&s, 0);
    assert!(r0.contains(r#""stage":"resolve","type":"FileNotFoundError","message":"Checkpoint directory validation failed: No Safetensors files found in"#), "{r0}");
    // the cursor to iteration 8 and the tracker written to name it
    let g = s.session.grid().clone();
    s.col = s
        .visible_columns()
        .iter()
        .position(|c| g.columns[*c].label() == "8")
        .unwrap();
    keys(&mut s, "w");
    let (r0, safe) = simulated(&s, 0);
    assert!(
        r0.contains("iteration_00000008") && r0.contains(r#""initial_step":"8""#),
        "{r0}"
    );
    assert_eq!(
        safe.as_deref(),
        Some("iteration_00000010"),
        "the newest intact folder stays the safe pick"
    );
    keys(&mut s, "R");
    keys(&mut s, "o");
    let (r0, _) = simulated(&s, 0);
    assert!(
        r0.contains("iteration_00000010") && r0.contains(r#""initial_step":"0""#),
        "{r0}"
    );
    keys(&mut s, "uH");
    let (r0, _) = simulated(&s, 0);
    assert!(
        r0.contains(
            r#""stage":"context","type":"RuntimeError","message":"No healthy checkpoint found in:"#
        ),
        "{r0}"
    );
}

/// `w` only offers a folder the tracker can name: `iteration_8` (unpadded) is not what a
/// tracker saying 8 points at (`iteration_00000008`), so no edit is made there.
#[test]
fn the_tracker_edit_refuses_a_folder_it_cannot_name() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/mindformers-new/tree-healthy-2rank");
    assert!(src.is_dir(), "fixture missing: {}", src.display());
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(&src, tmp.path());
    let root = tmp.path().join("checkpoint");
    std::fs::rename(root.join("iteration_00000008"), root.join("iteration_8")).unwrap();
    let mut session = common::session_with(&root, &Default::default());
    common::verify_all(&mut session);
    let mut s = fixed(State::new(session, false));
    let g = s.session.grid().clone();
    let at = |s: &State, folder: &str| {
        s.visible_columns()
            .iter()
            .position(|c| {
                g.columns[*c]
                    .new
                    .as_ref()
                    .is_some_and(|n| n.folder == folder)
            })
            .unwrap_or_else(|| panic!("no column for {folder}"))
    };
    s.col = at(&s, "iteration_8");
    keys(&mut s, "w");
    assert!(s.session.overlay().is_empty(), "no edit on iteration_8");
    // a folder it can name takes the edit
    s.col = at(&s, "iteration_00000006");
    keys(&mut s, "w");
    assert!(
        !s.session.overlay().is_empty(),
        "the edit on iteration_00000006"
    );
}
