//! Every scenario in `demo/` replayed headless at full speed: each states its outcome, and the
//! resolver must give it. The files the trainer writes verify as `ok`, and nothing is written
//! outside the demo's folder.

use ckptscope::demo::scenario::{load, BUILTIN};
use ckptscope::demo::trainer::Play;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[test]
fn every_scenario_demonstrates_its_outcome() {
    let mut failures = Vec::new();
    for (name, _) in BUILTIN {
        let sc = load(name).unwrap();
        assert!(!sc.expect.is_empty(), "{name} states an outcome to check");
        let tmp = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let play = Play {
            root: tmp.path().join("checkpoint"),
            scenario: &sc,
            pace: Duration::ZERO,
            stop: &stop,
            presenter: None,
        };
        let mut lines = Vec::new();
        play.play(&mut |l: &str| lines.push(l.to_owned())).unwrap();
        for (label, ok, got) in play.check() {
            if !ok {
                failures.push(format!("{name} / {label}: {got}\n  {}", lines.join("\n  ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn written_files_verify_ok_and_stay_in_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let sc = load("seed-walkthrough").unwrap();
    let stop = AtomicBool::new(false);
    Play {
        root: out.join("checkpoint"),
        scenario: &sc,
        pace: Duration::from_millis(5),
        stop: &stop,
        presenter: None,
    }
    .play(&mut |_: &str| {})
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["verify", out.join("checkpoint").to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["by_verdict"]["ok"], 12, "{v:#}");
    assert_eq!(
        v["summary"]["by_verdict"]["in_progress"], 4,
        "the kill left one .tmp per rank"
    );
    let top: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["run"]);
}

#[test]
fn headless_demo_command() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["demo", "--list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    for (name, _) in BUILTIN {
        assert!(list.contains(name), "{list}");
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["demo", "fault-recovery", "--no-tui", "--speed", "100"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{s}");
    assert!(
        s.contains("resume from llama3_1_8b_rank_0-15_2.ckpt; data skip 30; first printed step 32"),
        "{s}"
    );
    assert!(s.contains("✓"), "{s}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["demo", "truncated-shard", "--ndjson", "--speed", "100"])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "check" && l["ok"] == true),
        "{lines:?}"
    );
}

/// Presenter mode holds after every beat and cues the screen: where the fault happened, and
/// (for `dataset-change`) each variation as simulated settings, one beat each.
#[test]
fn presenter_mode_holds_each_beat_and_cues_the_screen() {
    use ckptscope::demo::{Cue, Presenter};
    let play_with = |name: &str| -> Vec<Cue> {
        let sc = load(name).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let (cues, got) = crossbeam_channel::unbounded();
        let (next, waits) = crossbeam_channel::unbounded();
        // the presenter: Space as soon as the trainer waits
        let presenter = Presenter {
            next: waits,
            dwell: None,
            cues,
        };
        let seen = std::thread::scope(|sc_| {
            let reader = sc_.spawn(|| {
                let mut seen = Vec::new();
                for c in got.iter() {
                    if c == Cue::Waiting(true) {
                        next.send(()).unwrap();
                    }
                    seen.push(c);
                }
                seen
            });
            Play {
                root: tmp.path().join("checkpoint"),
                scenario: &sc,
                pace: Duration::ZERO,
                stop: &stop,
                presenter: Some(&presenter),
            }
            .play(&mut |_: &str| {})
            .unwrap();
            drop(presenter);
            reader.join().unwrap()
        });
        seen
    };
    let cues = play_with("fault-recovery");
    let holds = cues.iter().filter(|c| **c == Cue::Waiting(true)).count();
    assert_eq!(holds, 2, "one hold per beat (train, fault): {cues:?}");
    assert!(
        cues.contains(&Cue::Focus {
            rank: 3,
            step: Some("20_2".into())
        }),
        "{cues:?}"
    );
    let cues = play_with("dataset-change");
    let sims: Vec<&Cue> = cues
        .iter()
        .filter(|c| matches!(c, Cue::Simulate { .. }))
        .collect();
    assert_eq!(sims.len(), 3, "three variations: {cues:?}");
    assert!(matches!(sims[2], Cue::Simulate { edits, .. }
        if edits == &vec![ckptscope::sim::Edit::SetGlobalBatchSize { value: 16 }]));
    assert_eq!(
        cues.iter().filter(|c| **c == Cue::Waiting(true)).count(),
        4,
        "train + three variations"
    );
}
