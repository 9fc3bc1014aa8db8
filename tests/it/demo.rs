//! The headless demo: the seed walkthrough written by the checkpoint writer resolves as the
//! spec says after every save (40/42 after the fourth), and the seed's fault gives 30/32.

use ckptscope::verify::ckpt::{walk_detailed, StreamEnd};
use std::process::Command;

#[test]
fn demo_prints_the_seed_walkthrough() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args([
            "demo",
            "seed-walkthrough",
            "--no-tui",
            "--speed",
            "50",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{s}");
    let saves: Vec<&str> = s
        .lines()
        .filter(|l| l.trim_start().starts_with("step "))
        .collect();
    assert_eq!(saves.len(), 4, "{s}");
    assert!(
        saves[0].contains("llama3_1_8b_rank_0-5_2.ckpt")
            && saves[0].contains("data skip 10; first printed step 12"),
        "{s}"
    );
    assert!(
        saves[3].contains("llama3_1_8b_rank_0-20_2.ckpt")
            && saves[3].contains("data skip 40; first printed step 42"),
        "{s}"
    );
    assert!(s.contains("✓ check 1: MindFormers llama3_1_8b_rank_0-20_2.ckpt; safe llama3_1_8b_rank_0-20_2.ckpt; skip 40; first printed 42"), "{s}");
    // what it wrote: keep 3 per rank, the killed save's .tmp, 0400 files, meta.json with MindFormers' exact bytes
    let rank0 = out.join("checkpoint/rank_0");
    let mut names: Vec<String> = std::fs::read_dir(&rank0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "llama3_1_8b_rank_0-10_2.ckpt",
            "llama3_1_8b_rank_0-15_2.ckpt",
            "llama3_1_8b_rank_0-20_2.ckpt",
            "llama3_1_8b_rank_0-25_2.tmp",
            "meta.json"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(rank0.join("meta.json")).unwrap(),
        r#"{"last_epoch": 20, "last_step": 2, "last_ckpt_file": "llama3_1_8b_rank_0-20_2.ckpt"}"#
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(rank0.join("llama3_1_8b_rank_0-20_2.ckpt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o400
    );
}

/// The writer's `.ckpt` has the structure of MindSpore's: record order, tags, types and dims
/// of the fixture `tree-seed` file, and the first-run append-entry order.
#[test]
fn written_ckpt_matches_the_fixture_structure() {
    let fx = crate::common::fixtures();
    let real = fx.join("tree-seed-run1/checkpoint/rank_0/llama3_1_8b_rank_0-20_2.ckpt");
    let bytes = std::fs::read(&real).unwrap();
    let want = walk_detailed(std::io::Cursor::new(bytes.clone()), bytes.len() as u64);
    let ours = ckptscope::writer::ckpt::checkpoint_bytes(
        0,
        1,
        &ckptscope::writer::ckpt::AppendEntries {
            epoch_num: 20,
            step_num: 40,
            loss_scale: 4096.0,
            global_batch_size: Some(8),
            resumed: false,
        },
    );
    let got = walk_detailed(std::io::Cursor::new(ours.clone()), ours.len() as u64);
    assert_eq!(got.end, StreamEnd::Complete);
    let shape = |w: &ckptscope::verify::ckpt::CkptWalk| -> Vec<(String, String, Vec<u64>, u64)> {
        w.record_list
            .iter()
            .map(|r| {
                (
                    r.tag.clone(),
                    r.tensor_type.clone(),
                    r.dims.clone(),
                    r.content_len,
                )
            })
            .collect()
    };
    assert_eq!(shape(&got), shape(&want));
    assert_eq!(got.append, want.append);
    assert_eq!(got.append_order, want.append_order);
    assert_eq!(ours.len(), bytes.len());
}

/// A resumed launch into the same folders: restart suffix `_1`, the older run's files kept,
/// rotation among the new prefix only, and the resumed-run append order — as in `tree-seed`.
#[test]
fn resumed_launch_matches_tree_seed() {
    use ckptscope::writer::run::{run, Launch};
    let fx = crate::common::fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    run(&root, &Launch::seed(), |_| true).unwrap();
    let resumed = Launch {
        initial_step: 40,
        initial_epoch: 20,
        steps: 20,
        ..Launch::seed()
    };
    run(&root, &resumed, |_| true).unwrap();
    for r in 0..4 {
        let listing = |dir: &std::path::Path| {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let rel = format!("checkpoint/rank_{r}");
        assert_eq!(
            listing(&tmp.path().join(&rel)),
            listing(&fx.join("tree-seed").join(&rel)),
            "rank {r}"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(&rel).join("meta.json")).unwrap(),
            std::fs::read_to_string(fx.join("tree-seed").join(&rel).join("meta.json")).unwrap()
        );
    }
    let ours = std::fs::read(root.join("rank_0/llama3_1_8b_rank_0_1-30_2.ckpt")).unwrap();
    let real = std::fs::read(fx.join("tree-seed/checkpoint/rank_0/llama3_1_8b_rank_0_1-30_2.ckpt"))
        .unwrap();
    let (a, b) = (
        walk_detailed(std::io::Cursor::new(&ours), ours.len() as u64),
        walk_detailed(std::io::Cursor::new(&real), real.len() as u64),
    );
    assert_eq!(a.append_order, b.append_order);
    // global_step sits among the optimizer state; the tail is in resumed-run order
    assert_eq!(
        a.append_order,
        [
            "global_step",
            "step_num",
            "epoch_num",
            "loss_scale",
            "global_batch_size"
        ]
        .map(String::from)
        .to_vec()
    );
    assert_eq!(a.append, b.append);
    let tags = |w: &ckptscope::verify::ckpt::CkptWalk| {
        w.record_list
            .iter()
            .map(|r| (r.tag.clone(), r.tensor_type.clone(), r.dims.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(tags(&a), tags(&b));
}

/// `--out` may be relative: the demo resolves it once, against the working folder.
#[test]
fn a_relative_out_folder_works() {
    let tmp = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["demo", "--no-tui", "--out", "rel"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("✓ check 1"), "{text}");
    assert!(tmp.path().join("rel/checkpoint/rank_0").is_dir());
}
