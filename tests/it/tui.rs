//! The TUI on ratatui's TestBackend: whole-frame snapshots (insta) at 80×24, 120×40 and a tiny
//! size, the simulation walk-through of the seed example driven by keys, and cell styles.

use crate::common;
use crate::common::tui::*;
use ckptscope::model::Tree;
use ckptscope::ui::run::on_key;
use ckptscope::ui::state::State;
use ckptscope::ui::theme::Theme;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;

#[test]
fn snapshots_of_the_seed_tree() {
    let (mut s, _tmp) = seed_state(true);
    insta::assert_snapshot!("seed_120x40", text(&frame(&mut s, 120, 40, COLOR)));
    insta::assert_snapshot!("seed_80x24", text(&frame(&mut s, 80, 24, COLOR)));
    insta::assert_snapshot!("seed_tiny", text(&frame(&mut s, 40, 10, COLOR)));
    keys(&mut s, "?");
    insta::assert_snapshot!("seed_help_120x40", text(&frame(&mut s, 120, 40, COLOR)));
}

#[test]
fn snapshot_of_the_async_tree() {
    let (mut s, _tmp) = fixture_state("tree-async", true);
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(
        t.contains("MindFormers → 15_2 ✓") && t.contains("Safe → 20_2 ✓"),
        "{t}"
    );
    insta::assert_snapshot!("async_120x40", t);
}

#[test]
fn the_seed_walkthrough_by_keys() {
    let (mut s, _tmp) = seed_state(true);
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(
        t.contains("MindFormers → 20_2 ✓") && t.contains("first step 42"),
        "{t}"
    );
    keys(&mut s, "jjjll");
    assert_eq!(s.cursor_file().unwrap().1, "llama3_1_8b_rank_3-20_2.ckpt");
    keys(&mut s, "x");
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("SIMULATION: 1 edit(s)"), "{t}");
    assert!(
        t.contains("MindFormers → 20_2 ✓")
            && t.contains("MindFormers → 15_2 ✓")
            && t.contains("skip 30 · first step 32"),
        "{t}"
    );
    keys(&mut s, ">");
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(
        t.contains("first step 17") && t.contains("scale 0.5") && t.contains("gbs 8 → 16"),
        "{t}"
    );
    insta::assert_snapshot!("seed_simulated_120x40", t);
    keys(&mut s, "uu");
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(
        !t.contains("SIMULATION") && t.contains("MindFormers → 20_2"),
        "{t}"
    );
    keys(&mut s, "q");
    assert!(s.quit);
}

#[test]
fn damaged_cells_are_red_and_have_their_glyph_and_no_color_keeps_glyphs() {
    let (mut s, _tmp) = seed_state(true);
    keys(&mut s, "jjll");
    keys(&mut s, "t"); // simulate rank 2's 20_2 truncated
    keys(&mut s, "k"); // move the cursor away from the cell
    let t = frame(&mut s, 120, 40, COLOR);
    let buf = t.backend().buffer();
    let (x, y) = find(buf, "rank 2").unwrap();
    let row: Vec<(String, Color)> = (x..buf.area.width)
        .map(|i| (buf[(i, y)].symbol().to_owned(), buf[(i, y)].fg))
        .filter(|(g, _)| g.trim() != "")
        .collect();
    let marked = row
        .iter()
        .find(|(g, _)| g == "※")
        .expect("the simulated-damage glyph");
    assert_eq!(marked.1, Color::Magenta);
    let ok = row.iter().find(|(g, _)| g == "●").unwrap();
    assert_eq!(ok.1, Color::Green);
    let (mut plain, _tmp2) = seed_state(false);
    let t = frame(
        &mut plain,
        120,
        40,
        Theme {
            color: false,
            light: false,
            ascii: false,
        },
    );
    let buf = t.backend().buffer();
    assert!(
        buf.content().iter().all(|c| c.fg == Color::Reset),
        "NO_COLOR: no foreground colours"
    );
    assert!(text(&t).contains('●'), "glyphs carry the states");
}

/// 4,096 ranks, zoomed out to 512 ranks per row: the worst state of each group shows.
#[test]
fn thousands_of_ranks_zoomed_out() {
    let mut ranks: Vec<Vec<(String, i64)>> = (0..4096)
        .map(|r| {
            (1..=3)
                .map(|e| {
                    (
                        format!("llama_rank_{r}-{}_2.ckpt", e * 5),
                        1_700_000_000 + e,
                    )
                })
                .collect()
        })
        .collect();
    ranks[3000].remove(2); // one rank lost its newest shard
    let metas: Vec<Option<String>> = (0..4096).map(|r| Some(format!("{{\"last_epoch\": 15, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-15_2.ckpt\"}}"))).collect();
    let tree = common::mem_tree("/synthetic/checkpoint", &ranks, &metas);
    let mut s = state_for(tree, true);
    assert_eq!(
        s.zoom, 512,
        "zoomed out on the first frame until every row fits"
    );
    let t = text(&frame(&mut s, 120, 40, COLOR));
    insta::assert_snapshot!("synthetic_4096_zoomed_120x40", t);
    assert!(t.contains("r2560-3071"), "{t}");
}

