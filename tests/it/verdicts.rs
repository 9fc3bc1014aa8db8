//! Verdicts tell the truth about every real fixture file, judged against MANIFEST.json (what
//! MindSpore's loader actually did), plus hand-built files for what the loader does not check.

use crate::common;
use ckptscope::fsys::stat_of;
use ckptscope::model::{ShardCheck, Verdict};
use ckptscope::verify::verdict::{check_file, CheckOptions};
use ckptscope::writer::ckpt::{encode, AppendEntries, Tensor};
use std::path::Path;

fn check(path: &Path, deep: bool) -> ShardCheck {
    let st = stat_of(&std::fs::metadata(path).unwrap());
    check_file(
        &ckptscope::fsys::RealFs,
        path,
        &st,
        &CheckOptions {
            deep,
            ..Default::default()
        },
    )
}

#[test]
fn every_fixture_file_gets_the_true_verdict() {
    let fx = common::fixtures();
    let want = [
        ("valid.ckpt", Verdict::Ok, Verdict::Ok),
        ("valid_crc.ckpt", Verdict::Ok, Verdict::Ok),
        ("with_string.ckpt", Verdict::Ok, Verdict::Ok),
        ("split_records.ckpt", Verdict::Ok, Verdict::Ok),
        ("valid.safetensors", Verdict::Ok, Verdict::Ok),
        ("valid_crc.safetensors", Verdict::Ok, Verdict::Ok),
        (
            "damaged_crc_bitflip.safetensors",
            Verdict::Ok,
            Verdict::CrcMismatch,
        ),
        (
            "encrypted_aes_gcm.ckpt",
            Verdict::Encrypted,
            Verdict::Encrypted,
        ),
        (
            "damaged_zero_bytes.ckpt",
            Verdict::ZeroByte,
            Verdict::ZeroByte,
        ),
        (
            "damaged_truncated_mid_record.ckpt",
            Verdict::Truncated,
            Verdict::Truncated,
        ),
        (
            "damaged_truncated_at_record_boundary.ckpt",
            Verdict::Incomplete,
            Verdict::Incomplete,
        ),
        (
            "damaged_crc_truncated_5_bytes.ckpt",
            Verdict::Truncated,
            Verdict::Truncated,
        ),
        (
            "damaged_crc_bitflip_in_tensor_data.ckpt",
            Verdict::Ok,
            Verdict::CrcMismatch,
        ),
        (
            "damaged_garbage.ckpt",
            Verdict::NotACheckpoint,
            Verdict::NotACheckpoint,
        ),
        (
            "damaged_huge_header_len.safetensors",
            Verdict::NotACheckpoint,
            Verdict::NotACheckpoint,
        ),
        (
            "damaged_truncated.safetensors",
            Verdict::Truncated,
            Verdict::Truncated,
        ),
    ];
    let mut seen = 0;
    for e in std::fs::read_dir(fx.join("files")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (_, cheap, deep) = want
            .iter()
            .find(|w| w.0 == name)
            .unwrap_or_else(|| panic!("no expectation for {name}"));
        let c = check(&p, false);
        assert_eq!(c.verdict, *cheap, "{name}: {}", c.detail);
        assert!(!c.detail.is_empty(), "{name}: a detail names the cause");
        let d = check(&p, true);
        assert_eq!(d.verdict, *deep, "{name} (deep): {}", d.detail);
        seen += 1;
    }
    assert_eq!(seen, want.len());
}

