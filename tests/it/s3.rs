//! Issue 14, roots in object storage (`s3://bucket/prefix`) against a real S3-compatible
//! server on 127.0.0.1 ([`crate::common::s3server`]): every fixture tree uploaded to a bucket
//! gives exactly the answers the same tree gives on disk — `resolve --json`, `verify --json`,
//! `grid` — and a watch of the bucket follows objects deleted and rewritten as a rescan would.

use crate::common::s3server::S3Server;
use crate::common::{copy_tree, fixture_tree, fixtures};
use std::path::{Path, PathBuf};

const BUCKET: &str = "ckpts";

/// Run ckptscope with `args` against `server` (credentials and endpoint from the environment,
/// as a user's shell gives them), none of the job's own variables.
fn run(server: &S3Server, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"));
    for k in ckptscope::job::VARIABLES {
        cmd.env_remove(k);
    }
    cmd.env_remove("AWS_PROFILE");
    for (k, v) in server.env() {
        cmd.env(k, v);
    }
    let o = cmd.args(args).output().expect("run ckptscope");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every fixture tree: (name, the folder holding `checkpoint/`, kept alive by the temp dir).
fn every_tree() -> Vec<(String, PathBuf, tempfile::TempDir)> {
    let mut out = Vec::new();
    let legacy = [
        "tree-async",
        "tree-gbs-change",
        "tree-safetensors",
        "tree-seed",
        "tree-seed-run1",
    ];
    for name in legacy {
        let t = fixture_tree(name);
        out.push((name.to_owned(), t.base, t.tmp));
    }
    let new = fixtures().join("../mindformers-new");
    let mut names: Vec<String> = std::fs::read_dir(&new)
        .expect("mindformers-new fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tree-"))
        .collect();
    names.sort();
    assert!(names.len() >= 17, "the new-format fixture trees: {names:?}");
    for name in names {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().join(&name);
        copy_tree(&new.join(&name), &base);
        out.push((format!("new/{name}"), base, tmp));
    }
    out
}

/// `cmd ROOT` on the disk copy (`local`) and on the bucket (`remote`): the same exit status and
/// the same output, the disk copy's folder `base` written as its URL `url`. The bucket's
/// output and error output, for more to check.
fn same_from_bucket(
    server: &S3Server,
    cmd: &[&str],
    (local, remote): (&str, &str),
    base: &Path,
    url: &str,
) -> (String, String) {
    let with = |root: &str| {
        let mut a = cmd.to_vec();
        a.push(root);
        run(server, &a)
    };
    let (code_l, out_l, err_l) = with(local);
    let (code_r, out_r, err_r) = with(remote);
    assert_eq!(
        code_l, code_r,
        "{cmd:?} {remote}: exit codes\n{err_l}\n{err_r}"
    );
    assert_eq!(as_url(&out_l, base, url), out_r, "{cmd:?} {remote}");
    assert!(!out_l.is_empty(), "{cmd:?} {local}: said nothing ({err_l})");
    (out_r, err_r)
}

/// The local output with the local folder written as its URL.
fn as_url(s: &str, base: &Path, url: &str) -> String {
    s.replace(&base.display().to_string(), url)
}

#[test]
fn every_fixture_tree_answers_the_same_from_a_bucket() {
    let server = S3Server::start(&[BUCKET]);
    let trees = every_tree();
    let mut compared = 0;
    for (name, base, _tmp) in &trees {
        let n = server.upload_tree(BUCKET, name, base);
        assert!(n > 0, "{name}: nothing uploaded");
        let url = format!("s3://{BUCKET}/{name}");
        let local = base.join("checkpoint").display().to_string();
        let remote = format!("{url}/checkpoint");
        for cmd in [
            &["resolve", "--json"][..],
            &["resolve"][..],
            &["verify", "--json"][..],
            &["grid"][..],
        ] {
            same_from_bucket(&server, cmd, (&local, &remote), base, &url);
            compared += 1;
        }
        // and a watch of the bucket starts from the answer a watch of the disk copy starts from
        let strip = |mut v: serde_json::Value| {
            v.as_object_mut().expect("an event").remove("ts");
            v
        };
        let on_disk = strip(first_resolution(&server, &local));
        let in_bucket = strip(first_resolution(&server, &remote));
        assert_eq!(
            as_url(&on_disk.to_string(), base, &url),
            in_bucket.to_string(),
            "{name}: watch --ndjson"
        );
        // a new-format tree's event carries its answer, not the legacy reading of it
        let new = name.starts_with("new/");
        assert_eq!(in_bucket.get("mindformers").is_some(), !new, "{in_bucket}");
        assert_eq!(in_bucket["new_format"].is_object(), new, "{in_bucket}");
        compared += 1;
    }
    assert_eq!(compared, trees.len() * 5);
}

