//! `ssh://` roots end to end, through a real OpenSSH server: a throwaway `sshd` on 127.0.0.1
//! with its own host key and one authorised client key, the system's `ssh` client, and this
//! build of ckptscope as the remote program (the "remote host" is this machine, so the same
//! folders can be read locally and over ssh and the answers compared). Ignored by a plain
//! `cargo test` (a fresh machine has no OpenSSH server); `.ci/run` installs OpenSSH and runs it
//! with `--ignored`, and there a missing sshd fails it.

use crate::common::run_bin as run;
use crate::common::sshserver::{must, sshd_path, Sshd};
use crate::multiroot::three_nodes;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one expected change may take to show (returned from as soon as it shows).
const DEADLINE: Duration = Duration::from_secs(30);

/// The job's flags: 24 ranks, 8 per node.
const JOB: [&str; 4] = ["--world-size", "24", "--device-num-per-node", "8"];

/// `ckptscope CMD ROOTS… JOB… EXTRA…`: exit status, stdout, stderr.
fn run_on(cmd: &str, roots: &[String], extra: &[String]) -> (Option<i32>, String, String) {
    let mut args: Vec<&str> = vec![cmd];
    args.extend(roots.iter().map(String::as_str));
    args.extend(JOB);
    args.extend(extra.iter().map(String::as_str));
    run(&args)
}

fn local(roots: &[PathBuf]) -> Vec<String> {
    roots.iter().map(|r| r.display().to_string()).collect()
}

fn parse(out: &str, err: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"))
}

/// `resolve --json` on `roots`: exit status and document.
fn resolve(roots: &[String], extra: &[String]) -> (Option<i32>, Value) {
    let mut extra = extra.to_vec();
    extra.push("--json".into());
    let (code, out, err) = run_on("resolve", roots, &extra);
    (code, parse(&out, &err))
}

/// A document read over ssh as the local paths would give it: the URL prefix removed from
/// every string (roots, messages naming a folder).
fn unprefixed(doc: &Value, prefix: &str) -> Value {
    serde_json::from_str(&doc.to_string().replace(prefix, "")).unwrap()
}

/// A running `ckptscope watch --ndjson`: its lines arrive on a channel (read by a thread, so a
/// wait can have a deadline); killed and reaped on drop.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    /// Every line so far (for messages when an expected one does not come).
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(roots: &[String], extra: &[String]) -> Watch {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ckptscope"));
        for k in ckptscope::job::VARIABLES {
            cmd.env_remove(k);
        }
        let mut child = cmd
            .arg("watch")
            .args(roots)
            .args(JOB)
            .arg("--ndjson")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (keep, mut err) = (stderr.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                keep.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The first event from now on for which `pick` gives something, within [`DEADLINE`];
    /// else a panic naming `what`, the last lines seen and both error outputs.
    fn until<T>(
        &mut self,
        what: &str,
        sshd: &Sshd,
        mut pick: impl FnMut(&Value) -> Option<T>,
    ) -> T {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(e) => {
                    let tail = self.seen.len().saturating_sub(12);
                    panic!(
                        "watch: no {what} ({e:?}); last lines:\n{}\nckptscope stderr: {}\nsshd: {}",
                        self.seen[tail..].join("\n"),
                        self.stderr.lock().unwrap(),
                        sshd.log_text()
                    )
                }
            };
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("watch printed a line that is not JSON ({e}): {line}"));
            self.seen.push(line);
            if let Some(t) = pick(&v) {
                return t;
            }
        }
    }
}

/// The fields a `resolution` event carries, each as `resolve --json` (`want`) gives it, with
/// ssh:// roots read as the local paths; the event's `event` and `ts` aside. `false` while a
/// field differs (the hosts' checks are still coming in, a change is not seen yet).
fn same_decision(event: &Value, want: &Value, prefix: &str) -> bool {
    let got = unprefixed(event, prefix);
    let fields = got.as_object().unwrap();
    assert!(
        ["outcome", "mindformers", "safe", "nodes"]
            .iter()
            .all(|k| fields.contains_key(*k)),
        "a resolution without the decision fields: {event}"
    );
    fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "event" | "ts"))
        .all(|(k, v)| want.get(k) == Some(v))
}

/// The pids of `ckptscope watch --wire … PATH` processes on this machine: the remote ends
/// the ssh server started (not the shell that ran them, nor the client's command line).
fn remote_watchers(path: &Path) -> Vec<u32> {
    let bin = env!("CARGO_BIN_EXE_ckptscope");
    let path = path.to_str().unwrap();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.first().map(String::as_str) == Some(bin)
            && argv.iter().any(|a| a == "--wire")
            && argv.last().map(String::as_str) == Some(path)
        {
            pids.push(pid);
        }
    }
    pids
}

