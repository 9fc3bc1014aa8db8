//! The resume panel as a verdict card (issue 12): a coloured headline per resolver with why,
//! the ranks that differ, the settings of a simulation in words, progress instead of a false
//! "none intact", and a copied config that says whose it is.

use crate::common;
use crate::common::tui::*;
use ratatui::style::{Color, Modifier};

/// The style of the first cell of `needle` on screen.
fn style_of(t: &ratatui::Terminal<ratatui::backend::TestBackend>, needle: &str) -> (Color, bool) {
    let buf = t.backend().buffer();
    let (x, y) = find(buf, needle).unwrap_or_else(|| panic!("{needle} on screen"));
    let c = &buf[(x, y)];
    (c.fg, c.modifier.contains(Modifier::BOLD))
}

/// MindFormers picks a truncated shard: its headline is red and says which rank fails and
/// why; the safe pick is green, with the config change.
#[test]
fn a_failing_pick_and_the_safe_one_as_headlines() {
    let (mut s, _tmp) = fixture_state_with("tree-seed-run1", &Default::default(), |root| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(root.join("rank_2/llama3_1_8b_rank_2-20_2.ckpt"))
            .unwrap()
            .set_len(8_000)
            .unwrap();
    });
    let term = frame(&mut s, 120, 40, COLOR);
    let t = text(&term);
    assert!(t.contains("MindFormers → 20_2 ✗ fails: rank 2"), "{t}");
    assert!(t.contains("Safe → 15_2 ✓"), "{t}");
    assert!(
        t.contains("set resume_training: \"llama3_1_8b_rank_0-15_2.ckpt\""),
        "{t}"
    );
    assert!(t.contains("passed over 20_2"), "{t}");
    assert_eq!(style_of(&term, "MindFormers →"), (Color::LightRed, true));
    assert_eq!(style_of(&term, "Safe →"), (Color::Green, true));
    insta::assert_snapshot!("card_fails_120x40", t);
}

/// Ranks that resume from different steps are named, not hidden behind "newest by mtime".
#[test]
fn ranks_that_resume_from_different_steps_are_named() {
    let flags = ckptscope::JobFlags {
        by_last_timestamp: true,
        ..Default::default()
    };
    let (mut s, _tmp) = fixture_state_with("tree-seed-run1", &flags, |root| {
        // rank 3's newest file by mtime is its 15_2
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(root.join("rank_3/llama3_1_8b_rank_3-20_2.ckpt"))
            .unwrap()
            .set_modified(old)
            .unwrap();
    });
    let t = text(&frame(&mut s, 160, 40, COLOR));
    assert!(t.contains("MindFormers → ranks differ"), "{t}");
    assert!(
        t.contains("ranks 0–2 → 20_2 (newest) · rank 3 → 15_2 (newest)"),
        "{t}"
    );
}

/// The simulation's settings in words (`gbs 8 → 12`, not a scale), every one of them.
#[test]
fn simulated_settings_are_listed_in_words() {
    let (mut s, _tmp) = fixture_state("tree-seed-run1", true);
    keys(&mut s, "b12");
    press(&mut s, ratatui::crossterm::event::KeyCode::Enter);
    keys(&mut s, "is5");
    press(&mut s, ratatui::crossterm::event::KeyCode::Enter);
    keys(&mut s, "r");
    let t = text(&frame(&mut s, 200, 50, COLOR));
    for want in [
        "gbs 8 → 12",
        "ignore_data_skip true",
        "data_skip_steps unset → 5",
        "resume_training: \"llama3_1_8b_rank_0-20_2.ckpt\"",
    ] {
        assert!(t.contains(want), "{want}: {t}");
    }
    assert!(t.contains("real") && t.contains("simulated"), "{t}");
}

/// While the first verification pass runs, the safe pick says how far it got instead of
/// "none intact".
#[test]
fn the_safe_pick_shows_progress_while_verifying() {
    let ranks: Vec<Vec<(String, i64)>> = (0..4)
        .map(|r| {
            (1..=3)
                .map(|e| (format!("llama_rank_{r}-{e}_2.ckpt"), e))
                .collect()
        })
        .collect();
    let mut s = state_for(common::mem_tree("/m/checkpoint", &ranks, &[]), true);
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("Safe → none intact"), "not verifying: {t}");
    s.verifying = true;
    let t = text(&frame(&mut s, 120, 40, COLOR));
    assert!(t.contains("Safe → verifying 0 / 12 shards"), "{t}");
    assert!(!t.contains("none intact"), "{t}");
}

/// `y` in a simulation copies the simulated pick and says so; `load_checkpoint` is absolute
/// even when the folder was given relative.
#[test]
fn yank_says_simulated_and_writes_an_absolute_path() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_fixture("tree-seed-run1", tmp.path());
    let env = ckptscope::Environment::with(&[], tmp.path());
    let ctx = ckptscope::JobContext::gather(
        &ckptscope::fsys::RealFs,
        &env,
        "checkpoint",
        &Default::default(),
    )
    .unwrap();
    let mut session = ckptscope::Session::open(std::sync::Arc::new(ckptscope::fsys::RealFs), ctx);
    common::verify_all(&mut session);
    let mut s = fixed(ckptscope::ui::state::State::new(session, true));
    keys(&mut s, "jjjllx"); // rank 3's 20_2 deleted: the safe pick becomes 15_2
    keys(&mut s, "y");
    let copied = s.clipboard.clone().expect("copied");
    let canonical = std::fs::canonicalize(tmp.path().join("checkpoint")).unwrap();
    assert_eq!(
        copied,
        format!(
            "load_checkpoint: {}\nresume_training: \"llama3_1_8b_rank_0-15_2.ckpt\"\n",
            canonical.display()
        )
    );
    assert!(
        s.log.front().unwrap().starts_with("copied (simulated)"),
        "{:?}",
        s.log.front()
    );
    keys(&mut s, "R");
    keys(&mut s, "y");
    assert!(
        s.log.front().unwrap().starts_with("copied: "),
        "{:?}",
        s.log.front()
    );
}

/// A demo variation arrives as simulated settings: the card shows it in words beside the real
/// one, and the next variation replaces it (not piles on it).
#[test]
fn a_demo_variation_becomes_simulated_settings() {
    use ckptscope::demo::Cue;
    use ckptscope::sim::Edit;
    let (mut s, _tmp) = fixture_state("tree-seed-run1", true);
    ckptscope::ui::on_cue(
        &mut s,
        Cue::Simulate {
            label: "ignore_data_skip: True".into(),
            edits: vec![Edit::SetIgnoreDataSkip { value: true }],
        },
    );
    ckptscope::ui::on_cue(
        &mut s,
        Cue::Simulate {
            label: "global batch size 16".into(),
            edits: vec![Edit::SetGlobalBatchSize { value: 16 }],
        },
    );
    assert_eq!(s.session.overlay().edits().len(), 1);
    let t = text(&frame(&mut s, 200, 50, COLOR));
    assert!(t.contains("simulated: gbs 8 → 16"), "{t}");
    assert!(!t.contains("ignore_data_skip true"), "replaced: {t}");
    assert!(t.contains("skip 20 · first step 22"), "{t}");
}
