//! The real MindSpore / MindFormers fixtures in ../shared: every tree resolves as MindFormers'
//! real resolver did (MANIFEST.json, README), and the `.ckpt` walker reads every file's record
//! structure and append entries exactly as the manifest records them.

use crate::common;
use ckptscope::model::Num;
use ckptscope::resolve::mindformers::RankResult;
use ckptscope::verify::ckpt::{walk_detailed, walk_path, StreamEnd};
use common::resolve_dir;
use common::{copy_fixture, fixtures};
use serde_json::Value;
use std::path::Path;

fn manifest(root: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("MANIFEST.json")).unwrap()).unwrap()
}

fn files(r: &ckptscope::resolve::Analysis) -> Vec<String> {
    r.mindformers
        .per_rank
        .iter()
        .map(|x| match x {
            RankResult::File(f) => f.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn seed_run1_resumes_at_20_2_and_prints_42() {
    let ft_seed_run1 = crate::common::fixture_tree("tree-seed-run1");
    let a = resolve_dir(&ft_seed_run1.root.clone());
    assert_eq!(
        files(&a),
        (0..4)
            .map(|r| format!("llama3_1_8b_rank_{r}-20_2.ckpt"))
            .collect::<Vec<_>>()
    );
    let d = a.data_skip.unwrap();
    assert_eq!(
        (d.initial_step, d.skip_batches, d.first_printed_step),
        (Some(40), Some(40), Some(42))
    );
}

#[test]
fn seed_run1_without_rank3_20_2_falls_back_to_15_2_and_32() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture("tree-seed-run1", tmp.path());
    std::fs::remove_file(
        tmp.path()
            .join("checkpoint/rank_3/llama3_1_8b_rank_3-20_2.ckpt"),
    )
    .unwrap();
    let a = resolve_dir(&tmp.path().join("checkpoint"));
    assert_eq!(
        files(&a),
        (0..4)
            .map(|r| format!("llama3_1_8b_rank_{r}-15_2.ckpt"))
            .collect::<Vec<_>>()
    );
    let d = a.data_skip.unwrap();
    assert_eq!(
        (d.initial_step, d.skip_batches, d.first_printed_step),
        (Some(30), Some(30), Some(32))
    );
}

/// `resolver_on_final_tree` of MANIFEST.json, tree by tree, including the record text.
#[test]
fn every_tree_resolves_as_mindformers_did() {
    let fx = fixtures();
    let m = manifest(&fx);
    let trees = m["resolver_on_final_tree"].as_object().unwrap();
    assert!(trees.len() >= 4);
    for (name, want) in trees {
        let ft = common::fixture_tree(name);
        let fmt = want["ckpt_format"].as_str().unwrap();
        let flags = ckptscope::JobFlags {
            format: Some(if fmt == "safetensors" {
                ckptscope::job::FormatArg::Safetensors
            } else {
                ckptscope::job::FormatArg::Ckpt
            }),
            ..Default::default()
        };
        let a = common::session_with(&ft.root, &flags).analysis().clone();
        let ranks = want["rank_size"].as_u64().unwrap() as usize;
        let expect: Vec<String> = (0..ranks)
            .map(|r| {
                want["returns"][format!("rank_{r}")]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(files(&a), expect, "{name}");
        let record = want["record_file_it_writes"]
            .as_str()
            .unwrap()
            .replace("<tree>", &ft.base.to_string_lossy());
        assert_eq!(
            a.mindformers.record.as_deref(),
            Some(record.as_str()),
            "{name}"
        );
    }
}

#[test]
fn gbs_change_tree_reports_the_stored_batch_size() {
    let ft_gbs_change = crate::common::fixture_tree("tree-gbs-change");
    let a = resolve_dir(&ft_gbs_change.root.clone());
    let c = a.context.unwrap();
    assert_eq!(c.append.unwrap().global_batch_size, Some(Num::Int(16)));
}

#[test]
fn async_tree_warns_about_meta_lag() {
    let ft_async = crate::common::fixture_tree("tree-async");
    let a = resolve_dir(&ft_async.root.clone());
    assert_eq!(files(&a)[0], "llama3_1_8b_rank_0-15_2.ckpt");
    assert!(
        a.warnings.iter().any(|w| w.code == "meta_lags_files"),
        "{:?}",
        a.warnings
    );
}

fn num(v: &Value) -> Option<Num> {
    if v.is_null() {
        None
    } else if let Some(i) = v.as_i64() {
        Some(Num::Int(i))
    } else {
        v.as_f64().map(Num::Float)
    }
}

/// Every `.ckpt` in the manifest: record map, append values, and how the stream ends.
#[test]
fn walker_matches_the_manifest_for_every_ckpt() {
    let fx = fixtures();
    let m = manifest(&fx);
    let mut checked = 0;
    for f in m["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        if !rel.ends_with(".ckpt") {
            continue;
        }
        let path = fx.join(rel);
        let file = std::fs::File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        let w = walk_detailed(std::io::BufReader::new(file), len);
        assert_eq!(
            w,
            {
                let mut x = walk_path(&path).unwrap();
                x.record_list = w.record_list.clone();
                x
            },
            "{rel}: detailed and plain walks agree"
        );
        let lc = &f["load_checkpoint"];
        if let Some(records) = f["records"].as_array() {
            let got: Vec<Value> = w
                .record_list
                .iter()
                .map(|r| {
                    serde_json::json!([
                        r.offset,
                        r.len,
                        r.tag,
                        r.tensor_type,
                        r.dims,
                        r.content_len
                    ])
                })
                .collect();
            assert_eq!(&got, records, "{rel}: record map");
        }
        if lc["result"] == "loads" {
            let av = &lc["append_values"];
            assert_eq!(w.append.epoch_num, num(&av["epoch_num"]), "{rel}");
            assert_eq!(w.append.step_num, num(&av["step_num"]), "{rel}");
            assert_eq!(w.append.global_step, num(&av["global_step"]), "{rel}");
            assert_eq!(w.append.loss_scale, num(&av["loss_scale"]), "{rel}");
            assert_eq!(
                w.append.global_batch_size,
                num(&av["global_batch_size"]),
                "{rel}"
            );
        }
        let expected_end = match rel.rsplit('/').next().unwrap() {
            "damaged_zero_bytes.ckpt" => Some("empty"),
            "damaged_truncated_mid_record.ckpt" => Some("truncated"),
            "damaged_garbage.ckpt" | "damaged_crc_truncated_5_bytes.ckpt" => Some("damaged"),
            "encrypted_aes_gcm.ckpt" => Some("encrypted"),
            _ => None,
        };
        match (expected_end, &w.end) {
            (None, StreamEnd::Complete) => {}
            (Some("empty"), StreamEnd::Empty) => {}
            (Some("truncated"), StreamEnd::Truncated { .. }) => {}
            (Some("damaged"), StreamEnd::Truncated { .. } | StreamEnd::Malformed { .. }) => {}
            (Some("encrypted"), StreamEnd::Encrypted { algorithm }) => {
                assert_eq!(algorithm, "AES-GCM")
            }
            (want, got) => panic!("{rel}: expected {want:?}, walker ended with {got:?}"),
        }
        if rel.ends_with("valid_crc.ckpt") || rel.ends_with("bitflip_in_tensor_data.ckpt") {
            assert!(w.crc_trailer.is_some(), "{rel}: CRC trailer");
        }
        if rel.ends_with("damaged_truncated_at_record_boundary.ckpt") {
            assert_eq!((w.append.epoch_num, w.append.step_num), (None, None));
            assert!(w.append.global_step.is_some());
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} files checked");
}

#[test]
fn safetensors_append_values() {
    let fx = fixtures();
    let ft_safetensors = crate::common::fixture_tree("tree-safetensors");
    let a = ckptscope::verify::safetensors::append_values_path(
        &ft_safetensors
            .root
            .join("rank_0/llama3_1_8b_rank_0-20_2.safetensors"),
    )
    .unwrap();
    assert_eq!(
        (a.epoch_num, a.step_num, a.global_batch_size),
        (Some(Num::Int(20)), Some(Num::Int(40)), Some(Num::Int(8)))
    );
    assert!(ckptscope::verify::safetensors::append_values_path(
        &fx.join("files/damaged_huge_header_len.safetensors")
    )
    .is_none());
}
