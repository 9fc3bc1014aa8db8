//! Verification benchmarks (figures in the README):
//! 1. structure walk of a synthetic `.ckpt` with 10,000 records, and of a 2 GiB one whose
//!    tensor payloads are holes (sparse): only headers are read, target ≤ 50 ms each;
//! 2. SHA-256 of a 1 GiB file: ckptscope vs `sha256sum` vs `openssl dgst -sha256`, same run,
//!    warm cache;
//! 3. two 1 GiB files hashed in parallel by the verifier pool vs one file: throughput ratio.
//!
//! Run: `cargo bench --bench verify` (files are created under the system temp folder).

use ckptscope::fsys::stat_of;
use ckptscope::verify::ckpt::walk_path;
use ckptscope::verify::pool::{Job, Pool};
use ckptscope::verify::sha256_file;
use ckptscope::writer::ckpt::{record, AppendEntries, Tensor};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn tail() -> Vec<u8> {
    AppendEntries {
        epoch_num: 1,
        step_num: 2,
        loss_scale: 1.0,
        global_batch_size: Some(8),
        resumed: false,
    }
    .tensors()
    .iter()
    .flat_map(record)
    .collect()
}

/// 10,000 small records + the append tail.
fn many_records(dir: &Path) -> PathBuf {
    let p = dir.join("records-10000.ckpt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    for i in 0..10_000 {
        f.write_all(&record(&Tensor::f32s(
            &format!("layer.{i}.weight"),
            &[4, 4],
            (0..16).map(|x| x as f32),
        )))
        .unwrap();
    }
    f.write_all(&tail()).unwrap();
    p
}

/// 2 GiB: four 512 MiB Float32 tensors whose contents are holes, then the tail.
fn sparse_2gib(dir: &Path) -> PathBuf {
    let p = dir.join("sparse-2GiB.ckpt");
    let mut f = std::fs::File::create(&p).unwrap();
    let n: u64 = 512 << 20;
    for i in 0..4 {
        let t = Tensor {
            tag: format!("big.{i}"),
            dims: vec![n / 4],
            tensor_type: "Float32",
            content: Vec::new(),
        };
        let mut rec = record(&t);
        // rewrite the record with the real content length: header only, payload left as a hole
        rec.truncate(0);
        let mut tp = Vec::new();
        tp.push(0x08);
        varint(n / 4, &mut tp);
        tp.extend_from_slice(&[0x12, 7]);
        tp.extend_from_slice(b"Float32");
        tp.push(0x1a);
        varint(n, &mut tp);
        let tp_len = tp.len() as u64 + n;
        let mut value = vec![0x0a, t.tag.len() as u8];
        value.extend_from_slice(t.tag.as_bytes());
        value.push(0x12);
        varint(tp_len, &mut value);
        let value_len = value.len() as u64 + tp.len() as u64 + n;
        rec.push(0x0a);
        varint(value_len, &mut rec);
        rec.extend_from_slice(&value);
        rec.extend_from_slice(&tp);
        f.write_all(&rec).unwrap();
        f.seek(SeekFrom::Current(n as i64)).unwrap();
    }
    f.write_all(&tail()).unwrap();
    p
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A valid 1 GiB `.ckpt`: sixteen 64 MiB Float32 tensors of pseudo-random bytes and the tail
/// (not sparse: hashing must read real data).
fn random_gib(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let p = dir.join(name);
    if std::fs::metadata(&p).is_ok_and(|m| m.len() > 1 << 30) {
        return p;
    }
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(&p).unwrap());
    let mut x = seed | 1;
    let n = 64usize << 20;
    let mut content = vec![0u8; n];
    for i in 0..16 {
        for c in content.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        let t = Tensor {
            tag: format!("w.{i}"),
            dims: vec![(n / 4) as u64],
            tensor_type: "Float32",
            content: std::mem::take(&mut content),
        };
        f.write_all(&record(&t)).unwrap();
        content = t.content;
    }
    f.write_all(&tail()).unwrap();
    p
}

