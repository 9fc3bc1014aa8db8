//! Every row of the spec's test-vector tables (§7.1, §7.2, §7.3) and the corrections of §13,
//! run through the real scan and the MindFormers resolver.

use crate::common;
use ckptscope::layout::mindformers::names::Fmt;
use ckptscope::resolve::config::ResumeTraining;
use ckptscope::resolve::mindformers::RankResult;
use common::*;

#[test]
fn a_seed_layout() {
    let mut t = TestTree::new();
    t.seed(4);
    let r = t.resolve();
    assert_step(&r, "20_2");
    let d = t.d();
    assert_eq!(
        r.record.as_deref(),
        Some(format!("{d}/rank_0/llama_rank_0-10_2.ckpt\n{d}/rank_0/llama_rank_0-15_2.ckpt\n{d}/rank_0/llama_rank_0-20_2.ckpt\n").as_str())
    );
}

#[test]
fn b_rank3_lost_20_2() {
    let mut t = TestTree::new();
    t.seed(4).rm("rank_3/llama_rank_3-20_2.ckpt");
    assert_step(&t.resolve(), "15_2");
}

#[test]
fn c_meta_missing_on_one_rank() {
    let mut t = TestTree::new();
    t.seed(4).rm("rank_2/meta.json");
    let r = t.resolve();
    assert_step(&r, "20_2");
    assert!(r
        .log
        .iter()
        .any(|l| l.ends_with("rank_2/meta.json is not found.")));
}

#[test]
fn d_no_meta_consistent_newest() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.rm(&format!("rank_{r}/meta.json"));
    }
    let r = t.resolve();
    assert_newest(&r);
    assert_eq!(r.record.as_deref(), Some("FOUND NO META.JSON"));
}

#[test]
fn e_no_meta_inconsistent_newest() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.rm(&format!("rank_{r}/meta.json"));
    }
    t.touch("rank_1/llama_rank_1-15_2.ckpt");
    let r = t.resolve();
    assert_err(
        &r,
        "Check name of the checkpoint file with the last timestamp Failed.",
    );
    let full = r.rank0_error.expect("rank 0 error").message;
    assert_eq!(
        full,
        "Check name of the checkpoint file with the last timestamp Failed.\n1. Find 2 different checkpoints name: llama_rank_0-20_2.ckpt and llama_rank_1-15_2.ckpt.\n2. Checkpoint file name should follow rule: {prefix}-{epoch}_{step}.ckpt, and not corrupted across all rank folders.\n 3. Rename `resume_training` checkpoint such as llama_7b_rank_0-3_2.ckpt may solve the problem."
    );
}

#[test]
fn f_minimum_of_metas() {
    let mut t = TestTree::new();
    t.seed(4).meta(1, 15, 2, "llama_rank_1-15_2.ckpt");
    assert_step(&t.resolve(), "15_2");
}

