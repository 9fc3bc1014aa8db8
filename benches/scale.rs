//! Scale benchmark (issue 11): the release binary on a 16,384-rank × 20-step tree of valid
//! small `.ckpt` files (append entries agreeing with the names) and on one folder holding
//! 100,000 checkpoints: wall time and peak RSS of every command, beside
//! `find ROOT -printf '%s %T@ %p\n'` in the same run.
//!
//! Run: `cargo build --release && cargo bench --bench scale` (env `SCALE_RANKS`, `SCALE_STEPS`,
//! `SCALE_FLAT` change the sizes; the trees are generated once under the system temp folder).

#[path = "common/disk.rs"]
mod disk;

use disk::generate;
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Wall time, peak RSS (MiB) and stdout size of one command; `until` stops it early when a
/// line of its output satisfies it (for `watch`).
fn measure(args: &[&str], until: Option<&dyn Fn(&str) -> bool>) -> (Duration, f64, usize) {
    let bin = env!("CARGO_MANIFEST_DIR").to_owned() + "/target/release/ckptscope";
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo build --release first");
    let pid = child.id() as libc::pid_t;
    let out = child.stdout.take().unwrap();
    let mut bytes = 0;
    let mut r = BufReader::new(out);
    let mut line = String::new();
    let mut elapsed = None;
    while r.read_line(&mut line).unwrap_or(0) > 0 {
        bytes += line.len();
        if until.is_some_and(|f| f(&line)) {
            elapsed = Some(t.elapsed());
            let _ = child.kill();
            break;
        }
        line.clear();
    }
    let (mut status, mut usage): (libc::c_int, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    // SAFETY: our own child, valid pointers
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    std::mem::forget(child); // reaped by wait4
    (
        elapsed.unwrap_or_else(|| t.elapsed()),
        usage.ru_maxrss as f64 / 1024.0,
        bytes,
    )
}

fn find(root: &Path) -> Duration {
    let t = Instant::now();
    Command::new("find")
        .arg(root)
        .args(["-printf", "%s %T@ %p\n"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    t.elapsed()
}

/// The TUI in a pseudo-terminal: time to the first answer on screen, peak RSS, time to quit.
fn tui(root: &Path) -> (Duration, f64, Duration) {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 50,
            cols: 160,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd =
        CommandBuilder::new(env!("CARGO_MANIFEST_DIR").to_owned() + "/target/release/ckptscope");
    cmd.arg(root);
    cmd.env("TERM", "xterm-256color");
    let t = Instant::now();
    let mut child = pty.slave.spawn_command(cmd).unwrap();
    let pid = child.process_id().unwrap();
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let mut writer = pty.master.take_writer().unwrap();
    let parser = std::sync::Arc::new(std::sync::Mutex::new(vt100::Parser::new(50, 160, 0)));
    let p = parser.clone();
    std::thread::spawn(move || {
        let _keep = pty.master;
        let mut buf = [0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            p.lock().unwrap().process(&buf[..n]);
        }
    });
    // the verdict card's headline: `MindFormers → 20_2 …` (`->` in an ASCII terminal)
    let answered = |s: &str| s.contains("MindFormers →") || s.contains("MindFormers ->");
    while !answered(&parser.lock().unwrap().screen().contents()) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the TUI did not show an answer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = t.elapsed();
    std::thread::sleep(Duration::from_secs(20)); // the background verifier works meanwhile
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0;
    let q = Instant::now();
    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();
    let _ = child.wait();
    (first, hwm, q.elapsed())
}

fn row(what: &str, (t, rss, out): (Duration, f64, usize)) {
    println!(
        "| {what} | {:.2} s | {rss:.0} MB | {:.1} MB |",
        t.as_secs_f64(),
        out as f64 / 1e6
    );
}

fn main() {
    let ranks = env_or("SCALE_RANKS", 16_384);
    let steps = env_or("SCALE_STEPS", 20);
    let flat = env_or("SCALE_FLAT", 100_000);
    let tmp = std::env::temp_dir();
    let big: PathBuf = tmp.join(format!("ckptscope-scale-{ranks}x{steps}"));
    let t = Instant::now();
    generate(&big, ranks, steps);
    eprintln!("tree {} ready in {:.1?}", big.display(), t.elapsed());
    let b = big.to_str().unwrap();
    find(&big); // warm the cache
    println!(
        "{ranks} ranks × {steps} steps ({} files); find -printf {:.2} s",
        ranks * (steps + 1),
        find(&big).as_secs_f64()
    );
    // warm cache, as the figures of issue 11 were taken: the files' contents too, not only
    // the metadata `find` brings in (else the first command to read them pays the disk)
    measure(&["verify", b], None);
    println!("| command | time | peak RSS | stdout |");
    println!("|---|---|---|---|");
    row("resolve", measure(&["resolve", b], None));
    row("resolve --json", measure(&["resolve", b, "--json"], None));
    row("verify", measure(&["verify", b], None));
    row("verify --json", measure(&["verify", b, "--json"], None));
    row("grid", measure(&["grid", b], None));
    let total = ranks * steps;
    let seen = std::cell::Cell::new(0usize);
    let done = |l: &str| {
        if l.contains("\"event\":\"verdict\"") {
            seen.set(seen.get() + 1);
        }
        seen.get() >= total
    };
    row(
        "watch --ndjson (until every verdict)",
        measure(&["watch", b, "--ndjson"], Some(&done)),
    );
    let (first, hwm, quit) = tui(&big);
    println!(
        "| TUI | first answer {:.2} s | {hwm:.0} MB after 20 s | quit {:.0} ms |",
        first.as_secs_f64(),
        quit.as_secs_f64() * 1000.0
    );
    // one folder holding many checkpoints
    let one = tmp.join(format!("ckptscope-scale-flat-{flat}"));
    generate(&one, 1, flat);
    let o = one.to_str().unwrap();
    find(&one);
    measure(&["verify", o], None);
    println!(
        "\none folder, {flat} checkpoints; find -printf {:.2} s",
        find(&one).as_secs_f64()
    );
    println!("| command | time | peak RSS | stdout |");
    println!("|---|---|---|---|");
    row("resolve", measure(&["resolve", o], None));
    row("verify", measure(&["verify", o], None));
    row("grid", measure(&["grid", o], None));
}