/// Every tree file is `ok` with the manifest's append values, and its SHA-256 is the manifest's.
#[test]
fn tree_files_are_ok_with_manifest_values_and_hashes() {
    let fx = common::fixtures();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.join("MANIFEST.json")).unwrap()).unwrap();
    let mut n = 0;
    for f in m["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        if !rel.starts_with("tree-") || !(rel.ends_with(".ckpt") || rel.ends_with(".safetensors")) {
            continue;
        }
        let c = check(&fx.join(rel), true);
        assert_eq!(c.verdict, Verdict::Ok, "{rel}: {}", c.detail);
        assert_eq!(
            c.sha256.as_deref().map(String::as_str),
            f["sha256"].as_str(),
            "{rel}"
        );
        let lc = if rel.ends_with(".ckpt") {
            &f["load_checkpoint"]
        } else {
            &f["load_checkpoint_safetensors"]
        };
        let av = &lc["append_values"];
        let a = c.append.unwrap();
        assert_eq!(
            a.step_num.and_then(|x| x.as_i64()),
            av["step_num"].as_i64(),
            "{rel}"
        );
        assert_eq!(
            a.epoch_num.and_then(|x| x.as_i64()),
            av["epoch_num"].as_i64(),
            "{rel}"
        );
        assert_eq!(
            a.global_batch_size.and_then(|x| x.as_i64()),
            av["global_batch_size"].as_i64(),
            "{rel}"
        );
        n += 1;
    }
    assert!(n >= 40, "{n}");
}

fn write(dir: &Path, name: &str, tensors: &[Tensor]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, encode(tensors)).unwrap();
    p
}

fn tail() -> Vec<Tensor> {
    AppendEntries {
        epoch_num: 3,
        step_num: 6,
        loss_scale: 4096.0,
        global_batch_size: Some(8),
        resumed: false,
    }
    .tensors()
}

/// What the loader does not look at: short content (zero-filled), extra content (ignored), an
/// unknown type (fails), and a split tensor whose slices do not add up.
#[test]
fn tensor_content_is_checked_against_dims_and_type() {
    let tmp = tempfile::tempdir().unwrap();
    let good = Tensor::f32s("w", &[3, 4], (0..12).map(|i| i as f32));
    let mut short = good.clone();
    short.content.truncate(40);
    let mut long = good.clone();
    long.content.extend_from_slice(&[0; 4]);
    let mut unknown = good.clone();
    unknown.tensor_type = "Flnat32";
    let slices: Vec<Tensor> = (0..3)
        .map(|i| Tensor {
            content: good.content[i * 16..i * 16 + 16].to_vec(),
            ..good.clone()
        })
        .collect();
    let mut bad_slices = slices.clone();
    bad_slices[2].content.truncate(8);
    let cases: Vec<(&str, Vec<Tensor>, Verdict, &str)> = vec![
        ("ok.ckpt", vec![good.clone()], Verdict::Ok, "records"),
        ("short.ckpt", vec![short], Verdict::Corrupt, "zero-fills"),
        ("long.ckpt", vec![long], Verdict::Corrupt, "ignores"),
        (
            "unknown.ckpt",
            vec![unknown],
            Verdict::Corrupt,
            "unknown type 'Flnat32'",
        ),
        ("split.ckpt", slices, Verdict::Ok, "records"),
        (
            "split_short.ckpt",
            bad_slices,
            Verdict::Corrupt,
            "zero-fills",
        ),
    ];
    for (name, mut tensors, want, words) in cases {
        tensors.extend(tail());
        let c = check(&write(tmp.path(), name, &tensors), false);
        assert_eq!(c.verdict, want, "{name}: {}", c.detail);
        assert!(c.detail.contains(words), "{name}: {}", c.detail);
    }
}

#[test]
fn truncation_names_the_byte_offset() {
    let fx = common::fixtures();
    let c = check(&fx.join("files/damaged_truncated_mid_record.ckpt"), false);
    assert!(
        c.detail.starts_with("truncated at byte 573 of 616"),
        "{}",
        c.detail
    );
    let c = check(
        &fx.join("files/damaged_truncated_at_record_boundary.ckpt"),
        false,
    );
    assert!(c.detail.contains("epoch_num and step_num"), "{}", c.detail);
}

#[test]
fn a_manifest_hash_that_differs_is_a_hash_mismatch() {
    let fx = common::fixtures();
    let p = fx.join("files/valid.ckpt");
    let st = stat_of(&std::fs::metadata(&p).unwrap());
    let c = check_file(
        &ckptscope::fsys::RealFs,
        &p,
        &st,
        &CheckOptions {
            expected_sha256: Some("00".repeat(32)),
            ..Default::default()
        },
    );
    assert_eq!(c.verdict, Verdict::HashMismatch, "{}", c.detail);
}