#[test]
fn g_invalid_metas_skipped() {
    let mut t = TestTree::new();
    t.seed(4)
        .meta_raw(0, "{corrupt")
        .meta_raw(
            1,
            r#"{"last_epoch": "20", "last_step": 2, "last_ckpt_file": "llama_rank_1-20_2.ckpt"}"#,
        )
        .meta_raw(2, "{}");
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn h_gaps_on_two_ranks() {
    let mut t = TestTree::new();
    t.seed(4)
        .rm("rank_1/llama_rank_1-15_2.ckpt")
        .rm("rank_2/llama_rank_2-20_2.ckpt");
    let r = t.resolve();
    assert_step(&r, "10_2");
    assert!(
        r.log
            .iter()
            .any(|l| l == "llama_rank_1-15_2.ckpt is not found."),
        "{:?}",
        r.log
    );
}

#[test]
fn i_no_common_step() {
    let mut t = TestTree::new();
    t.seed(4)
        .rm("rank_0/llama_rank_0-15_2.ckpt")
        .rm("rank_0/llama_rank_0-20_2.ckpt")
        .rm("rank_1/llama_rank_1-10_2.ckpt")
        .rm("rank_1/llama_rank_1-20_2.ckpt")
        .rm("rank_2/llama_rank_2-10_2.ckpt")
        .rm("rank_2/llama_rank_2-15_2.ckpt");
    assert_err(&t.resolve(), "No checkpoint could be resumed.");
}

#[test]
fn j_explicit_name_checks_nothing() {
    let mut t = TestTree::new();
    t.seed(4)
        .resume(ResumeTraining::Name("llama_rank_0-15_2".into()));
    let r = t.resolve();
    assert_step(&r, "15_2");
    assert_eq!(r.record, None);
}

#[test]
fn k_stray_rank_file_inflates_n() {
    let mut t = TestTree::new();
    t.seed(4).file("rank_notes.txt", b"notes");
    let r = t.resolve();
    assert_eq!(r.per_rank.len(), 5);
    assert_err(&r, &format!("{}/rank_4 is not found!", t.d()));
}

fn second_run(t: &mut TestTree) {
    t.seed(4);
    for r in 0..4 {
        t.file(&format!("rank_{r}/llama_rank_{r}_1-25_2.ckpt"), b"x");
        t.file(&format!("rank_{r}/llama_rank_{r}_1-30_2.ckpt"), b"x");
        t.meta(r, 30, 2, &format!("llama_rank_{r}_1-30_2.ckpt"));
    }
}

#[test]
fn l_second_run() {
    let mut t = TestTree::new();
    second_run(&mut t);
    assert_all(&t.resolve(), |r| format!("llama_rank_{r}_1-30_2.ckpt"));
}

#[test]
fn m_second_run_gap() {
    let mut t = TestTree::new();
    second_run(&mut t);
    t.rm("rank_3/llama_rank_3_1-30_2.ckpt");
    assert_all(&t.resolve(), |r| format!("llama_rank_{r}_1-25_2.ckpt"));
}

#[test]
fn n_older_prefix_is_no_fallback() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.file(&format!("rank_{r}/llama_rank_{r}_1-25_2.ckpt"), b"x");
        t.meta(r, 25, 2, &format!("llama_rank_{r}_1-25_2.ckpt"));
    }
    t.rm("rank_3/llama_rank_3_1-25_2.ckpt");
    assert_err(&t.resolve(), "No checkpoint could be resumed.");
}

#[test]
fn o_breakpoint_file() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.file(
            &format!("rank_{r}/llama_rank_{r}-20_2_breakpoint.ckpt"),
            b"x",
        );
    }
    assert_err(
        &t.resolve(),
        "Can't match epoch and step from checkpoint file: llama_rank_0-20_2_breakpoint.ckpt. Please ensure the format of the checkpoint file name is {prefix}-{epoch}_{step}.ckpt, for example, llama_7b_rank_0-3_2.ckpt.",
    );
}

#[test]
fn p_tmp_ignored() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.file(&format!("rank_{r}/llama_rank_{r}-25_2.tmp"), b"x");
    }
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn q_numeric_order() {
    let mut t = TestTree::new();
    for r in 0..4 {
        for es in ["10_2", "9_4", "20_1"] {
            t.file(&format!("rank_{r}/llama_rank_{r}-{es}.ckpt"), b"x");
        }
        t.meta(r, 20, 1, &format!("llama_rank_{r}-20_1.ckpt"));
    }
    let r = t.resolve();
    assert_step(&r, "20_1");
    let d = t.d();
    assert_eq!(
        r.record.as_deref(),
        Some(format!("{d}/rank_0/llama_rank_0-9_4.ckpt\n{d}/rank_0/llama_rank_0-10_2.ckpt\n{d}/rank_0/llama_rank_0-20_1.ckpt\n").as_str())
    );
}

#[test]
fn r_empty_rank_folder_with_meta_on_rank0() {
    let mut t = TestTree::new();
    t.seed(1).dir("rank_1");
    assert_err(&t.resolve(), "No checkpoint could be resumed.");
}

#[test]
fn s_no_meta_empty_rank_folder() {
    let mut t = TestTree::new();
    t.seed(1).rm("rank_0/meta.json").dir("rank_1");
    assert_err(
        &t.resolve(),
        "expected str, bytes or os.PathLike object, not NoneType",
    );
}