/// The first resolution `watch --ndjson ROOT` prints.
fn first_resolution(server: &S3Server, root: &str) -> serde_json::Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"));
    for k in ckptscope::job::VARIABLES {
        cmd.env_remove(k);
    }
    for (k, v) in server.env() {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["watch", "--ndjson", root])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch");
    let rx = crate::common::lines_of(&mut child);
    let found = loop {
        let Ok(l) = rx.recv_timeout(std::time::Duration::from_secs(30)) else {
            break None;
        };
        let v: serde_json::Value = serde_json::from_str(&l).expect("ndjson");
        if v["event"] == "resolution" {
            break Some(v);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    found.unwrap_or_else(|| panic!("{root}: no resolution within 30 s"))
}

/// `resolve --json` of the local copy, written with the bucket's URL.
fn local_doc(server: &S3Server, base: &Path, url: &str) -> serde_json::Value {
    let root = base.join("checkpoint").display().to_string();
    let (_, out, err) = run(server, &["resolve", "--json", &root]);
    serde_json::from_str(&as_url(&out, base, url)).unwrap_or_else(|e| panic!("{e}: {err}"))
}

/// Whether a resolution event says what `doc` says, field by field (the event carries part of
/// the document).
fn agrees(event: &serde_json::Value, doc: &serde_json::Value) -> bool {
    let fields = event.as_object().expect("an object");
    let shared: Vec<&String> = fields
        .keys()
        .filter(|k| doc.get(k.as_str()).is_some())
        .collect();
    assert!(
        shared.len() >= 2,
        "a resolution shares fields with resolve --json: {event}"
    );
    shared.iter().all(|k| event[k.as_str()] == doc[k.as_str()])
}

/// A watch of a bucket polls it (no events exist) and follows what changes there — a shard
/// deleted, a shard rewritten truncated — to the answer `resolve` gives on the same tree on
/// disk after the same change; its mode line says what a poll costs.
#[test]
fn a_watch_of_a_bucket_follows_deletes_and_rewrites() {
    use std::time::{Duration, Instant};
    let server = S3Server::start(&[BUCKET]);
    let t = fixture_tree("tree-seed");
    server.upload_tree(BUCKET, "live", &t.base);
    let url = format!("s3://{BUCKET}/live");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"));
    for k in ckptscope::job::VARIABLES {
        cmd.env_remove(k);
    }
    for (k, v) in server.env() {
        cmd.env(k, v);
    }
    cmd.args([
        "watch",
        "--ndjson",
        "--poll",
        "0.2",
        &format!("{url}/checkpoint"),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("watch");
    let rx = crate::common::lines_of(&mut child);
    let mut modes = Vec::new();
    let mut until_agrees = |doc: &serde_json::Value, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = serde_json::Value::Null;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(l) = rx.recv_timeout(left) else {
                panic!("{what}: no agreeing resolution within 60 s; last: {last}\nwanted: {doc}");
            };
            let v: serde_json::Value = serde_json::from_str(&l).expect("ndjson");
            if v["event"] == "mode" {
                modes.push(v.to_string());
            }
            if v["event"] == "resolution" {
                if agrees(&v, doc) {
                    return;
                }
                last = v;
            }
        }
    };
    let first = local_doc(&server, &t.base, &url);
    until_agrees(&first, "the first resolution");
    // rank 2's newest shard deleted, in the bucket and on disk
    let gone = "checkpoint/rank_2/llama3_1_8b_rank_2_1-30_2.ckpt";
    server
        .bucket(BUCKET)
        .delete_object(format!("live/{gone}"))
        .expect("delete");
    std::fs::remove_file(t.base.join(gone)).unwrap();
    let after_delete = local_doc(&server, &t.base, &url);
    assert_ne!(
        first["mindformers"], after_delete["mindformers"],
        "the delete changes the pick"
    );
    until_agrees(&after_delete, "after a delete");
    // rank 1's 25_2 shard rewritten with half its bytes, in both places at the same time
    let cut = "checkpoint/rank_1/llama3_1_8b_rank_1_1-25_2.ckpt";
    let bytes = std::fs::read(t.base.join(cut)).unwrap();
    let half = &bytes[..bytes.len() / 2];
    server
        .bucket(BUCKET)
        .put_object(format!("live/{cut}"), half)
        .expect("put");
    std::fs::write(t.base.join(cut), half).unwrap();
    let when = std::fs::metadata(server.object_file(BUCKET, &format!("live/{cut}")))
        .unwrap()
        .modified()
        .unwrap();
    let ms = when
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let when = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    crate::common::s3server::set_mtime(&server.object_file(BUCKET, &format!("live/{cut}")), when);
    crate::common::s3server::set_mtime(&t.base.join(cut), when);
    let after_cut = local_doc(&server, &t.base, &url);
    assert_ne!(
        after_cut["safe"], after_delete["safe"],
        "the cut changes the safe pick"
    );
    until_agrees(&after_cut, "after a truncating rewrite");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        modes
            .iter()
            .any(|m| m.contains("a poll is 1 LIST request (1,000 keys each)")),
        "the mode line says what a poll costs: {modes:?}"
    );
}