/// With `--mouse`, a click selects the cell under it (same geometry as the frame).
#[test]
fn a_click_maps_to_the_cell_under_it() {
    let (mut s, _tmp) = seed_state(true);
    let t = frame(&mut s, 120, 40, COLOR);
    let buf = t.backend().buffer();
    let (x, y) = find(buf, "rank 3").unwrap();
    // the third step column's glyph on rank 3's line
    let glyph_x = (x..buf.area.width)
        .filter(|i| buf[(*i, y)].symbol() == "●")
        .nth(2)
        .unwrap();
    let hit =
        ckptscope::ui::render::cell_at(&s, ratatui::layout::Rect::new(0, 0, 120, 40), glyph_x, y);
    assert_eq!(hit, Some((3, 2)));
    assert_eq!(
        ckptscope::ui::render::cell_at(&s, ratatui::layout::Rect::new(0, 0, 120, 40), 0, 0),
        None
    );
}

#[test]
fn a_tiny_terminal_gets_a_message_not_a_panic() {
    let (mut s, _tmp) = seed_state(true);
    for (w, h) in [(1, 1), (10, 3), (59, 40), (120, 15)] {
        let t = text(&frame(&mut s, w, h, COLOR));
        assert!(t.contains("terminal") || w < 12, "{w}x{h}: {t}");
    }
}

/// Undo, redo and reset with nothing to undo leave a drawable state (they once left the
/// session's answers uncomputed and the next frame panicked); doubling a huge batch size does
/// not overflow.
#[test]
fn undo_with_nothing_to_undo_and_a_huge_batch_size_are_harmless() {
    let (mut s, _tmp) = seed_state(true);
    for k in ["u", "R"] {
        keys(&mut s, k);
        let t = text(&frame(&mut s, 120, 40, COLOR));
        assert!(t.contains("MindFormers → 20_2"), "{t}");
    }
    on_key(
        &mut s,
        KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL),
    );
    frame(&mut s, 120, 40, COLOR);
    assert_eq!(s.log.front().map(String::as_str), Some("nothing to redo"));
    keys(&mut s, "b9000000000000000000");
    on_key(&mut s, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    keys(&mut s, ">>");
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("SIMULATION: 1 edit(s)"), "{t}");
}

/// A verifier result on a few shards highlights their cells for a moment; a pass that changes
/// thousands of cells at once (the first verification of a big tree) highlights none — and
/// the comparison behind it holds no map entry per cell.
#[test]
fn changed_cells_flash_unless_thousands_change_at_once() {
    use ckptscope::model::{Delta, ShardCheck, Verdict, Verified};
    let ranks: Vec<Vec<(String, i64)>> = (0..2_100)
        .map(|r| {
            (1..=2)
                .map(|e| (format!("m_rank_{r}-{e}_1.ckpt"), e))
                .collect()
        })
        .collect();
    let tree = common::mem_tree("/synthetic/checkpoint", &ranks, &[]);
    let verdict = |t: &Tree, r: usize, e: usize, v: Verdict| {
        let (dir, file) = (format!("rank_{r}"), format!("m_rank_{r}-{e}_1.ckpt"));
        let id = t.dirs[&dir].listing.find(&file).unwrap().file_id().unwrap();
        Delta::Verdict(Verified {
            id,
            dir,
            file,
            check: ShardCheck::new(v, "test", 1),
        })
    };
    let all: Vec<Delta> = (0..2_100)
        .flat_map(|r| [1, 2].map(|e| verdict(&tree, r, e, Verdict::Ok)))
        .collect();
    let mut s = state_for(tree.clone(), false);
    ckptscope::ui::apply_deltas(&mut s, all);
    assert!(
        s.flashes.is_empty(),
        "4,200 cells changed at once: {} flashes",
        s.flashes.len()
    );
    ckptscope::ui::apply_deltas(&mut s, vec![verdict(&tree, 7, 2, Verdict::Truncated)]);
    let flashed: Vec<_> = s.flashes.keys().cloned().collect();
    assert!(
        flashed.contains(&(7, "2_1".to_string())),
        "the truncated shard's cell flashes: {flashed:?}"
    );
    assert!(flashed.len() <= 3, "only what changed: {flashed:?}");
}

/// A number typed into a prompt that is negative, too large or not a number is refused with a
/// message that says which (not "not a number" for -5, nor "not positive" for 2^64).
#[test]
fn prompt_numbers_are_refused_with_the_right_reason() {
    let (mut s, _tmp) = seed_state(true);
    let enter = |s: &mut State| on_key(s, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let cases = [
        ("b-5", "global batch size: '-5' is less than 1"),
        ("b0", "global batch size: '0' is less than 1"),
        (
            "b18446744073709551616",
            "global batch size: '18446744073709551616' is too large (at most 9223372036854775807)",
        ),
        ("b1e3", "global batch size: '1e3' is not a whole number"),
        (
            "s-5",
            "data_skip_steps: '-5' is less than 0 (empty: not set)",
        ),
        (
            "sx",
            "data_skip_steps: 'x' is not a whole number (empty: not set)",
        ),
    ];
    for (typed, said) in cases {
        keys(&mut s, typed);
        enter(&mut s);
        assert_eq!(s.log.front().map(String::as_str), Some(said), "{typed}");
    }
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(!t.contains("SIMULATION"), "nothing was simulated: {t}");
}
