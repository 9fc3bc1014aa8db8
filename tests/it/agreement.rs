//! One job, one answer: for every fixture tree and each of many job contexts (environment
//! variables, flags, a YAML, mount tables given through the filesystem seam, records under
//! `output_dir`, relative and symlinked roots), `resolve --json`, the first `resolution` event
//! of `watch --ndjson` and the TUI's state give the same MindFormers answer per rank, the same
//! safe pick and the same data skip. The commands run in-process through their real entry
//! points (the ones `main` calls), so the mount-table contexts can use the seam.

use crate::common;
use ckptscope::cli::{resolve_cmd, tui_start, watch_cmd, watch_setup, Cli, Command};
use ckptscope::fsys::{FaultyFs, Fs, RealFs};
use ckptscope::report::json::Resolution;
use ckptscope::Environment;
use clap::Parser;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One job context: flags, environment, an optional mount table (`{base}` is the folder that
/// holds the tree), and files to put beside the tree before resolving.
struct Ctx {
    name: &'static str,
    flags: Vec<String>,
    env: Vec<(&'static str, String)>,
    mounts: Option<&'static str>,
    /// Give the root relative to the working directory (the tree's folder).
    relative: bool,
    /// Give the root through a symlink.
    symlink: bool,
    setup: fn(&Path),
    /// What decided the shared-path check (`mindformers.shared.by`), when it must be this.
    shared_by: Option<&'static str>,
}

fn ctx(name: &'static str) -> Ctx {
    Ctx {
        name,
        flags: Vec::new(),
        env: Vec::new(),
        mounts: None,
        relative: false,
        symlink: false,
        setup: |_| {},
        shared_by: None,
    }
}

fn multinode() -> Vec<String> {
    ["--world-size", "4", "--device-num-per-node", "2"]
        .map(String::from)
        .to_vec()
}

fn contexts() -> Vec<Ctx> {
    vec![
        ctx("plain"),
        Ctx {
            flags: multinode(),
            shared_by: Some("not_shared"),
            ..ctx("multi-node, not shared")
        },
        Ctx {
            flags: multinode(),
            env: vec![("SHARED_PATHS", "{base}".into())],
            shared_by: Some("shared_paths"),
            ..ctx("SHARED_PATHS")
        },
        Ctx {
            flags: multinode(),
            env: vec![("MA_JOB_DIR", "/x".into())],
            shared_by: Some("model_arts"),
            ..ctx("ModelArts marker")
        },
        Ctx {
            flags: multinode(),
            env: vec![
                ("BATCH_GROUP_NAME", String::new()),
                ("REMOTE_SAVE_URL", "obs://bucket/run".into()),
            ],
            ..ctx("ModelArts marker (empty) with a remote save URL")
        },
        Ctx {
            flags: multinode(),
            mounts: Some("srv:/export {base} nfs4 rw,vers=4.2 0 0\n/dev/vda1 / ext4 rw 0 0\n"),
            shared_by: Some("mount"),
            ..ctx("root on NFS (mount table through the seam)")
        },
        Ctx {
            flags: multinode(),
            mounts: Some("10.0.0.1@tcp:/fs {base} lustre rw 0 0\n/dev/vda1 / ext4 rw 0 0\n"),
            shared_by: Some("not_shared"),
            ..ctx("root on Lustre (not recognised by MindFormers)")
        },
        Ctx {
            flags: vec!["--health-monitor".into()],
            ..ctx("health mode")
        },
        Ctx {
            flags: vec!["--config".into(), "{base}/run.yaml".into()],
            setup: |base| {
                std::fs::write(
                    base.join("run.yaml"),
                    "runner_config:\n  batch_size: 4\n  sink_mode: True\n  sink_size: 2\nparallel:\n  parallel_mode: 1\nparallel_config:\n  data_parallel: 4\n  pipeline_stage: 1\n",
                )
                .unwrap()
            },
            ..ctx("YAML with a batch-size change")
        },
        Ctx {
            setup: |base| {
                std::fs::create_dir_all(base.join("resume_record")).unwrap();
                std::fs::write(
                    base.join("resume_record/latest_checkpointed_iteration.txt"),
                    "/elsewhere/rank_0/old_rank_0-1_1.ckpt\n",
                )
                .unwrap()
            },
            ..ctx("stale resume record")
        },
        Ctx {
            relative: true,
            ..ctx("relative root")
        },
        Ctx {
            symlink: true,
            ..ctx("symlinked root")
        },
        Ctx {
            env: vec![("RANK_SIZE", "1".into())],
            ..ctx("RANK_SIZE below the folder count")
        },
        Ctx {
            flags: vec!["--by-last-timestamp".into()],
            ..ctx("by last timestamp")
        },
        Ctx {
            flags: vec![
                "--global-batch-size".into(),
                "16".into(),
                "--ignore-data-skip".into(),
            ],
            ..ctx("batch size flag and ignore_data_skip")
        },
    ]
}

/// Stops the stream (as a closed pipe does) once the first `resolution` line is written.
#[derive(Default)]
struct UntilResolution {
    buf: Vec<u8>,
    resolution: Option<Value>,
}

impl Write for UntilResolution {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        while let Some(i) = self.buf.iter().position(|c| *c == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let v: Value = serde_json::from_slice(&line).expect("NDJSON line");
            if v["event"] == "resolution" {
                self.resolution = Some(v);
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run the TUI's loop steps until the answer on screen needs no more checks: the screen never
/// reads a shard itself; it asks the watcher's verifier and shows "checking…" meanwhile.
pub fn settle(state: &mut ckptscope::ui::state::State, handle: &ckptscope::watch::WatchHandle) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        state.refresh();
        if state.derived().pending == 0 {
            return;
        }
        let wanted = state.session.take_wanted();
        if !wanted.is_empty() {
            handle.verify_now(wanted);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let msg = handle
            .events
            .recv_timeout(left)
            .expect("the verifier answers");
        state.session.absorb(msg).unwrap();
    }
}

/// The parts every view must agree on.
fn parts(v: &Value) -> Value {
    serde_json::json!({
        "world_size": v["world_size"],
        "outcome": v["outcome"],
        "mindformers": v["mindformers"],
        "safe": v["safe"],
        "data_skip": v["data_skip"],
    })
}

fn args(sub: &str, root: &str, extra: &[String]) -> Command {
    let mut a = vec!["ckptscope".to_owned(), sub.to_owned(), root.to_owned()];
    if sub == "watch" {
        a.push("--ndjson".into());
    }
    a.extend(extra.iter().cloned());
    Cli::parse_from(a).command.expect("a subcommand")
}

/// The panel's words for rank 0's pick, as the TUI shows them.
fn panel_words(resolve: &Value) -> String {
    let r0 = &resolve["mindformers"]["per_rank"][0];
    match &r0["resume_training"] {
        Value::String(f) => {
            let n = ckptscope::layout::mindformers::names::parse_ckpt_name(f).unwrap();
            if n.restart > 0 {
                format!("_{}-{}_{}", n.restart, n.epoch, n.step)
            } else {
                format!("{}_{}", n.epoch, n.step)
            }
        }
        // the card names the file the newest-by-mtime rule finds, marked "(newest)"
        Value::Bool(true) => "(newest)".into(),
        Value::Bool(false) => "no resume".into(),
        _ => "fails".into(),
    }
}

fn agree(tree: &str, c: &Ctx) {
    let ft = common::fixture_tree(tree);
    (c.setup)(&ft.base);
    let base = ft.base.to_string_lossy().into_owned();
    let sub = |s: &str| s.replace("{base}", &base);
    let (root, cwd): (String, PathBuf) = if c.relative {
        ("checkpoint".into(), ft.base.clone())
    } else if c.symlink {
        let link = ft.tmp.path().join("latest");
        std::os::unix::fs::symlink(&ft.root, &link).unwrap();
        (
            link.to_string_lossy().into_owned(),
            ft.tmp.path().to_path_buf(),
        )
    } else {
        (
            ft.root.to_string_lossy().into_owned(),
            ft.tmp.path().to_path_buf(),
        )
    };
    let vars: Vec<(&str, String)> = c.env.iter().map(|(k, v)| (*k, sub(v))).collect();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = Environment::with(&pairs, &cwd);
    let mut flags: Vec<String> = c.flags.iter().map(|f| sub(f)).collect();
    if tree == "tree-safetensors" {
        flags.extend(["--format".into(), "safetensors".into()]);
    }
    let fs: Arc<dyn Fs> = match c.mounts {
        Some(m) => Arc::new(FaultyFs {
            mount_table: Some(sub(m)),
            ..Default::default()
        }),
        None => Arc::new(RealFs),
    };
    let what = format!("{tree} / {}", c.name);

    let Command::Resolve(ra) = args(
        "resolve",
        &root,
        &[flags.clone(), vec!["--json".into()]].concat(),
    ) else {
        unreachable!()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    resolve_cmd(&ra, fs.clone(), &env, &mut out, &mut err);
    let resolved: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "{what}: resolve --json: {e}: {}",
            String::from_utf8_lossy(&err)
        )
    });

    let Command::Watch(wa) = args("watch", &root, &flags) else {
        unreachable!()
    };
    let mut stream = UntilResolution::default();
    let mut err = Vec::new();
    let code = watch_cmd(&wa, fs.clone(), &env, &mut stream, &mut err);
    assert_eq!(code, 0, "{what}: {}", String::from_utf8_lossy(&err));
    let watched = stream.resolution.expect("a resolution event");

    let (ctx, cfg) = watch_setup(&wa, &fs, &env).unwrap();
    let (mut state, handle) = tui_start(ctx, cfg, false).unwrap();
    settle(&mut state, &handle);
    let shown = serde_json::to_value(Resolution::new(&state.derived().real)).unwrap();
    if c.mounts.is_some() {
        assert!(
            matches!(state.mode, Some(ckptscope::watch::Mode::Poll { .. })),
            "{what}: a network filesystem is polled, {:?}",
            state.mode
        );
    }
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 50)).unwrap();
    let theme = ckptscope::ui::theme::Theme {
        color: false,
        light: false,
        ascii: false,
    };
    term.draw(|f| ckptscope::ui::render::draw(f, &state, &theme))
        .unwrap();
    handle.stop();
    let screen = term.backend().to_string();

    if let Some(by) = c.shared_by {
        assert_eq!(resolved["mindformers"]["shared"]["by"], by, "{what}");
    }
    assert_eq!(
        parts(&resolved),
        parts(&watched),
        "{what}: resolve vs watch"
    );
    assert_eq!(parts(&resolved), parts(&shown), "{what}: resolve vs TUI");
    let words = panel_words(&resolved);
    // rank 0's answer heads the card, or stands among the per-rank answers when ranks differ
    let headline = screen
        .lines()
        .find(|l| l.contains("MindFormers → "))
        .unwrap_or_default();
    assert!(
        headline.contains(&words)
            || (headline.contains("ranks differ")
                && screen
                    .lines()
                    .any(|l| l.contains("per rank: ") && l.contains(&words))),
        "{what}: the resume panel shows {words}\n{screen}"
    );
}

