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
            let mut a: Vec<&str> = cmd.to_vec();
            a.push(&local);
            let (code_l, out_l, err_l) = run(&server, &a);
            *a.last_mut().unwrap() = &remote;
            let (code_r, out_r, err_r) = run(&server, &a);
            let what = format!("{name}: {}", cmd.join(" "));
            assert_eq!(code_l, code_r, "{what}: exit codes\n{err_l}\n{err_r}");
            assert_eq!(as_url(&out_l, base, &url), out_r, "{what}");
            assert!(!out_l.is_empty(), "{what}: said nothing ({err_l})");
            compared += 1;
        }
    }
    assert_eq!(compared, trees.len() * 4);
}