#[test]
fn t_rank0_folder_deleted() {
    let mut t = TestTree::new();
    t.seed(2).rm("rank_0").world(2);
    let r = t.resolve();
    assert_eq!(r.per_rank.len(), 2);
    assert_err(
        &r,
        &format!("{}/rank_0 is not a real directory,When distributed loads are sliced weights,load_checkpoint should be a checkpoint directory containing the directory of rank_{{0-*}},The directory structure is as follows: **checkpoint_root_dir/rank_{{0-*}}/**.ckpt", t.d()),
    );
}

fn safetensors_seed(t: &mut TestTree, ranks: u64, metas: bool) {
    for r in 0..ranks {
        for e in [10, 15, 20] {
            t.file(&format!("rank_{r}/llama_rank_{r}-{e}_2.safetensors"), b"x");
        }
        if metas {
            t.meta(r, 20, 2, &format!("llama_rank_{r}-20_2.safetensors"));
        }
    }
    t.fmt(Fmt::Safetensors);
}

#[test]
fn u_safetensors_with_metas() {
    let mut t = TestTree::new();
    safetensors_seed(&mut t, 4, true);
    assert_all(&t.resolve(), |r| format!("llama_rank_{r}-20_2.safetensors"));
}

#[test]
fn v_by_last_timestamp() {
    let mut t = TestTree::new();
    t.seed(4);
    t.cfg.by_last_timestamp = true;
    let r = t.resolve();
    assert_newest(&r);
    assert_eq!(r.record, None);
}

#[test]
fn w_multinode_not_shared() {
    let mut t = TestTree::new();
    t.seed(12);
    assert_newest(&t.resolve());
}

#[test]
fn w2_shared_paths() {
    let mut t = TestTree::new();
    t.seed(12).meta(11, 15, 2, "llama_rank_11-15_2.ckpt");
    let d = t.d();
    t.env.shared_paths = Some(d.clone());
    t.paths.shared_realpaths = vec![(d.clone(), d)];
    assert_step(&t.resolve(), "15_2");
}

#[test]
fn x_small_nodes() {
    let mut t = TestTree::new();
    t.seed(4);
    t.env.device_num_per_node = 2;
    assert_newest(&t.resolve());
}

#[test]
fn y_safetensors_no_meta_bug() {
    let mut t = TestTree::new();
    safetensors_seed(&mut t, 4, false);
    assert_err(
        &t.resolve(),
        "expected str, bytes or os.PathLike object, not NoneType",
    );
}

#[test]
fn z_no_rank_entries() {
    let mut t = TestTree::new();
    t.file("notes.txt", b"x").world(2);
    let r = t.resolve();
    assert_newest(&r);
    assert_eq!(r.record.as_deref(), Some("FOUND NO META.JSON"));
}

#[test]
fn aa_all_newest_nonconforming() {
    let mut t = TestTree::new();
    t.seed(2);
    for r in 0..2 {
        t.rm(&format!("rank_{r}/meta.json"));
        t.file(&format!("rank_{r}/final_weights.ckpt"), b"x");
    }
    assert_newest(&t.resolve());
}

#[test]
fn ab_mixed_conformance() {
    let mut t = TestTree::new();
    t.seed(2);
    for r in 0..2 {
        t.rm(&format!("rank_{r}/meta.json"));
    }
    t.file("rank_0/final_weights.ckpt", b"x");
    assert_err(&t.resolve(), "Some checkpoints follow the {prefix}-{epoch}_{step}.ckpt naming convention, while others do not.");
}

#[test]
fn ac_ao_meta_file_with_directory() {
    let mut t = TestTree::new();
    t.seed(4).meta(1, 15, 2, "sub/llama_rank_1-15_2.ckpt");
    assert_err(&t.resolve(), "No checkpoint could be resumed.");
}

#[test]
fn ad_bool_epoch() {
    let mut t = TestTree::new();
    t.seed(4).meta_raw(
        0,
        r#"{"last_epoch": true, "last_step": 2, "last_ckpt_file": "llama_rank_0-20_2.ckpt"}"#,
    );
    assert_err(
        &t.resolve(),
        "Can't match epoch and step from checkpoint file: llama_rank_0-True_2.ckpt. Please ensure the format of the checkpoint file name is {prefix}-{epoch}_{step}.ckpt, for example, llama_7b_rank_0-3_2.ckpt.",
    );
}