fn external(cmd: &str, args: &[&str], file: &Path) -> Option<Duration> {
    let run = || {
        Command::new(cmd)
            .args(args)
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
    };
    run()?;
    Some(time(3, run))
}

fn pool_hash(files: &[PathBuf]) -> Duration {
    let pool = Pool::new(files.len(), std::sync::Arc::new(ckptscope::fsys::RealFs));
    let t = Instant::now();
    for (i, f) in files.iter().enumerate() {
        let stat = stat_of(&std::fs::metadata(f).unwrap());
        // a fresh pool per run: its cache would otherwise skip the second hash
        pool.submit(Job {
            dir: "bench".into(),
            name: format!("{i}"),
            path: f.clone(),
            stat,
            deep: true,
            expected_sha256: None,
            priority: 0,
        });
    }
    for _ in files {
        pool.results().recv().unwrap();
    }
    t.elapsed()
}

fn main() {
    let dir = std::env::temp_dir().join("ckptscope-bench-verify");
    std::fs::create_dir_all(&dir).unwrap();
    let many = many_records(&dir);
    let w = walk_path(&many).unwrap();
    assert_eq!(w.records, 10_004);
    println!(
        "walk 10,000-record .ckpt ({} bytes): {:.2?}",
        w.size,
        time(11, || walk_path(&many).unwrap())
    );
    let sparse = sparse_2gib(&dir);
    let w = walk_path(&sparse).unwrap();
    assert_eq!(
        (w.records, w.append.step_num.is_some()),
        (8, true),
        "{:?}",
        w.end
    );
    println!(
        "walk 2 GiB sparse .ckpt ({} bytes, 8 records): {:.2?}",
        w.size,
        time(11, || walk_path(&sparse).unwrap())
    );
    let a = random_gib(&dir, "random-a.ckpt", 1);
    let b = random_gib(&dir, "random-b.ckpt", 2);
    let st = stat_of(&std::fs::metadata(&a).unwrap());
    let deep = ckptscope::verify::verdict::check_file(
        &ckptscope::fsys::RealFs,
        &a,
        &st,
        &ckptscope::verify::verdict::CheckOptions {
            deep: true,
            ..Default::default()
        },
    );
    assert_eq!(
        deep.verdict,
        ckptscope::model::Verdict::Ok,
        "{}",
        deep.detail
    );
    sha256_file(&a).unwrap(); // warm the cache
    let ours = time(3, || sha256_file(&a).unwrap());
    let gib = |d: Duration| format!("{:.2?} ({:.0} MiB/s)", d, 1024.0 / d.as_secs_f64());
    println!("SHA-256 1 GiB: ckptscope {}", gib(ours));
    if let Some(d) = external("sha256sum", &[], &a) {
        println!(
            "SHA-256 1 GiB: sha256sum {}; ckptscope/sha256sum time ratio {:.2}",
            gib(d),
            ours.as_secs_f64() / d.as_secs_f64()
        );
    }
    if let Some(d) = external("openssl", &["dgst", "-sha256"], &a) {
        println!(
            "SHA-256 1 GiB: openssl {}; ckptscope/openssl time ratio {:.2}",
            gib(d),
            ours.as_secs_f64() / d.as_secs_f64()
        );
    }
    let one = median(
        (0..3)
            .map(|_| pool_hash(std::slice::from_ref(&a)))
            .collect(),
    );
    assert!(
        one > Duration::from_millis(100),
        "the deep check must read the file"
    );
    let two = median((0..3).map(|_| pool_hash(&[a.clone(), b.clone()])).collect());
    println!("pool deep check (walk + SHA-256; CRC only with a trailer): 1 file {one:.2?}, 2 files in parallel {two:.2?}; throughput ratio {:.2}", 2.0 * one.as_secs_f64() / two.as_secs_f64());
}
