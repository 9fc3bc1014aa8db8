//! Issue 14, roots on other hosts (`ssh://`), through a stand-in for the ssh client that runs
//! the remote command here (the end-to-end test with a real sshd is `sshd.rs`): the answers
//! equal the local ones, a remote watcher that dies is shown disconnected and reconnected, and
//! what a remote sends is never trusted (another protocol version, a name with an escape
//! sequence, a client that cannot connect).

use crate::common::run_bin as run;
use crate::multiroot::three_nodes;
use ckptscope::fsys::RealFs;
use ckptscope::watch::{spawn_many, Mode, WatchConfig, WatchMsg};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ckptscope");

/// A script in `dir` named `name` with `body` (after `#!/bin/sh`), executable.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A stand-in for ssh: runs the remote command (its last argument) through `sh`, as sshd
/// hands it to the user's shell, after noting its process id in `pids` — kept by `exec`, so
/// that killing it kills the remote watcher itself.
pub(crate) fn fake_ssh(dir: &Path) -> PathBuf {
    let pids = dir.join("pids");
    script(
        dir,
        "fake-ssh",
        &format!(
            "for last; do :; done\necho $$ >> '{}'\neval \"exec $last\"",
            pids.display()
        ),
    )
}

fn url(p: &Path) -> String {
    format!("ssh://localhost{}", p.display())
}

pub(crate) fn ssh_flags(ssh: &Path) -> Vec<String> {
    vec![
        "--ssh-command".into(),
        ssh.display().to_string(),
        "--remote-ckptscope".into(),
        BIN.into(),
    ]
}

/// `cmd ROOTS… ARGS…` on `roots` given as they are and as ssh:// URLs: (exit code, output)
/// of each, the URLs' prefix taken out of the second so that the documents compare.
fn both(cmd: &str, roots: &[PathBuf], args: &[&str], ssh: &Path) -> [(Option<i32>, String); 2] {
    let local: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let remote: Vec<String> = roots.iter().map(|r| url(r)).collect();
    let go = |rs: &[String], extra: &[String]| {
        let mut a: Vec<&str> = vec![cmd];
        a.extend(rs.iter().map(String::as_str));
        a.extend(args);
        a.extend(extra.iter().map(String::as_str));
        let (code, out, err) = run(&a);
        (code, format!("{out}{err}").replace("ssh://localhost", ""))
    };
    [go(&local, &[]), go(&remote, &ssh_flags(ssh))]
}

/// Three nodes, rank 9 (node 1) without its newest shard, rank 20's newest truncated: every
/// command answers over ssh:// exactly as on the folders themselves — per-node answers, the
/// safe pick, the verdicts, the grid.
#[test]
fn every_command_answers_over_ssh_as_on_the_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    let f = std::fs::File::options()
        .write(true)
        .open(roots[2].join("rank_20/llama_rank_20-20_2.ckpt"))
        .unwrap();
    f.set_len(40).unwrap();
    // a manifest in rank 3's folder: one shard as written, one recorded with another digest
    let sum = |name: &str| {
        use sha2::Digest;
        let bytes = std::fs::read(roots[0].join("rank_3").join(name)).unwrap();
        format!("{:x}  {name}\n", sha2::Sha256::digest(&bytes))
    };
    let good = sum("llama_rank_3-20_2.ckpt");
    let bad = sum("llama_rank_3-15_2.ckpt").replacen(|c: char| c.is_ascii_hexdigit(), "0", 3);
    std::fs::write(roots[0].join("rank_3/SHA256SUMS"), good + &bad).unwrap();
    let ssh = fake_ssh(tmp.path());
    let job = ["--world-size", "24", "--device-num-per-node", "8"];
    for (cmd, extra) in [
        ("resolve", &["--json"][..]),
        ("resolve", &[][..]),
        ("verify", &["--json"][..]),
        ("grid", &[][..]),
    ] {
        let args: Vec<&str> = job.iter().chain(extra).copied().collect();
        let [local, remote] = both(cmd, &roots, &args, &ssh);
        assert_eq!(local, remote, "{cmd} {extra:?}");
    }
    // every shard hashed where it is, against the hosts' manifests: the same verdicts and
    // digests; the manifests read are not listed (the hosts read them)
    let [(code_l, local), (code_r, remote)] = both("verify", &roots, &["--json", "--hash"], &ssh);
    assert_eq!(code_l, code_r);
    let doc = |s: &str| -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        v["summary"]["manifests"] = serde_json::Value::Null;
        v
    };
    assert_eq!(doc(&local), doc(&remote));
    assert!(
        local.contains("SHA256SUMS"),
        "the local run names its manifest"
    );
    assert!(remote.contains("\"hash_mismatch\""), "{remote}");
    // (and the answer is the interesting one: node 1's rank 9 resumes from 15, rank 20's
    // pick is damaged)
    let [(code, out), _] = both("resolve", &roots, &job, &ssh);
    assert!(
        out.contains("rank 9 → 15_2") || out.contains("15_2"),
        "{code:?} {out}"
    );
    assert!(
        std::fs::read_to_string(tmp.path().join("pids"))
            .unwrap()
            .lines()
            .count()
            >= 12,
        "every command went through the ssh client"
    );
}