#[test]
fn ae_fields_win_over_file() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.meta(r, 15, 2, &format!("llama_rank_{r}-20_2.ckpt"));
    }
    assert_step(&t.resolve(), "15_2");
}

#[test]
fn af_meta_is_upper_bound_only() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.meta(r, 99, 2, &format!("llama_rank_{r}-99_2.ckpt"));
    }
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn ag_other_prefix_in_meta() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.meta(r, 20, 2, &format!("other_rank_{r}-20_2.ckpt"));
    }
    assert_err(&t.resolve(), "No checkpoint could be resumed.");
}

#[test]
fn ah_bak_ignored() {
    let mut t = TestTree::new();
    t.seed(4).file("rank_1/llama_rank_1-20_2.ckpt.bak", b"x");
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn ai_list_meta() {
    let mut t = TestTree::new();
    t.seed(4).meta_raw(1, "[1, 2]");
    assert_err(&t.resolve(), "'list' object has no attribute 'get'");
}

#[test]
fn aj_ak_null_and_empty_metas_skipped() {
    let mut t = TestTree::new();
    t.seed(4).meta_raw(1, "null").meta_raw(2, "");
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn al_float_epoch_skipped() {
    let mut t = TestTree::new();
    t.seed(4).meta_raw(
        1,
        r#"{"last_epoch": 10.0, "last_step": 2, "last_ckpt_file": "llama_rank_1-10_2.ckpt"}"#,
    );
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn an_meta_is_a_directory() {
    let mut t = TestTree::new();
    t.seed(4).rm("rank_1/meta.json").dir("rank_1/meta.json");
    assert_err(
        &t.resolve(),
        &format!("[Errno 21] Is a directory: '{}/rank_1/meta.json'", t.d()),
    );
}

#[test]
fn aq_extra_keys_ignored() {
    let mut t = TestTree::new();
    t.seed(4).meta_raw(1, r#"{"last_epoch": 20, "last_step": 2, "last_ckpt_file": "llama_rank_1-20_2.ckpt", "x": [1]}"#);
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn v1_safetensors_no_meta_with_ckpt_files() {
    let mut t = TestTree::new();
    safetensors_seed(&mut t, 2, false);
    for r in 0..2 {
        t.file(&format!("rank_{r}/llama_rank_{r}-5_2.ckpt"), b"x");
    }
    t.touch("rank_0/llama_rank_0-20_2.safetensors")
        .touch("rank_1/llama_rank_1-20_2.safetensors");
    assert_err(&t.resolve(), "Some checkpoints follow the {prefix}-{epoch}_{step}.safetensors naming convention, while others do not.");
}

#[test]
fn v2_no_ckpt_in_rank0() {
    let mut t = TestTree::new();
    t.file("rank_0/notes.txt", b"x")
        .file("rank_1/llama_rank_1-20_2.ckpt", b"x");
    assert_err(
        &t.resolve(),
        &format!(
            "Checkpoint not found under {}/rank_0 with config.load_ckpt_format:ckpt.",
            t.d()
        ),
    );
}

#[test]
fn v3_safetensors_files_with_ckpt_format() {
    let mut t = TestTree::new();
    safetensors_seed(&mut t, 2, true);
    t.fmt(Fmt::Ckpt);
    assert_err(
        &t.resolve(),
        &format!(
            "Checkpoint not found under {}/rank_0 with config.load_ckpt_format:ckpt.",
            t.d()
        ),
    );
}

#[test]
fn v4_explicit_name_without_rank() {
    let mut t = TestTree::new();
    t.seed(4).resume(ResumeTraining::Name("llama-15_2".into()));
    let r = t.resolve();
    assert_raises(&r, "ValueError", "Can't match rank id from checkpoint file: llama-15_2.ckpt. Please ensure the name of the checkpoint file is xxx_rank_x-{epoch}_{step}, for example, llama_7b_rank_0-3_2.");
    assert_eq!(r.record, None);
}

#[test]
fn v5_explicit_name_other_extension() {
    let mut t = TestTree::new();
    t.seed(4)
        .resume(ResumeTraining::Name("llama_rank_0-15_2.safetensors".into()));
    assert_all(&t.resolve(), |r| {
        format!("llama_rank_{r}-15_2.safetensors.ckpt")
    });
}

#[test]
fn v6_meta_file_without_rank() {
    let mut t = TestTree::new();
    t.seed(4).meta(0, 20, 2, "foo-20_2.ckpt");
    assert_err(&t.resolve(), "Can't match rank id from checkpoint file: foo-20_2.ckpt. Please ensure the name of the checkpoint file is xxx_rank_x-{epoch}_{step}, for example, llama_7b_rank_0-3_2.");
}

#[test]
fn v7_rank_folder_is_a_file() {
    let mut t = TestTree::new();
    t.seed(2).file("rank_2", b"x");
    assert_err(
        &t.resolve(),
        &format!("[Errno 20] Not a directory: '{}/rank_2'", t.d()),
    );
}

#[test]
fn v8_stray_rank_dir() {
    let mut t = TestTree::new();
    t.seed(2).dir("rank_0_old");
    assert_err(&t.resolve(), &format!("{}/rank_2 is not found!", t.d()));
}

fn v9_tree(t: &mut TestTree) {
    t.seed(2);
    t.file("rank_0/llama_rank_0_2-15_2.ckpt", b"x")
        .file("rank_0/llama_rank_0_2-20_2.ckpt", b"x")
        .file("rank_1/llama_rank_1_2-15_2.ckpt", b"x")
        .meta(0, 20, 2, "llama_rank_0_2-20_2.ckpt")
        .meta(1, 20, 2, "llama_rank_1_2-20_2.ckpt");
}

#[test]
fn v9_health_mode_mixes_runs() {
    let mut t = TestTree::new();
    v9_tree(&mut t);
    t.health()
        .health_json(r#"[{"is_health": 0, "ckpt_name": "llama_rank_0_2-15_2.ckpt"}]"#);
    let r = t.resolve();
    assert_all(&r, |rank| format!("llama_rank_{rank}_2-15_2.ckpt"));
    let lines: Vec<&str> = r
        .record
        .as_deref()
        .unwrap()
        .lines()
        .map(|l| l.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "llama_rank_0-10_2.ckpt");
    // the 20_2 group mixed both runs and took whichever rank-0 name listdir gave first
    assert!(
        lines[1] == "llama_rank_0-20_2.ckpt" || lines[1] == "llama_rank_0_2-20_2.ckpt",
        "{lines:?}"
    );
    assert_eq!(lines[2], "llama_rank_0_2-15_2.ckpt");
}

#[test]
fn v9_without_health_mode() {
    let mut t = TestTree::new();
    v9_tree(&mut t);
    let r = t.resolve();
    assert_all(&r, |rank| format!("llama_rank_{rank}_2-15_2.ckpt"));
    assert_eq!(r.record.as_deref().unwrap().lines().count(), 1);
}

#[test]
fn v10_no_healthy_entry() {
    let mut t = TestTree::new();
    t.seed(2)
        .health()
        .health_json(r#"[{"is_health": 1, "ckpt_name": "a"}]"#);
    assert_err(
        &t.resolve(),
        "The training has no healthy checkpoints yet, please start training again.",
    );
}

#[test]
fn v11_false_counts_as_healthy() {
    let mut t = TestTree::new();
    t.seed(2).health().health_json(r#"[{"is_health": false}]"#);
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn v12_highest_rank_folder_deleted() {
    let mut t = TestTree::new();
    t.seed(3).rm("rank_2").world(3);
    let r = t.resolve();
    assert_eq!(r.rank_entries, Some(2));
    assert_step(&r, "20_2");
}

#[test]
fn v13_negative_epoch() {
    let mut t = TestTree::new();
    t.seed(4).meta(1, -1, 2, "llama_rank_1-20_2.ckpt");
    assert_err(&t.resolve(), "No checkpoint could be resumed.");
}

#[test]
fn v14_single_file_in_root() {
    let mut t = TestTree::new();
    t.file("x-1_1.ckpt", b"x").world(2);
    let r = t.resolve();
    assert_newest(&r);
    assert_eq!(r.record.as_deref(), Some("FOUND NO META.JSON"));
}

#[test]
fn v15_leading_zero_joins_group() {
    let mut t = TestTree::new();
    t.seed(4)
        .rm("rank_1/llama_rank_1-20_2.ckpt")
        .file("rank_1/llama_rank_1-020_2.ckpt", b"x");
    // the 20_2 group on rank 0 lists rank 0's name; rank 1 contributes its 020_2 file
    assert_step(&t.resolve(), "20_2");
}

#[test]
fn v16_old_prefix_breakpoint_ignored() {
    let mut t = TestTree::new();
    t.seed(4);
    for r in 0..4 {
        t.file(&format!("rank_{r}/llama_rank_{r}_1-25_2.ckpt"), b"x");
        t.meta(r, 25, 2, &format!("llama_rank_{r}_1-25_2.ckpt"));
    }
    t.file("rank_0/llama_rank_0-20_2_breakpoint.ckpt", b"x");
    assert_all(&t.resolve(), |r| format!("llama_rank_{r}_1-25_2.ckpt"));
}

#[test]
fn v17_equal_mtimes_single_rank() {
    let mut t = TestTree::new();
    t.file("rank_0/llama_rank_0-10_2.ckpt", b"x")
        .file("rank_0/llama_rank_0-20_2.ckpt", b"x");
    let same = std::fs::metadata(t.path("rank_0/llama_rank_0-20_2.ckpt"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(t.path("rank_0/llama_rank_0-10_2.ckpt"))
        .unwrap()
        .set_modified(same)
        .unwrap();
    assert_newest(&t.resolve());
}

#[test]
fn s7_3_lower_rank_folder_deleted() {
    let mut t = TestTree::new();
    t.seed(4).rm("rank_1");
    // N = 3 → rank_1 is looked up and missing
    assert_err(&t.resolve(), &format!("{}/rank_1 is not found!", t.d()));
    let mut t = TestTree::new();
    t.seed(4).rm("rank_1");
    for r in [0, 2, 3] {
        t.rm(&format!("rank_{r}/meta.json"));
    }
    assert_err(&t.resolve(), &format!("{}/rank_1 is not a real directory,When distributed loads are sliced weights,load_checkpoint should be a checkpoint directory containing the directory of rank_{{0-*}},The directory structure is as follows: **checkpoint_root_dir/rank_{{0-*}}/**.ckpt", t.d()));
}

#[test]
fn c13_2_health_widening_sees_moved_shard() {
    let mut t = TestTree::new();
    t.seed(4);
    std::fs::rename(
        t.path("rank_0/llama_rank_0-20_2.ckpt"),
        t.path("rank_1/llama_rank_0-20_2.ckpt"),
    )
    .unwrap();
    assert_step(&t.resolve(), "15_2");
    t.health().health_json(r#"[{"is_health": 0}]"#);
    assert_err(
        &t.resolve(),
        &format!("{}/rank_0/llama_rank_0-20_2.ckpt is not found!", t.d()),
    );
}

#[test]
fn c13_3_times_crash_in_health_mode() {
    let mut t = TestTree::new();
    t.file("rank_0/llama_rank_0bis-20_2.ckpt", b"x")
        .meta(0, 20, 2, "llama_rank_0bis-20_2.ckpt");
    t.health().health_json(r#"[{"is_health": 0}]"#);
    assert_err(&t.resolve(), "'NoneType' object has no attribute 'group'");
}

#[test]
fn c13_4_only_an_empty_rank0() {
    let mut t = TestTree::new();
    t.dir("rank_0");
    assert_err(
        &t.resolve(),
        &format!(
            "Checkpoint not found under {}/rank_0 with config.load_ckpt_format:ckpt.",
            t.d()
        ),
    );
}

#[test]
fn c13_4_empty_folder_is_a_fresh_start() {
    let mut t = TestTree::new();
    t.world(2);
    let r = t.resolve();
    assert_eq!(r.per_rank.len(), 2);
    assert!(r.per_rank.iter().all(|x| *x == RankResult::Off), "{r:#?}");
}

#[test]
fn c13_5_leading_zero_rank_id_is_kept() {
    let mut t = TestTree::new();
    t.seed(4)
        .resume(ResumeTraining::Name("llama_rank_01-20_2".into()));
    assert_all(&t.resolve(), |_| "llama_rank_01-20_2.ckpt".into());
}

#[test]
fn c13_6_health_record_quirks() {
    let cases = [
        (r#"[{"is_health": 0.0}]"#, None),
        (
            r#"[{"is_health": "0"}]"#,
            Some("The training has no healthy checkpoints yet, please start training again."),
        ),
        (
            r#"[{"ckpt_name": "x"}]"#,
            Some("The training has no healthy checkpoints yet, please start training again."),
        ),
        (
            r#"{"is_health": 0}"#,
            Some("'str' object has no attribute 'get'"),
        ),
        ("", Some("Expecting value: line 1 column 1 (char 0)")),
        ("[1]", Some("'int' object has no attribute 'get'")),
        ("5", Some("'int' object is not iterable")),
    ];
    for (json, want) in cases {
        let mut t = TestTree::new();
        t.seed(2).health().health_json(json);
        let r = t.resolve();
        match want {
            None => assert_step(&r, "20_2"),
            Some(m) => assert_err(&r, m),
        }
    }
}

#[test]
fn c13_6_missing_health_record_aborts() {
    let mut t = TestTree::new();
    t.seed(2).health();
    assert_err(
        &t.resolve(),
        "The training has no healthy checkpoints yet, please start training again.",
    );
}

#[test]
fn c13_7_meta_json_quirks() {
    let mut t = TestTree::new();
    t.seed(4)
        .meta_raw(1, r#"{"last_epoch": 10, "last_step": 2, "last_ckpt_file": "llama_rank_1-10_2.ckpt", "last_epoch": 15}"#)
        .meta_raw(2, "\u{feff}{\"last_epoch\": 10, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_2-10_2.ckpt\"}")
        .meta_raw(3, r#"{"last_epoch": 10, "last_step": NaN, "last_ckpt_file": "llama_rank_3-10_2.ckpt"}"#);
    // duplicate key: 15 wins on rank 1; BOM and NaN metas are skipped
    assert_step(&t.resolve(), "15_2");
}

#[test]
fn trainer_stage_errors() {
    let mut t = TestTree::new();
    t.seed(2).resume(ResumeTraining::Invalid("1".into()));
    assert_raises(
        &t.resolve(),
        "TypeError",
        "resume_training must be bool or str, but get 1",
    );
    let mut t = TestTree::new();
    t.seed(2);
    t.cfg.callback_prefix = Some("llama_rank".into());
    assert_raises(
        &t.resolve(),
        "ValueError",
        "The prefix for saving checkpoint is not allowed to contain 'rank'.",
    );
    let mut t = TestTree::new();
    t.seed(2);
    t.cfg.load_checkpoint = Some(format!("{}/missing", t.d()));
    t.world(2);
    let r = {
        let tree = ckptscope::scan::scan(&ckptscope::fsys::RealFs, &format!("{}/missing", t.d()));
        let env = ckptscope::resolve::config::EnvFacts {
            world_size: Some(2),
            device_num_per_node: 8,
            ..Default::default()
        };
        ckptscope::resolve::mindformers::resolve(&ckptscope::resolve::mindformers::Inputs {
            tree: &tree,
            config: &t.cfg,
            env: &env,
            paths: &t.paths,
        })
    };
    assert_raises(&r, "ValueError", &format!("{}/missing is not existed, please check load_checkpoint in yaml and set a correct value.", t.d()));
}

#[test]
fn resume_false_is_false_everywhere() {
    let mut t = TestTree::new();
    t.seed(2).resume(ResumeTraining::Bool(false));
    let r = t.resolve();
    assert!(r.per_rank.iter().all(|x| *x == RankResult::Off));
}