/// The requests line a one-shot command ends with: (GET requests, bytes they read).
fn gets(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("LIST,") && l.contains("GET ("))
        .unwrap_or_else(|| panic!("no requests line in: {stderr}"));
    let num = |s: &str| s.replace(',', "").trim().parse::<u64>().expect("a number");
    let after_list = line.split("LIST, ").nth(1).expect("GET count");
    let count = num(after_list.split(" GET").next().expect("count"));
    let bytes = num(after_list
        .split("GET (")
        .nth(1)
        .expect("bytes")
        .split(" bytes")
        .next()
        .expect("n"));
    (count, bytes)
}

/// The cheap check reads a shard's record headers with ranged GETs, not its tensors: a
/// 16 MiB shard costs a few windows of 64 KiB; `--hash` reads it whole.
#[test]
fn the_cheap_check_reads_headers_and_hash_reads_everything() {
    use ckptscope::writer::ckpt::{encode, Tensor};
    let server = S3Server::start(&[BUCKET]);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("big/checkpoint");
    let mut tensors: Vec<Tensor> = (0..4)
        .map(|i| {
            Tensor::f32s(
                &format!("layer{i}.weight"),
                &[1024, 1024],
                std::iter::repeat_n(0.5, 1 << 20),
            )
        })
        .collect();
    tensors.push(Tensor::i64_scalar("epoch_num", 1));
    tensors.push(Tensor::i64_scalar("step_num", 1));
    let bytes = encode(&tensors);
    std::fs::create_dir_all(root.join("rank_0")).unwrap();
    std::fs::write(root.join("rank_0/net_rank_0-1_1.ckpt"), &bytes).unwrap();
    server.upload_tree(BUCKET, "big", &tmp.path().join("big"));
    let url = format!("s3://{BUCKET}/big/checkpoint");
    let (code, out, err) = run(&server, &["verify", "--json", &url]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (n, read) = gets(&err);
    assert!(n >= 2, "the walk moves by ranged reads: {err}");
    assert!(
        read * 16 < bytes.len() as u64,
        "the cheap check read {read} of {} bytes: {err}",
        bytes.len()
    );
    let (code, out, err) = run(&server, &["verify", "--json", "--hash", &url]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (_, read) = gets(&err);
    assert!(read >= bytes.len() as u64, "--hash reads every byte: {err}");
}

/// A key may hold what a terminal must not receive: a folder named with an escape sequence
/// is shown as the same folder on disk is — escaped, never raw — in every command. (Keys with
/// an empty or `..` segment, which no folder can hold, are left out with a count: the
/// listing's unit tests; this server folds them into paths when it stores them.)
#[test]
fn hostile_keys_read_as_the_same_names_on_disk() {
    let server = S3Server::start(&[BUCKET]);
    let t = fixture_tree("tree-seed-run1");
    let odd = t.root.join("rank_0\x1b[2J");
    std::fs::create_dir(&odd).unwrap();
    std::fs::write(odd.join("llama3_1_8b_rank_0-99_2.ckpt"), b"x").unwrap();
    server.upload_tree(BUCKET, "h", &t.base);
    let url = format!("s3://{BUCKET}/h");
    let local = t.root.display().to_string();
    let remote = format!("{url}/checkpoint");
    for cmd in [
        &["resolve", "--json"][..],
        &["resolve"],
        &["grid"],
        &["verify", "--json"],
    ] {
        let (out_r, err_r) = same_from_bucket(&server, cmd, (&local, &remote), &t.base, &url);
        assert!(
            !out_r.contains('\x1b') && !err_r.contains('\x1b'),
            "{cmd:?}: {out_r}{err_r}"
        );
    }
}

/// A bucket that cannot be read ends the command at once with the store's own reason and what
/// to check; nothing is guessed from an empty answer.
#[test]
fn a_bucket_that_cannot_be_listed_is_refused_with_the_reason() {
    let server = S3Server::start(&[BUCKET]);
    let url = format!("s3://{BUCKET}/run/checkpoint");
    let mut wrong = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"));
    for (k, v) in server.env() {
        wrong.env(k, v);
    }
    let o = wrong
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .args(["resolve", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("listing failed (HTTP 403"), "{err}");
    assert!(err.contains("credentials"), "{err}");
    let (code, _, err) = run(&server, &["resolve", "s3://no-such-bucket/x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("s3://no-such-bucket/x: listing failed (HTTP 404 NoSuchBucket"),
        "{err}"
    );
    let (code, _, err) = run(&server, &["resolve", "s3://b/a//c"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("give s3://bucket/path/to/checkpoint"), "{err}");
    // an empty prefix is a folder that does not exist, as MindFormers would find it
    let (code_r, out_r, _) = run(&server, &["resolve", "--json", &url]);
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("run/checkpoint");
    let (code_l, out_l, _) = run(
        &server,
        &["resolve", "--json", &missing.display().to_string()],
    );
    assert_eq!(code_r, code_l);
    assert_eq!(
        as_url(
            &out_l,
            &tmp.path().join("run"),
            &format!("s3://{BUCKET}/run")
        ),
        out_r
    );
}

/// A bucket is one root among several: node 1's folder in object storage, nodes 0 and 2 on
/// disk, give the per-node answers the three folders on disk give.
#[test]
fn a_bucket_root_mixes_with_folders() {
    let server = S3Server::start(&[BUCKET]);
    let tmp = tempfile::tempdir().unwrap();
    let roots = crate::multiroot::three_nodes(tmp.path());
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    server.upload_tree(BUCKET, "node1", &roots[1]);
    let url = format!("s3://{BUCKET}/node1");
    let job = ["--world-size", "24", "--device-num-per-node", "8"];
    for cmd in [&["resolve", "--json"][..], &["grid"]] {
        let with = |second: &str| {
            let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            a.push(roots[0].display().to_string());
            a.push(second.to_owned());
            a.push(roots[2].display().to_string());
            a.extend(job.iter().map(|s| s.to_string()));
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            run(&server, &a)
        };
        let (code_l, out_l, err_l) = with(&roots[1].display().to_string());
        let (code_r, out_r, err_r) = with(&url);
        assert_eq!(code_l, code_r, "{cmd:?}: {err_l}\n{err_r}");
        assert_eq!(
            out_l.replace(&roots[1].display().to_string(), &url),
            out_r,
            "{cmd:?}"
        );
        assert!(
            out_r.contains(&url),
            "{cmd:?} names the bucket root: {out_r}"
        );
    }
}

/// The three kinds of root in one job: node 0 over ssh, node 1 in a bucket, node 2 on disk —
/// the answers of three folders on disk.
#[test]
fn a_bucket_an_ssh_host_and_a_folder_in_one_job() {
    let server = S3Server::start(&[BUCKET]);
    let tmp = tempfile::tempdir().unwrap();
    let roots = crate::multiroot::three_nodes(tmp.path());
    std::fs::remove_file(roots[1].join("rank_9/llama_rank_9-20_2.ckpt")).unwrap();
    server.upload_tree(BUCKET, "node1", &roots[1]);
    let ssh = crate::remote::fake_ssh(tmp.path());
    let bucket = format!("s3://{BUCKET}/node1");
    let host = format!("ssh://localhost{}", roots[0].display());
    let job = ["--world-size", "24", "--device-num-per-node", "8"];
    for cmd in [&["resolve", "--json"][..], &["grid"], &["verify", "--json"]] {
        let go = |first: &str, second: &str, extra: &[String]| {
            let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            a.extend([
                first.to_owned(),
                second.to_owned(),
                roots[2].display().to_string(),
            ]);
            a.extend(job.iter().map(|s| s.to_string()));
            a.extend(extra.iter().cloned());
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            run(&server, &a)
        };
        let (code_l, out_l, err_l) = go(
            &roots[0].display().to_string(),
            &roots[1].display().to_string(),
            &[],
        );
        let (code_m, out_m, err_m) = go(&host, &bucket, &crate::remote::ssh_flags(&ssh));
        assert_eq!(code_l, code_m, "{cmd:?}: {err_l}\n{err_m}");
        let mixed = out_m
            .replace("ssh://localhost", "")
            .replace(&bucket, &roots[1].display().to_string());
        assert_eq!(out_l, mixed, "{cmd:?}");
    }
}

/// A store that pages forever: the same continuation token again.
struct Looping;

#[async_trait::async_trait]
impl s3s::S3 for Looping {
    async fn list_objects_v2(
        &self,
        req: s3s::S3Request<s3s::dto::ListObjectsV2Input>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListObjectsV2Output>> {
        Ok(s3s::S3Response::new(s3s::dto::ListObjectsV2Output {
            is_truncated: Some(true),
            next_continuation_token: Some("again".into()),
            contents: Some(Vec::new()),
            name: Some(req.input.bucket),
            ..Default::default()
        }))
    }
}

/// A listing that never ends is not followed: the command says what the store did.
#[test]
fn a_store_that_pages_forever_is_refused() {
    let (endpoint, _rt) = crate::common::s3server::serve(Looping);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .env("AWS_ACCESS_KEY_ID", crate::common::s3server::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", crate::common::s3server::SECRET_KEY)
        .args([
            "resolve",
            "s3://loops/run/checkpoint",
            "--s3-endpoint",
            &endpoint,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("repeated its continuation token"), "{err}");
}

/// A new-format `iteration_N` folder given to resume from, and a whole bucket as the root:
/// both read as the same folders on disk (the iteration folder with its checkpoint folder; the
/// bucket's output folder is the bucket itself, not a path here).
#[test]
fn an_iteration_folder_and_a_whole_bucket_as_roots() {
    let server = S3Server::start(&[BUCKET, "whole"]);
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("nf");
    copy_tree(
        &fixtures().join("../mindformers-new/tree-healthy-2rank"),
        &base,
    );
    server.upload_tree(BUCKET, "nf", &base);
    let iteration = std::fs::read_dir(base.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("iteration_"))
        .min()
        .expect("an iteration folder");
    let local = base
        .join("checkpoint")
        .join(&iteration)
        .display()
        .to_string();
    let url = format!("s3://{BUCKET}/nf");
    let remote = format!("{url}/checkpoint/{iteration}");
    for cmd in [&["resolve", "--json"][..], &["resolve"]] {
        let (out_r, _) = same_from_bucket(&server, cmd, (&local, &remote), &base, &url);
        assert!(out_r.contains(&iteration), "{out_r}");
    }
    // a bucket holding the rank folders at its top
    let t = fixture_tree("tree-seed-run1");
    server.upload_tree("whole", "", &t.root);
    let (code_l, out_l, _) = run(
        &server,
        &["resolve", "--json", &t.root.display().to_string()],
    );
    let (code_r, out_r, err_r) = run(&server, &["resolve", "--json", "s3://whole"]);
    assert_eq!(code_l, code_r, "{err_r}");
    let local: serde_json::Value = serde_json::from_str(&out_l).unwrap();
    let remote: serde_json::Value = serde_json::from_str(&out_r).unwrap();
    assert_eq!(
        local["mindformers"]["per_rank"],
        remote["mindformers"]["per_rank"]
    );
    assert_eq!(local["safe"]["per_rank"], remote["safe"]["per_rank"]);
    // (no `s3:` read as a folder here: every URL whole)
    let both = format!("{out_r}{err_r}");
    assert!(!both.replace("s3://", "").contains("s3:"), "{both}");
}