/// The context a watch of `roots` (as ssh:// URLs through `ssh`) is started with.
fn remote_ctx(tmp: &Path, roots: &[PathBuf], ssh: &Path) -> ckptscope::JobContext {
    let env = ckptscope::Environment::with(&[], tmp);
    let flags = ckptscope::JobFlags {
        world_size: Some(24),
        device_num_per_node: Some(8),
        ssh_command: Some(ssh.display().to_string()),
        remote_ckptscope: Some(BIN.into()),
        ..Default::default()
    };
    let os: Vec<std::ffi::OsString> = roots.iter().map(|r| url(r).into()).collect();
    ckptscope::JobContext::gather_roots(&RealFs, &env, &os, &flags).unwrap()
}

/// The process id of the remote watcher of `root` (the fake client noted each; `exec` kept
/// them): the one whose command line names the folder.
fn remote_watcher_of(tmp: &Path, root: &Path) -> i32 {
    let pids = std::fs::read_to_string(tmp.join("pids")).unwrap();
    let want = root.as_os_str().as_encoded_bytes();
    pids.lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.windows(want.len()).any(|w| w == want))
        })
        .unwrap_or_else(|| panic!("no remote watcher of {} among {pids}", root.display()))
}

/// Wait until `want` accepts a mode message (`Some`) or the session after a message is
/// applied (`None`), applying every other message to `s` on the way.
fn until(
    h: &ckptscope::watch::WatchHandle,
    s: &mut ckptscope::Session,
    what: &str,
    mut want: impl FnMut(Option<&WatchMsg>, &ckptscope::Session) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = h
            .events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {what} within 30 s"));
        let hit = match m {
            WatchMsg::Mode { .. } => want(Some(&m), s),
            m => {
                s.absorb(m).unwrap();
                want(None, s)
            }
        };
        if hit {
            return;
        }
    }
}