/// `valid_crc.safetensors` with one tensor's data (or its `crc_num` text) edited; the header
/// is re-serialised with its length, data offsets are relative and stay valid.
fn edit_crc_safetensors(
    fx: &Path,
    dir: &Path,
    name: &str,
    edit: impl Fn(&mut serde_json::Value, &mut [u8], u64),
) -> std::path::PathBuf {
    let b = std::fs::read(fx.join("files/valid_crc.safetensors")).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let mut data = b[8 + n..].to_vec();
    edit(&mut header, &mut data, 0);
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&data);
    let p = dir.join(name);
    std::fs::write(&p, out).unwrap();
    p
}

fn tensor_range(h: &serde_json::Value, key: &str) -> std::ops::Range<usize> {
    let o = &h[key]["data_offsets"];
    o[0].as_u64().unwrap() as usize..o[1].as_u64().unwrap() as usize
}

/// MindSpore's safetensors CRC hashes a 0-d integer tensor as `bytes(value)` (value zero
/// bytes), so changing `step_num` changes the CRC; a negative one makes the loader raise;
/// `crc_num` is read with Python's `int()` (whitespace, `+`, underscores allowed).
#[test]
fn safetensors_crc_follows_mindspore_rules() {
    let fx = common::fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let set_i64 = |key: &'static str, v: i64| {
        move |h: &mut serde_json::Value, d: &mut [u8], _| {
            let r = tensor_range(h, key);
            d[r].copy_from_slice(&v.to_le_bytes());
        }
    };
    let p = edit_crc_safetensors(&fx, tmp.path(), "same.safetensors", |_, _, _| {});
    assert_eq!(check(&p, true).verdict, Verdict::Ok);
    let p = edit_crc_safetensors(&fx, tmp.path(), "step.safetensors", set_i64("step_num", 7));
    let c = check(&p, true);
    assert_eq!(c.verdict, Verdict::CrcMismatch, "{}", c.detail);
    assert!(c.detail.contains("crc_num 3503682224"), "{}", c.detail);
    let p = edit_crc_safetensors(&fx, tmp.path(), "neg.safetensors", set_i64("step_num", -1));
    let c = check(&p, true);
    assert_eq!(c.verdict, Verdict::CrcMismatch, "{}", c.detail);
    assert!(c.detail.contains("negative count"), "{}", c.detail);
    // A huge corrupted value is hashed arithmetically, not by allocating 2^61 zero bytes.
    let p = edit_crc_safetensors(
        &fx,
        tmp.path(),
        "huge.safetensors",
        set_i64("step_num", 1 << 61),
    );
    assert_eq!(check(&p, true).verdict, Verdict::CrcMismatch);
    let spaced = |h: &mut serde_json::Value, _: &mut [u8], _| {
        h["__metadata__"]["crc_num"] = " +3_503_682_224\n".into();
    };
    let p = edit_crc_safetensors(&fx, tmp.path(), "spaced.safetensors", spaced);
    let c = check(&p, true);
    assert_eq!(c.verdict, Verdict::Ok, "{}", c.detail);
    let garbage = |h: &mut serde_json::Value, _: &mut [u8], _| {
        h["__metadata__"]["crc_num"] = "0x1f".into();
    };
    let p = edit_crc_safetensors(&fx, tmp.path(), "garbage.safetensors", garbage);
    let c = check(&p, true);
    assert_eq!(c.verdict, Verdict::CrcMismatch, "{}", c.detail);
    assert!(c.detail.contains("not an integer"), "{}", c.detail);
    // The cheap pass does not read the data, so it cannot tell.
    let c = check(&fx.join("files/damaged_crc_bitflip.safetensors"), false);
    assert_eq!(c.verdict, Verdict::Ok);
}
