//! Attention where it belongs (issue 12): the grid opens on the newest steps with the resume
//! points on screen and every rank row fitted, says which steps are off screen, zooms in onto
//! the worst rank, and `p` narrows to the ranks and steps with a problem.

use crate::common;
use crate::common::tui::*;
use ckptscope::grid::cell::CellState;
use ratatui::crossterm::event::KeyCode;

/// 1,024 ranks × 30 steps; rank 900 lost its newest shard.
fn wide_tree() -> ckptscope::model::Tree {
    let ranks: Vec<Vec<(String, i64)>> = (0..1024)
        .map(|r| {
            (1..=30)
                .filter(|e| !(r == 900 && *e == 30))
                .map(|e| (format!("llama_rank_{r}-{e}_2.ckpt"), 1_700_000_000 + e))
                .collect()
        })
        .collect();
    let metas: Vec<Option<String>> = (0..1024)
        .map(|r| {
            let e = if r == 900 { 29 } else { 30 };
            Some(format!(
                "{{\"last_epoch\": {e}, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-{e}_2.ckpt\"}}"
            ))
        })
        .collect();
    common::mem_tree("/synthetic/checkpoint", &ranks, &metas)
}

#[test]
fn the_grid_opens_on_the_newest_steps_with_every_rank_row_and_the_trouble_in_view() {
    let mut s = state_for(wide_tree(), true);
    let t = text(&frame(&mut s, 120, 40, COLOR));
    // every rank row fits: 1,024 ranks at 64 per row is 16 rows
    assert_eq!(s.zoom, 64, "{t}");
    assert!(t.contains("r960-1023"), "the last rows are on screen: {t}");
    // the newest steps, and the older ones said to be off screen
    assert!(t.contains("30_2") && t.contains("29_2"), "{t}");
    assert!(!t.contains(" 1_2 "), "the oldest step is off screen: {t}");
    assert!(t.contains("◂ ") && t.contains(" older"), "{t}");
    // the cursor: MindFormers' step, on the row holding the lost shard
    let col = s.visible_columns()[s.col];
    assert_eq!(s.grid().columns[col].label(), "30_2", "{t}");
    assert_eq!(s.row, 900 / 64, "{t}");
    assert_eq!(s.row_worst(s.row, col), CellState::Missing);
    // Home shows the oldest steps and says how many newer ones are hidden
    press(&mut s, KeyCode::Home);
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains(" 1_2") && t.contains("newer ▸"), "{t}");
    insta::assert_snapshot!("wide_oldest_120x40", t);
}

/// Zooming in lands on the worst rank of the group, not its first.
#[test]
fn zoom_in_lands_on_the_worst_rank() {
    let mut s = state_for(wide_tree(), true);
    frame(&mut s, 120, 40, COLOR);
    keys(&mut s, "Z");
    assert_eq!(s.zoom, 8);
    assert_eq!(s.row, 900 / 8);
    keys(&mut s, "Z");
    assert_eq!(s.zoom, 1);
    assert_eq!(s.cursor_file().unwrap().0, "rank_900");
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("rank 900"), "{t}");
}

/// `p` keeps the steps and ranks with a problem, and the resume steps; on a clean tree it
/// says so instead of showing an empty grid.
#[test]
fn problems_only_narrows_ranks_and_steps_and_says_when_there_are_none() {
    let mut s = state_for(wide_tree(), true);
    frame(&mut s, 120, 40, COLOR);
    keys(&mut s, "p");
    assert!(s.problems_only);
    assert_eq!(s.rows(), 1, "one rank has a problem");
    s.zoom = 1;
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("rank 900") && !t.contains("rank 899"), "{t}");
    let labels: Vec<String> = s
        .visible_columns()
        .iter()
        .map(|c| s.grid().columns[*c].label())
        .collect();
    assert!(labels.contains(&"30_2".to_string()), "{labels:?}");
    // a new problem elsewhere joins the filtered view at once (it is kept per grid change)
    let (dir, file) = ("rank_5".to_string(), "llama_rank_5-12_2.ckpt".to_string());
    let st = s.session.tree().dirs[&dir]
        .listing
        .find(&file)
        .unwrap()
        .stat()
        .unwrap()
        .clone();
    ckptscope::ui::apply_deltas(
        &mut s,
        vec![ckptscope::model::Delta::Verdict(
            ckptscope::model::Verified {
                id: ckptscope::model::FileId::from(&st),
                dir,
                file,
                check: ckptscope::model::ShardCheck::new(
                    ckptscope::model::Verdict::Truncated,
                    "t",
                    1,
                ),
            },
        )],
    );
    assert_eq!(s.rows(), 2, "ranks 5 and 900");
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("rank 5 ") && t.contains("12_2"), "{t}");
    keys(&mut s, "p");
    assert!(!s.problems_only);

    let clean: Vec<Vec<(String, i64)>> = (0..4)
        .map(|r| vec![(format!("llama_rank_{r}-1_2.ckpt"), 1)])
        .collect();
    let mut c = state_for(common::mem_tree("/clean/checkpoint", &clean, &[]), true);
    keys(&mut c, "p");
    assert!(!c.problems_only);
    assert!(
        c.log.front().is_some_and(|l| l.starts_with("no problems")),
        "{:?}",
        c.log.front()
    );
}