/// Rank `rank`'s shard `file` cut to 10 bytes where it lies (a valid shard before).
fn truncate(root: &Path, rank: u64, file: &str) {
    let f = root.join(format!("rank_{rank}/{file}"));
    assert!(f.metadata().unwrap().len() > 10, "{}", f.display());
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(10)
        .unwrap();
}

/// Three nodes' folders, each reached through the real ssh client and server, give what the
/// local folders give: the same `resolve --json` document (the URL prefix aside, and the same
/// exit status), the same grid; and a live watch over ssh follows them — it reaches the local
/// answer, shows a node whose remote watcher was killed as disconnected and reconnects it,
/// and follows shards truncated on a node (the reconnected one included) to the answer the
/// local folders then give.
#[test]
#[ignore = "needs OpenSSH's sshd: .ci/run installs it and runs this test with --ignored"]
fn ssh_roots_through_a_real_sshd_answer_as_the_local_folders() {
    let bin = sshd_path().unwrap_or_else(|why| panic!("{why}"));
    let sshd = Sshd::start(&bin);
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    // node 1's rank 9 lost its newest shard: it resumes from 15, the other ranks from 20
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    let urls: Vec<String> = roots.iter().map(|r| sshd.url(r)).collect();
    let prefix = sshd.prefix();
    let flags = sshd.flags();

    // 1. resolve: the whole document, as the local folders give it
    let (code, want) = resolve(&local(&roots), &[]);
    assert_eq!(code, Some(0), "{want}");
    let (rcode, got) = resolve(&urls, &flags);
    assert_eq!(
        unprefixed(&got, &prefix),
        want,
        "resolve --json over ssh:// (left) and on the local paths (right) differ"
    );
    assert_eq!(rcode, code, "{got}");
    assert_eq!(want["safe"]["epoch"], 15, "{}", want["safe"]);

    // 2. grid: the same text
    let (code, want_grid, err) = run_on("grid", &local(&roots), &[]);
    assert_eq!(code, Some(0), "{want_grid}{err}");
    let (rcode, got_grid, rerr) = run_on("grid", &urls, &flags);
    assert_eq!(rcode, code, "{got_grid}{rerr}\nsshd: {}", sshd.log_text());
    assert_eq!(got_grid.replace(&prefix, ""), want_grid);

    // 3. watch: the local answer first (a short poll: changes are seen in time even where
    // inotify cannot be armed)
    let poll = ["--poll".to_owned(), "2".to_owned()];
    let mut w = Watch::start(&urls, &[&flags[..], &poll[..]].concat());
    w.until("resolution equal to resolve --json's", &sshd, |v| {
        (v["event"] == "resolution" && same_decision(v, &want, &prefix)).then_some(())
    });
    // node 2's remote watcher dies: its root is shown disconnected, then reconnected
    let pids = remote_watchers(&roots[2]);
    assert_eq!(pids.len(), 1, "node 2's remote watcher: {pids:?}");
    must(Command::new("kill").args(["-9", &pids[0].to_string()]));
    w.until("mode event saying node 2 is disconnected", &sshd, |v| {
        (v["event"] == "mode"
            && v["mode"]["kind"] == "disconnected"
            && v["mode"]["root"] == urls[2].as_str())
        .then_some(())
    });
    w.until("mode event after reconnecting", &sshd, |v| {
        (v["event"] == "mode" && v["mode"]["kind"] != "disconnected").then_some(())
    });
    assert_eq!(
        remote_watchers(&roots[2]).len(),
        1,
        "node 2 is watched again"
    );
    // shards truncated while watched: rank 8's newest on node 1 (rank 8 loads its newest, and
    // fails), then rank 17's step 15 on the reconnected node 2 (the safe pick moves to 10)
    for (k, rank, file, safe) in [
        (1, 8, "llama_rank_8-20_2.ckpt", 15),
        (2, 17, "llama_rank_17-15_2.ckpt", 10),
    ] {
        truncate(&roots[k], rank, file);
        let (_, want) = resolve(&local(&roots), &[]);
        assert_eq!(want["safe"]["epoch"], safe, "{}", want["safe"]);
        w.until(
            &format!("resolution equal to resolve --json's after {file} was truncated"),
            &sshd,
            |v| (v["event"] == "resolution" && same_decision(v, &want, &prefix)).then_some(()),
        );
    }
    drop(w);
    // the local side gone, the remote watchers end with their input
    let until = Instant::now() + DEADLINE;
    while roots.iter().any(|r| !remote_watchers(r).is_empty()) {
        assert!(
            Instant::now() < until,
            "remote watchers still running after the watch ended: {:?}",
            roots.iter().map(|r| remote_watchers(r)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
