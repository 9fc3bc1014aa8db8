//! `ssh://` roots at scale (issue 14): a 16-node job, 8 ranks per node, 50 steps each, every
//! node's folder read over ssh through a real OpenSSH server on 127.0.0.1 (the tests'
//! throwaway `sshd`, this build as the remote ckptscope), each connection through a counting
//! TCP proxy, so the bytes are the ones on the wire (encrypted, ssh's own included). Measured:
//! `resolve --json` and `grid` over the 16 roots (time, bytes; the answers equal the local
//! ones), and a `watch --ndjson`: its first resolution, what an idle minute costs, and one shard
//! deleted on one node (time until the resolution shows it, bytes).
//!
//! Run: `cargo bench --bench ssh_scale` (needs OpenSSH: `apt-get install openssh-server
//! openssh-client`; env `SSH_NODES`, `SSH_STEPS`, `SSH_IDLE` change the sizes).

#[path = "common/proxy.rs"]
mod proxy;
#[path = "../tests/it/common/sshserver.rs"]
#[allow(dead_code)]
mod sshserver;

use proxy::{proxy, Wire};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PER_NODE: usize = 8;
const BIN: &str = env!("CARGO_BIN_EXE_ckptscope");

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Node `n`'s folder: `rank_{8n} … rank_{8n+7}`, `steps` small valid shards each, written a
/// minute apart as a job saves them (MindFormers picks the newest by mtime: files written in
/// one burst would tie), and a `meta.json` naming the newest (generated once; a marker says it
/// is complete).
fn generate(base: &Path, nodes: usize, steps: usize) -> Vec<PathBuf> {
    let marker = base.join(format!(".complete-timed-{nodes}-{steps}"));
    let roots: Vec<PathBuf> = (0..nodes)
        .map(|n| base.join(format!("node{n}/checkpoint")))
        .collect();
    if marker.exists() {
        return roots;
    }
    let _ = std::fs::remove_dir_all(base);
    let bodies: Vec<Vec<u8>> = (1..=steps as u64)
        .map(ckptscope::writer::ckpt::small_shard)
        .collect();
    for (n, root) in roots.iter().enumerate() {
        for r in n * PER_NODE..(n + 1) * PER_NODE {
            let dir = root.join(format!("rank_{r}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            let t0 = std::time::SystemTime::now() - Duration::from_secs(86_400);
            for (i, b) in bodies.iter().enumerate() {
                let e = i + 1;
                let p = dir.join(format!("llama_rank_{r}-{e}_2.ckpt"));
                std::fs::write(&p, b).expect("write");
                let f = std::fs::File::options().write(true).open(&p).expect("open");
                f.set_modified(t0 + Duration::from_secs(60 * e as u64))
                    .expect("mtime");
            }
            let meta = format!("{{\"last_epoch\": {steps}, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-{steps}_2.ckpt\"}}");
            std::fs::write(dir.join("meta.json"), meta).expect("write");
        }
    }
    std::fs::write(marker, b"").expect("marker");
    roots
}

fn run(args: &[String]) -> (Duration, String, String) {
    let t = Instant::now();
    let mut cmd = Command::new(BIN);
    for k in ckptscope::job::VARIABLES {
        cmd.env_remove(k);
    }
    let o = cmd.args(args).output().expect("ckptscope");
    (
        t.elapsed(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn bytes(w: &Wire) -> (u64, u64) {
    (w.up.load(Relaxed), w.down.load(Relaxed))
}

fn show(what: &str, t: Duration, before: (u64, u64), after: (u64, u64)) {
    println!(
        "{what:<46} {:>8.3} s  {:>10} B up  {:>11} B down",
        t.as_secs_f64(),
        after.0 - before.0,
        after.1 - before.1
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sshd_bin = match sshserver::sshd_path() {
        Ok(p) => p,
        Err(why) => {
            println!("ssh_scale: not run: {why}");
            return;
        }
    };
    let nodes = env_or("SSH_NODES", 16);
    let steps = env_or("SSH_STEPS", 50);
    let idle = env_or("SSH_IDLE", 60);
    let base = std::env::temp_dir().join(format!("ckptscope-ssh-{nodes}x{PER_NODE}x{steps}"));
    let roots = generate(&base, nodes, steps);
    let sshd = sshserver::Sshd::start(&sshd_bin);
    let wire = Arc::new(Wire::default());
    let via = proxy(format!("127.0.0.1:{}", sshd.port), wire.clone());
    let port = via.rsplit(':').next().expect("port").to_owned();
    let prefix = format!("ssh://{}@127.0.0.1:{port}", sshd.user);
    let urls: Vec<String> = roots
        .iter()
        .map(|r| format!("{prefix}{}", r.display()))
        .collect();
    let local: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let world = (nodes * PER_NODE).to_string();
    let job = ["--world-size", &world, "--device-num-per-node", "8"].map(String::from);
    let with = |cmd: &str, rs: &[String], ssh: bool| -> Vec<String> {
        let mut a = vec![cmd.to_owned()];
        a.extend(rs.iter().cloned());
        a.extend(job.iter().cloned());
        if ssh {
            a.extend(sshd.flags());
        }
        a
    };
    println!(
        "{nodes} nodes × {PER_NODE} ranks × {steps} steps ({} shards) over ssh to 127.0.0.1",
        nodes * PER_NODE * steps
    );
    for cmd in ["resolve", "grid"] {
        let mut args = with(cmd, &local, false);
        if cmd == "resolve" {
            args.push("--json".into());
        }
        let (t, out_l, _) = run(&args);
        show(
            &format!("{cmd} on the {nodes} folders here"),
            t,
            (0, 0),
            (0, 0),
        );
        let mut args = with(cmd, &urls, true);
        if cmd == "resolve" {
            args.push("--json".into());
        }
        let before = bytes(&wire);
        let (t, out_r, err) = run(&args);
        show(
            &format!("{cmd} over {nodes} ssh:// roots"),
            t,
            before,
            bytes(&wire),
        );
        assert_eq!(
            out_l,
            out_r.replace(&prefix, ""),
            "{cmd}: the same answer\n{err}"
        );
    }
    watch(
        &with("watch", &urls, true),
        &wire,
        &roots,
        (nodes, steps, idle),
    );
}

/// A watch over the ssh roots: first resolution, an idle period, one shard deleted.
fn watch(
    args: &[String],
    wire: &Wire,
    roots: &[PathBuf],
    (nodes, steps, idle): (usize, usize, usize),
) {
    let mut args = args.to_vec();
    args.push("--ndjson".into());
    let before = bytes(wire);
    let t = Instant::now();
    let mut cmd = Command::new(BIN);
    for k in ckptscope::job::VARIABLES {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let resolution = |rx: &std::sync::mpsc::Receiver<String>| loop {
        let l = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("a resolution within 300 s");
        let v: serde_json::Value = serde_json::from_str(&l).expect("ndjson");
        if v["event"] == "resolution" {
            return v;
        }
    };
    let first = resolution(&rx);
    show(
        &format!("watch: first resolution over {nodes} roots"),
        t.elapsed(),
        before,
        bytes(wire),
    );
    let before = bytes(wire);
    std::thread::sleep(Duration::from_secs(idle as u64));
    show(
        &format!("watch: {idle} s idle"),
        Duration::from_secs(idle as u64),
        before,
        bytes(wire),
    );
    while rx.try_recv().is_ok() {}
    let node = nodes / 3;
    let rank = node * PER_NODE + 5;
    // the newest shard, the one its meta.json names
    let gone = roots[node].join(format!("rank_{rank}/llama_rank_{rank}-{steps}_2.ckpt"));
    let before = bytes(wire);
    let t = Instant::now();
    std::fs::rename(&gone, gone.with_extension("moved")).expect("move the shard away");
    loop {
        let v = resolution(&rx);
        if v["mindformers"] != first["mindformers"] || v["safe"] != first["safe"] {
            break;
        }
    }
    show(
        &format!("watch: rank {rank}'s shard gone → new resolution"),
        t.elapsed(),
        before,
        bytes(wire),
    );
    std::fs::rename(gone.with_extension("moved"), &gone).expect("put the shard back");
    let _ = child.kill();
    let _ = child.wait();
}