/// The styles of a frame's grid region, one line per styled run (glyph, colour, bold), for
/// snapshots of a theme.
fn styles(
    t: &ratatui::Terminal<ratatui::backend::TestBackend>,
    rows: std::ops::Range<u16>,
) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in rows {
        for x in 0..70 {
            let c = &buf[(x, y)];
            if c.symbol().trim().is_empty() || c.fg == ratatui::style::Color::Reset {
                continue;
            }
            let bold = c.modifier.contains(ratatui::style::Modifier::BOLD);
            out.push_str(&format!(
                "{x},{y} {} {:?}{}\n",
                c.symbol(),
                c.fg,
                if bold { " bold" } else { "" }
            ));
        }
    }
    out
}

/// Missing and damaged cells are the loudest (red, bold) in both themes, healthy ones the
/// quietest; the light theme uses no light grey or white for text (unreadable on a light
/// background), and `·` (missing) no longer looks like `^` (meta.json points here).
#[test]
fn the_palette_puts_trouble_first_in_both_themes() {
    use ratatui::style::{Color, Modifier};
    let (mut s, _tmp) = fixture_state("tree-seed-run1", true);
    keys(&mut s, "jjjllx"); // rank 3's 20_2: simulated deleted
    keys(&mut s, "k");
    for light in [false, true] {
        let theme = ckptscope::ui::theme::Theme {
            color: true,
            light,
            ascii: false,
        };
        let t = frame(&mut s, 120, 40, theme);
        let buf = t.backend().buffer();
        let cells: Vec<&ratatui::buffer::Cell> = buf.content().iter().collect();
        let of = |g: &str| {
            cells
                .iter()
                .filter(|c| c.symbol() == g)
                .copied()
                .collect::<Vec<_>>()
        };
        for ok in of("●") {
            assert!(!ok.modifier.contains(Modifier::BOLD), "ok cells are quiet");
        }
        let caret = of("^");
        assert!(!caret.is_empty());
        for c in &caret {
            assert!(
                !c.modifier.contains(Modifier::BOLD)
                    && c.fg != Color::Red
                    && c.fg != Color::LightRed
            );
        }
        if light {
            let unreadable = [
                Color::Gray,
                Color::White,
                Color::LightYellow,
                Color::LightCyan,
                Color::LightGreen,
                Color::Yellow,
            ];
            let bad: Vec<String> = cells
                .iter()
                .filter(|c| !c.symbol().trim().is_empty() && unreadable.contains(&c.fg))
                .map(|c| format!("{}:{:?}", c.symbol(), c.fg))
                .collect();
            assert!(bad.is_empty(), "light-on-light text: {bad:?}");
        }
        insta::assert_snapshot!(
            if light {
                "palette_light"
            } else {
                "palette_dark"
            },
            styles(&t, 1..9)
        );
    }
    // a missing shard (deleted on disk, not simulated): red and bold
    let (_, tmp) = fixture_state("tree-seed-run1", true);
    std::fs::remove_file(
        tmp.path()
            .join("checkpoint/rank_2/llama3_1_8b_rank_2-15_2.ckpt"),
    )
    .unwrap();
    let mut fresh = {
        let session = common::session_with(&tmp.path().join("checkpoint"), &Default::default());
        fixed(ckptscope::ui::state::State::new(session, true))
    };
    let t = frame(&mut fresh, 120, 40, COLOR);
    let buf = t.backend().buffer();
    let (x, y) = find(buf, "rank 2").unwrap();
    let dot = (x..buf.area.width)
        .map(|i| &buf[(i, y)])
        .find(|c| c.symbol() == "·")
        .expect("the missing cell");
    assert_eq!(dot.fg, Color::LightRed);
    assert!(dot.modifier.contains(Modifier::BOLD));
}