#[test]
fn every_view_gives_the_same_answer_in_every_context() {
    let trees = [
        "tree-seed",
        "tree-seed-run1",
        "tree-async",
        "tree-safetensors",
        "tree-gbs-change",
    ];
    let cs = contexts();
    assert!(cs.len() >= 12);
    for tree in trees {
        for c in &cs {
            agree(tree, c);
        }
    }
}

/// The reported defect: with a ModelArts marker, `resolve` takes the by-meta branch (shared)
/// and so must `watch`, whose context once ignored the environment.
#[test]
fn modelarts_marker_is_shared_in_watch_too() {
    let ft = common::fixture_tree("tree-seed-run1");
    let env = Environment::with(&[("MA_JOB_DIR", "/x")], ft.tmp.path());
    let root = ft.root.to_string_lossy().into_owned();
    let Command::Watch(wa) = args("watch", &root, &multinode()) else {
        unreachable!()
    };
    let mut stream = UntilResolution::default();
    watch_cmd(&wa, Arc::new(RealFs), &env, &mut stream, &mut Vec::new());
    let r = stream.resolution.unwrap();
    assert_eq!(r["mindformers"]["branch"]["kind"], "by_meta", "{r}");
    assert_eq!(r["mindformers"]["shared"]["by"], "model_arts", "{r}");
    // ModelArts keeps the record under REMOTE_SAVE_URL, unset here: MindFormers raises M17
    assert_eq!(
        r["mindformers"]["per_rank"][0]["error"]["type"], "TypeError",
        "{r}"
    );
    assert_eq!(
        r["mindformers"]["per_rank"][3]["error"]["type"],
        "TypeError"
    );
}