/// A remote watcher killed (its host rebooted, the link cut) shows as a disconnected root,
/// is started again with backoff, and its folders as it holds them then replace the old ones
/// — a shard lost while it was down is seen.
#[test]
fn a_remote_watcher_that_dies_is_shown_disconnected_and_reconnected() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    let ssh = fake_ssh(tmp.path());
    let ctx = remote_ctx(tmp.path(), &roots, &ssh);
    let cfg = WatchConfig::for_job(&ctx, Arc::new(RealFs), Some(0.5), false)
        .unwrap()
        .for_roots(&ctx)
        .unwrap();
    let h = spawn_many(cfg, ctx.node_block());
    let Ok(WatchMsg::Started { tree, .. }) = h.events.recv() else {
        panic!("no first scan")
    };
    assert_eq!(tree.dirs.len(), 24);
    let mut s = ckptscope::Session::from_tree(Arc::new(RealFs), ctx.clone(), *tree)
        .with_disk_checks(ckptscope::session::DiskChecks::Deferred);
    let node1 = remote_watcher_of(tmp.path(), &roots[1]);
    // SAFETY: a plain syscall on a process id this test started
    assert_eq!(unsafe { libc::kill(node1, libc::SIGKILL) }, 0);
    until(
        &h,
        &mut s,
        "disconnected mode",
        |m, _| matches!(m, Some(WatchMsg::Mode { mode: Mode::Disconnected { root, .. }, .. }) if root.contains("node1")),
    );
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    until(
        &h,
        &mut s,
        "reconnection",
        |m, _| matches!(m, Some(WatchMsg::Mode { reason, .. }) if reason.contains("reconnected")),
    );
    // the folders as node 1 holds them now
    let rank9 = s.tree().dirs.get("rank_9").unwrap();
    assert!(!rank9.listing.entries().exists("llama_rank_9-20_2.ckpt"));
    assert_eq!(s.tree().dirs.len(), 24);
    // and it is followed again: a change after the reconnection arrives too
    std::fs::remove_file(roots[1].join("rank_10/llama_rank_10-20_2.ckpt")).unwrap();
    until(&h, &mut s, "the change after the reconnection", |_, s| {
        !s.tree().dirs["rank_10"]
            .listing
            .entries()
            .exists("llama_rank_10-20_2.ckpt")
    });
    h.stop();
}

/// What a remote says is checked before it is believed: another protocol version is refused
/// with both versions named; a folder name holding an escape sequence ends the connection (it
/// never reaches the screen); a client that cannot connect is named with its own words.
#[test]
fn a_remote_is_refused_with_a_reason_when_it_cannot_be_believed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ck");
    std::fs::create_dir(&root).unwrap();
    let ssh = fake_ssh(tmp.path());
    let remote = |name: &str, body: &str| {
        let prog = script(tmp.path(), name, body);
        let u = url(&root);
        let (code, out, err) = run(&[
            "resolve",
            &u,
            "--ssh-command",
            &ssh.display().to_string(),
            "--remote-ckptscope",
            &prog.display().to_string(),
        ]);
        (code, format!("{out}{err}"))
    };
    let (code, msg) = remote(
        "future",
        r#"echo '{"hello":{"protocol":"ckptscope-watch","version":999,"ckptscope":"9.0.0","root":"/x","canonical":"/x","host":"h"}}'; sleep 5"#,
    );
    assert_eq!(code, Some(2), "{msg}");
    assert!(
        msg.contains("version 999")
            && msg.contains(&format!("version {}", ckptscope::remote::wire::VERSION))
            && msg.contains("install the same"),
        "{msg}"
    );
    let hello = format!(
        r#"{{"hello":{{"protocol":"ckptscope-watch","version":{},"ckptscope":"0","root":"/x","canonical":"/x","host":"h","paths":{{"abspath":"/x","realpath":"/x","shared_realpaths":[],"health_json":null,"existing_record":null,"record_path":"/r"}}}}}}"#,
        ckptscope::remote::wire::VERSION
    );
    let mode = r#"{"kind":"inotify","poll_secs":30.0}"#;
    let (code, msg) = remote(
        "hostile",
        &format!(
            r#"echo '{hello}'; echo '{{"begin":{{"root":"/x","state":"missing","root_files":[],"mode":{mode}}}}}'; printf '%s\n' '{{"dir":{{"name":"rank_0\u001b[2J","node":{{"stat":null,"listing":{{"entries":[]}},"meta":null}}}}}}'; sleep 5"#
        ),
    );
    assert_eq!(code, Some(2), "{msg}");
    assert!(
        msg.contains("holds characters") && !msg.contains('\u{1b}'),
        "{msg:?}"
    );
    let (code, msg) = remote("not-ckptscope", "echo 'usage: something else'");
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("hello"), "{msg}");
    let unreachable = script(
        tmp.path(),
        "no-route",
        "echo 'ssh: connect to host nohost port 22: No route to host' >&2; exit 255",
    );
    let (code, out, err) = run(&[
        "resolve",
        &url(&root),
        "--ssh-command",
        &unreachable.display().to_string(),
    ]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(&url(&root)) && err.contains("No route to host"),
        "{err}"
    );
}