/// `--ascii` draws every symbol in ASCII (glyphs, borders, separators, arrows), and is the
/// default where the locale is not UTF-8 or is a CJK one.
#[test]
fn ascii_mode_draws_nothing_of_ambiguous_width() {
    let (mut s, _tmp) = fixture_state("tree-seed-run1", true);
    keys(&mut s, "jjjllx"); // a simulated deletion: more symbols on screen
    let theme = ckptscope::ui::theme::Theme {
        color: true,
        light: false,
        ascii: true,
    };
    let t = frame(&mut s, 120, 40, theme);
    let txt = text(&t);
    let odd: Vec<char> = txt.chars().filter(|c| !c.is_ascii()).collect();
    assert!(odd.is_empty(), "non-ASCII symbols {odd:?}: {txt}");
    assert!(txt.contains("rank 0         o    o    o^"), "{txt}");
    insta::assert_snapshot!("seed_ascii_120x40", txt);

    let env = |vars: &[(&str, &str)]| ckptscope::Environment::with(vars, "/");
    use ckptscope::cli::ascii_locale;
    assert!(ascii_locale(&env(&[])), "no locale: C");
    assert!(ascii_locale(&env(&[("LANG", "C")])));
    assert!(!ascii_locale(&env(&[("LANG", "en_US.UTF-8")])));
    assert!(!ascii_locale(&env(&[("LANG", "C.utf8")])));
    assert!(ascii_locale(&env(&[("LANG", "zh_CN.UTF-8")])), "CJK");
    assert!(
        ascii_locale(&env(&[("LANG", "en_US.UTF-8"), ("LC_ALL", "POSIX")])),
        "LC_ALL first"
    );
    assert!(
        !ascii_locale(&env(&[("LANG", "C"), ("LC_CTYPE", "de_DE.UTF-8")])),
        "LC_CTYPE before LANG"
    );
    assert!(
        !ascii_locale(&env(&[("LANG", "en_US.UTF-8"), ("LC_ALL", "")])),
        "empty is unset"
    );
}

/// The side panels take the room a small grid leaves (they stayed 50 columns at 200 while the
/// grid sat in a wide empty box), and at 80×24 the cell panel keeps its lines (it showed 4).
#[test]
fn the_layout_gives_the_panels_the_room_the_grid_does_not_need() {
    let (mut s, _tmp) = fixture_state("tree-seed-run1", true);
    let wide =
        ckptscope::ui::render::areas_for(&s, ratatui::layout::Rect::new(0, 0, 200, 50)).unwrap();
    assert!(wide.detail.width >= 100, "{:?}", wide.detail);
    assert!(
        wide.grid.width >= 29 && wide.grid.width < 100,
        "{:?}",
        wide.grid
    );
    let small =
        ckptscope::ui::render::areas_for(&s, ratatui::layout::Rect::new(0, 0, 80, 24)).unwrap();
    assert!(small.detail.height >= 8, "{:?}", small.detail);
    let t = text(&frame(&mut s, 80, 24, COLOR));
    assert!(t.contains("43 records"), "{t}");
    // a grid of many steps keeps most of the screen
    let mut w = state_for(wide_tree(), true);
    let a =
        ckptscope::ui::render::areas_for(&w, ratatui::layout::Rect::new(0, 0, 200, 50)).unwrap();
    assert!(a.grid.width >= 100, "{:?}", a.grid);
    frame(&mut w, 200, 50, COLOR);
}

/// The demo's narration is a wrapped banner (its end was cut at 80 columns), with one `▶`
/// (not `▶ ▶`); the log reads oldest first, each line with its time.
#[test]
fn narration_wraps_in_a_banner_and_the_log_reads_oldest_first() {
    use ckptscope::demo::Cue;
    let (mut s, _tmp) = fixture_state("tree-seed-run1", true);
    let long = "▶ training: saves at steps 10, 20, 30, 40; the oldest file is rotated away at the fourth save";
    ckptscope::ui::on_cue(&mut s, Cue::Say(long.into()));
    ckptscope::ui::on_cue(&mut s, Cue::Say("  step   40: saved …".into()));
    ckptscope::ui::on_cue(&mut s, Cue::Waiting(true));
    let t = text(&frame(&mut s, 80, 24, COLOR));
    assert!(t.contains("fourth save"), "the whole narration: {t}");
    assert!(!t.contains("▶ ▶") && t.matches('▶').count() == 1, "{t}");
    // no presenter behind this state: no Space hint
    assert!(!t.contains("Space: next beat"), "{t}");
    let log: Vec<&str> = t.lines().filter(|l| l.contains("demo: ")).collect();
    assert_eq!(log.len(), 2, "{t}");
    assert!(
        log[0].contains("demo: training") && log[1].contains("demo: step"),
        "oldest first: {log:?}"
    );
    let clock = |l: &str| {
        let i = l.find(|c: char| c.is_ascii_digit()).unwrap();
        l[i..i + 8].to_owned()
    };
    let hhmmss = clock(log[0]);
    assert!(
        hhmmss.len() == 8 && hhmmss.as_bytes()[2] == b':' && hhmmss.as_bytes()[5] == b':',
        "{hhmmss}"
    );
}
