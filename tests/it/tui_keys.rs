//! Help and keys (issue 12): the help popup scrolls, filters, lays out in columns and swallows
//! keys; reset is undoable; edits that change nothing are not counted.

use crate::common::tui::*;
use ratatui::crossterm::event::KeyCode;

/// At 80×24 the help shows a page and says there is more; scrolling reaches the simulation
/// keys (it used to be cut at ~30 rows, so they never appeared).
#[test]
fn help_scrolls_to_the_simulation_keys_on_a_small_terminal() {
    let (mut s, _tmp) = seed_state(true);
    keys(&mut s, "?");
    let t = text(&frame(&mut s, 80, 24, COLOR));
    assert!(t.contains("— general —") && t.contains("for more"), "{t}");
    assert!(!t.contains("set the new global batch size"), "{t}");
    press(&mut s, KeyCode::End);
    let t = text(&frame(&mut s, 80, 24, COLOR));
    assert!(
        t.contains("set the new global batch size") && t.contains("reset the simulation"),
        "{t}"
    );
    assert!(!t.contains("for more"), "at the end: {t}");
    // and back
    press(&mut s, KeyCode::Home);
    let t = text(&frame(&mut s, 80, 24, COLOR));
    assert!(t.contains("— general —") && t.contains("lines 1–"), "{t}");
}

/// On a wide terminal every binding fits at once, in columns, with no scrolling.
#[test]
fn help_is_laid_out_in_columns_when_wide() {
    let (mut s, _tmp) = seed_state(true);
    keys(&mut s, "?");
    let term = frame(&mut s, 200, 50, COLOR);
    let t = text(&term);
    assert!(
        t.contains("— general —") && t.contains("reset the simulation"),
        "{t}"
    );
    assert!(
        !t.contains("for more") && !t.contains('…'),
        "all of it, whole: {t}"
    );
    // the first and the last binding side by side: columns
    let buf = term.backend().buffer();
    let (first, last) = (
        find(buf, "close the innermost popup").unwrap(),
        find(buf, "reset the simulation").unwrap(),
    );
    assert!(
        last.0 > first.0 + 40 && last.1 < first.1 + 40,
        "{first:?} {last:?}: {t}"
    );
    insta::assert_snapshot!("help_200x50", t);
}

/// `/` filters as you type; Enter keeps the filter, Esc in the filter clears it.
#[test]
fn help_filters_as_you_type() {
    let (mut s, _tmp) = seed_state(true);
    keys(&mut s, "?/batch");
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("filter: batch"), "{t}");
    assert!(
        t.contains("double the global batch size") && t.contains("halve the global batch size"),
        "{t}"
    );
    assert!(
        !t.contains("q            quit"),
        "only the matching bindings: {t}"
    );
    assert!(!t.contains("previous rank"), "{t}");
    press(&mut s, KeyCode::Enter);
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("matching 'batch'"), "{t}");
    keys(&mut s, "/zzz");
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(!t.contains("previous rank"), "{t}");
    press(&mut s, KeyCode::Enter);
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("no key matches 'zzz'"), "{t}");
}

/// A key pressed while the help is open goes to the help only: `?` then `x` used to close the
/// help *and* simulate a deletion.
#[test]
fn help_swallows_keys() {
    let (mut s, _tmp) = seed_state(true);
    keys(&mut s, "?xXcm");
    assert!(s.popup.is_some(), "still open");
    assert!(s.session.overlay().is_empty(), "nothing simulated");
    press(&mut s, KeyCode::Esc);
    assert!(s.popup.is_none());
    keys(&mut s, "L");
    keys(&mut s, "x");
    assert!(
        s.popup.is_some() && s.session.overlay().is_empty(),
        "legend too"
    );
    keys(&mut s, "q");
    assert!(
        s.popup.is_none() && !s.quit,
        "q closes the legend, not the program"
    );
    keys(&mut s, "x");
    assert_eq!(s.session.overlay().edits().len(), 1, "now x acts");
}

/// `R` is one more undoable step; `i i` and `<` at batch size 1 change nothing and are not
/// counted as edits.
#[test]
fn reset_is_undoable_and_no_op_edits_do_not_count() {
    let (mut s, _tmp) = seed_state(true);
    keys(&mut s, "jjjllx>");
    assert_eq!(s.session.overlay().edits().len(), 2);
    keys(&mut s, "R");
    assert!(s.session.overlay().is_empty());
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(!t.contains("SIMULATION"), "{t}");
    keys(&mut s, "u");
    assert_eq!(
        s.session.overlay().edits().len(),
        2,
        "undo brings the edits back"
    );
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("SIMULATION: 2 edit(s)"), "{t}");
    keys(&mut s, "R");
    assert_eq!(
        s.log.front().map(String::as_str),
        Some("simulation reset (u brings it back)")
    );
    keys(&mut s, "R");
    assert_eq!(s.log.front().map(String::as_str), Some("nothing to reset"));

    // a toggle and its toggle back: no edit
    keys(&mut s, "ii");
    assert!(s.session.overlay().is_empty(), "{:?}", s.session.overlay());
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(!t.contains("SIMULATION"), "{t}");
    // the same deletion twice is one edit
    keys(&mut s, "xx");
    assert_eq!(s.session.overlay().edits().len(), 1);
    keys(&mut s, "R");
    // halving down to 1, then once more: nothing more to simulate
    keys(&mut s, "<<<<");
    let n = s.session.overlay().edits().len();
    keys(&mut s, "<");
    assert_eq!(
        s.session.overlay().edits().len(),
        n,
        "no edit at batch size 1"
    );
    assert!(
        s.log.front().is_some_and(|l| l.contains("already 1")),
        "{:?}",
        s.log.front()
    );
    // setting a value replaces the earlier setting of it: one edit for the batch size
    assert_eq!(n, 1, "{:?}", s.session.overlay());
}

/// The key bar names the keys that matter now: the simulation's in a simulation, the help's
/// while it is open, thawing while frozen.
#[test]
fn the_key_bar_follows_what_the_screen_is_doing() {
    let (mut s, _tmp) = seed_state(true);
    let bar = |s: &mut ckptscope::ui::state::State| {
        text(&frame(s, 120, 40, COLOR))
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(bar(&mut s).contains("q quit  ? help"), "{}", bar(&mut s));
    keys(&mut s, "x");
    let b = bar(&mut s);
    assert!(
        b.contains("u undo  Ctrl-r redo  R reset  y copy (sim)"),
        "{b}"
    );
    keys(&mut s, "?");
    assert!(bar(&mut s).contains("/ filter"), "{}", bar(&mut s));
    press(&mut s, KeyCode::Esc);
    keys(&mut s, "uf");
    assert!(
        bar(&mut s).contains("f resume live updates"),
        "{}",
        bar(&mut s)
    );
    keys(&mut s, "b");
    assert!(bar(&mut s).contains("Enter apply"), "{}", bar(&mut s));
}