/// Over ssh:// the path is the host's, not this machine's: bad URLs, a root given twice and
/// a mix with a missing local root are refused before anything runs.
#[test]
fn ssh_roots_are_checked_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, why) in [
        (vec!["resolve", "ssh://node1"], "no folder after the host"),
        (
            vec!["resolve", "ssh://-oProxyCommand=x/p"],
            "starts with '-'",
        ),
        (
            vec!["resolve", "ssh://a/x", "ssh://a/x"],
            "the same folder is given twice",
        ),
        (
            vec!["resolve", "ssh://a/x", "--ssh-command", "ssh 'open"],
            "not a command line",
        ),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let (code, _, err) = run(&[
        "verify",
        "ssh://a/x",
        "--write-manifest",
        "/tmp/SHA256SUMS",
        "--ssh-command",
        "/bin/false",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("run it on each host"), "{err}");
    drop(tmp);
}

/// `watch --ndjson` over ssh:// roots prints its first resolution only once the hosts have
/// checked what it needs: the first one already has the safe pick `resolve` has (a
/// `"safe": null` printed while the checks are under way would read as "no safe step").
#[test]
fn the_first_resolution_over_ssh_waits_for_the_hosts_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let roots = three_nodes(tmp.path());
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    let ssh = fake_ssh(tmp.path());
    let job = ["--world-size", "24", "--device-num-per-node", "8"];
    let mut args: Vec<String> = vec!["resolve".into()];
    args.extend(roots.iter().map(|r| r.display().to_string()));
    args.extend(job.iter().map(|s| s.to_string()));
    args.push("--json".into());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, out, err) = run(&a);
    let local: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert!(
        local["safe"].is_object(),
        "the local answer has a safe pick: {local}"
    );
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("watch")
        .args(roots.iter().map(|r| url(r)))
        .args(job)
        .arg("--ndjson")
        .args(ssh_flags(&ssh))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for k in ckptscope::job::VARIABLES {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().unwrap();
    let rx = crate::common::lines_of(&mut child);
    let first = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a resolution within 30 s");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        if v["event"] == "resolution" {
            break v;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let unprefixed = |v: &serde_json::Value| v.to_string().replace("ssh://localhost", "");
    assert_eq!(unprefixed(&first["safe"]), unprefixed(&local["safe"]));
    assert_eq!(unprefixed(&first["nodes"]), unprefixed(&local["nodes"]));
    assert_eq!(first["outcome"], local["outcome"]);
    // every node named as given, the first too (by its URL, not its path on that host)
    for (n, r) in first["nodes"].as_array().unwrap().iter().zip(&roots) {
        assert_eq!(n["root"], url(r).as_str());
    }
}

/// The files MindFormers reads outside the checkpoint folder (`<output_dir>/resume_record`,
/// `health_ckpts.json`) and the folder's realpath are the host's: its `hello` brings them, so
/// a stale resume record on the host is reported over ssh:// as it is on the folder itself.
#[test]
fn the_hosts_own_path_facts_come_with_its_hello() {
    let fx = crate::common::fixture_tree("tree-seed");
    let tmp = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(tmp.path());
    let [local, remote] = both("resolve", std::slice::from_ref(&fx.root), &["--json"], &ssh);
    assert_eq!(local, remote);
    assert!(
        remote.1.contains("stale_resume_record"),
        "the host's resume record was read: {}",
        remote.1
    );
}

