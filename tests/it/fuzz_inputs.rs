//! Bad input never panics, never hangs and never allocates what a length field claims:
//! arbitrary and mutated bytes for every parser, FIFOs where files are expected.

use crate::common;
use ckptscope::layout::mindformers::names::{
    check_ckpt_file_name, epoch_and_step, parse_ckpt_name, rank_id, replace_rank_id,
    times_epoch_and_step, Fmt,
};
use ckptscope::py::int::PyInt;
use ckptscope::verify::ckpt::{walk, StreamEnd};
use ckptscope::verify::safetensors::read_header;
use proptest::prelude::*;
use std::io::Cursor;
use std::time::Duration;

fn walk_bytes(b: &[u8]) -> ckptscope::verify::ckpt::CkptWalk {
    walk(Cursor::new(b.to_vec()), b.len() as u64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn json_parser_survives_anything(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = ckptscope::py::json::load(&bytes);
    }

    #[test]
    fn json_parser_survives_json_like_text(s in r#"[\[\]{}":,0-9.eE+\-tfnulrsaNIiy \\u]{0,64}"#) {
        let _ = ckptscope::py::json::loads(&s);
    }

    #[test]
    fn name_helpers_survive_anything(s in "\\PC{0,40}") {
        for fmt in [Fmt::Ckpt, Fmt::Safetensors] {
            let _ = check_ckpt_file_name(&s, fmt);
            let _ = epoch_and_step(&s, fmt);
            let _ = times_epoch_and_step(&s, fmt);
        }
        let _ = rank_id(&s);
        let _ = replace_rank_id(&s, &PyInt::from_i64(3));
        let _ = parse_ckpt_name(&s);
    }

    #[test]
    fn ckpt_walker_survives_anything(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let a = walk_bytes(&bytes);
        prop_assert_eq!(&a, &walk_bytes(&bytes), "verdict stable");
    }

    #[test]
    fn safetensors_header_survives_anything(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_header(Cursor::new(bytes.clone()), bytes.len() as u64);
    }
}

/// Bit flips, truncations and byte insertions of every real fixture file.
#[test]
fn mutated_fixture_files_never_panic() {
    let fx = common::fixtures();
    let mut n = 0;
    for e in std::fs::read_dir(fx.join("files")).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let mut rng = 0x2545F4914F6CDD1Du64;
        for i in 0..300 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut m = bytes.clone();
            if m.is_empty() {
                m.push(rng as u8);
            }
            let at = (rng as usize) % m.len();
            match i % 3 {
                0 => m[at] ^= 1 << (rng % 8),
                1 => m.truncate(at),
                _ => m.insert(at, (rng >> 8) as u8),
            }
            let a = walk_bytes(&m);
            assert_eq!(a, walk_bytes(&m));
            let _ = read_header(Cursor::new(m.clone()), m.len() as u64);
            n += 1;
        }
    }
    assert!(n > 1000);
}

/// A record that claims 2^60 bytes, a safetensors header that claims 2^62: error verdicts,
/// decided without allocating or reading the claimed length.
#[test]
fn huge_declared_lengths_are_verdicts_not_allocations() {
    let mut rec = vec![0x0a];
    let mut v: u64 = 1 << 60;
    while v >= 0x80 {
        rec.push((v as u8) | 0x80);
        v >>= 7;
    }
    rec.push(v as u8);
    rec.extend_from_slice(&[0x0a, 0x01, b'x']);
    assert!(matches!(
        walk_bytes(&rec).end,
        StreamEnd::Truncated { record_offset: 0 }
    ));
    let mut st = (1u64 << 62).to_le_bytes().to_vec();
    st.extend_from_slice(b"{}");
    assert!(read_header(Cursor::new(st.clone()), st.len() as u64).is_err());
}

/// Run `f` on a thread and fail if it does not finish in time (a FIFO open would block).
fn within(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("did not finish: something blocked on a FIFO");
}

fn mkfifo(p: &std::path::Path) -> bool {
    std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn fifo_named_like_a_checkpoint_does_not_hang() {
    let mut t = common::TestTree::new();
    t.seed(2);
    if !mkfifo(&t.path("rank_0/llama_rank_0-25_2.ckpt"))
        || !mkfifo(&t.path("rank_1/meta.json.fifo"))
    {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    std::fs::remove_file(t.path("rank_1/meta.json")).unwrap();
    assert!(mkfifo(&t.path("rank_1/meta.json")));
    let root = t.d();
    within(20, move || {
        let a = crate::common::resolve_dir(std::path::Path::new(&root));
        // rank 1's meta.json is a FIFO: reported, never opened
        assert!(
            a.warnings.iter().any(|w| w.code == "meta_not_regular"),
            "{:?}",
            a.warnings
        );
        assert!(ckptscope::verify::ckpt::walk_path(
            &std::path::Path::new(&root).join("rank_0/llama_rank_0-25_2.ckpt")
        )
        .is_err());
    });
    drop(t);
}

/// Whole-file checks on mutated fixture files: no panic, the same verdict twice, and every
/// damaged verdict comes with a detail.
#[test]
fn verdicts_on_mutated_files_are_stable() {
    use ckptscope::verify::verdict::{check_file, CheckOptions};
    let fx = common::fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut n = 0;
    for e in std::fs::read_dir(fx.join("files")).unwrap() {
        let src = e.unwrap().path();
        let bytes = std::fs::read(&src).unwrap();
        for i in 0..40 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut m = bytes.clone();
            if !m.is_empty() {
                let at = (rng as usize) % m.len();
                match i % 3 {
                    0 => m[at] ^= 1 << (rng % 8),
                    1 => m.truncate(at),
                    _ => m.insert(at, (rng >> 8) as u8),
                }
            }
            let p = tmp.path().join(src.file_name().unwrap());
            std::fs::write(&p, &m).unwrap();
            let st = ckptscope::fsys::stat_of(&std::fs::metadata(&p).unwrap());
            let opts = CheckOptions {
                deep: true,
                ..Default::default()
            };
            let a = check_file(&ckptscope::fsys::RealFs, &p, &st, &opts);
            let b = check_file(&ckptscope::fsys::RealFs, &p, &st, &opts);
            assert_eq!(a, b, "{}", p.display());
            assert!(!a.detail.is_empty());
            n += 1;
        }
    }
    assert!(n >= 500);
}