/// Checks asked of a watcher (a remote host's, or the TUI's verifier) go newest save first,
/// that save on every rank at once: while the newest save's verdicts are unknown the answer
/// falls back to older saves, and asking for all of those made a 128-rank `resolve` over ssh
/// ask 5,703 checks for the 244 it reads, while asking a rank at a time took a round trip per
/// rank (6 s through sshd). `(checks asked, rounds, checks the checks-at-once session made)`
/// of a deferred session run to its end, whose answer must be the checks-at-once session's.
fn deferred_run(root: &Path) -> (Vec<(String, String)>, usize, usize) {
    use ckptscope::fsys::Fs;
    use ckptscope::model::{Delta, FileId, Verified};
    let flags = ckptscope::JobFlags::default();
    let mut deferred = crate::common::session_with(root, &flags)
        .with_disk_checks(ckptscope::session::DiskChecks::Deferred);
    let mut asked = Vec::new();
    let mut rounds = 0;
    for _ in 0..100 {
        deferred.analysis();
        let want = deferred.take_wanted();
        if want.is_empty() && deferred.outstanding() == 0 {
            break;
        }
        rounds += 1;
        let verdicts = want
            .iter()
            .map(|(d, f)| {
                let path = root.join(d).join(f);
                let st = ckptscope::fsys::RealFs.stat(&path).unwrap();
                let check = ckptscope::verify::verdict::check_file(
                    &ckptscope::fsys::RealFs,
                    &path,
                    &st,
                    &Default::default(),
                );
                Delta::Verdict(Verified {
                    dir: d.clone(),
                    file: f.clone(),
                    id: FileId::from(&st),
                    check,
                })
            })
            .collect();
        asked.extend(want);
        deferred.absorb(WatchMsg::Deltas(verdicts)).unwrap();
    }
    let mut now = crate::common::session_with(root, &flags);
    assert_eq!(deferred.resolution(), now.resolution());
    (asked, rounds, now.tree().verdicts.len())
}

/// A 32-rank job of 20 saves, each a minute after the last (`tie`: all at the same time, so
/// MindFormers' newest-by-mtime pick is any save).
fn job_of_saves(root: &Path, tie: bool) {
    let (ranks, steps) = (32u64, 20u64);
    let t0 = std::time::SystemTime::now() - Duration::from_secs(86_400);
    for r in 0..ranks {
        let dir = root.join(format!("rank_{r}"));
        std::fs::create_dir_all(&dir).unwrap();
        for e in 1..=steps {
            let p = dir.join(format!("llama_rank_{r}-{e}_2.ckpt"));
            std::fs::write(&p, ckptscope::writer::ckpt::small_shard(e)).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(t0 + Duration::from_secs(if tie { 60 } else { 60 * e }))
                .unwrap();
        }
        let meta = format!("{{\"last_epoch\": {steps}, \"last_step\": 2, \"last_ckpt_file\": \"llama_rank_{r}-{steps}_2.ckpt\"}}");
        std::fs::write(dir.join("meta.json"), meta).unwrap();
    }
}

#[test]
fn deferred_checks_are_asked_newest_save_first_on_every_rank() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    job_of_saves(&root, false);
    let (asked, rounds, _) = deferred_run(&root);
    assert_eq!(asked.len(), 32, "the newest save only: {asked:?}");
    assert!(asked.iter().all(|(_, f)| f.ends_with("-20_2.ckpt")));
    assert_eq!(rounds, 1);
    // rank 7's newest shard cut short: the next save on every rank, in one more round
    let cut = root.join("rank_7/llama_rank_7-20_2.ckpt");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (asked, rounds, _) = deferred_run(&root);
    assert_eq!(asked.len(), 64, "{asked:?}");
    assert!(rounds <= 2, "{rounds} rounds");
    // every save at the same time: MindFormers' picks are older saves, asked beside the newest
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkpoint");
    job_of_saves(&root, true);
    let (asked, rounds, read_at_once) = deferred_run(&root);
    assert!(
        asked.len() <= read_at_once + 32,
        "{} asked, {read_at_once} read by the checks-at-once session",
        asked.len()
    );
    assert!(rounds <= 3, "{rounds} rounds");
}
