//! Test helpers: build checkpoint trees in a temporary folder with controlled mtimes, resolve
//! them through the real scan, and compare with MindFormers' expected answers.
#![allow(dead_code)] // each test module uses a different subset

pub mod memfs;
pub mod s3server;
pub mod sshserver;
pub mod tui;

use ckptscope::fsys::RealFs;
use ckptscope::layout::mindformers::names::Fmt;
use ckptscope::resolve::config::{
    EnvFacts, HealthSetting, PathFacts, ResumeConfig, ResumeTraining,
};
use ckptscope::resolve::mindformers::{resolve, Inputs, MfResolution, RankResult};
use ckptscope::scan::scan;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub struct TestTree {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    clock: u64,
    pub cfg: ResumeConfig,
    pub env: EnvFacts,
    pub paths: PathFacts,
    pub world: Option<u64>,
}

impl Default for TestTree {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTree {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("checkpoint");
        fs::create_dir(&root).expect("mkdir");
        let d = root.to_string_lossy().into_owned();
        TestTree {
            cfg: ResumeConfig {
                load_checkpoint: Some(d.clone()),
                output_dir: tmp.path().to_string_lossy().into_owned(),
                ..Default::default()
            },
            env: EnvFacts {
                device_num_per_node: 8,
                ..Default::default()
            },
            paths: PathFacts {
                abspath: d.clone(),
                realpath: d,
                ..Default::default()
            },
            tmp,
            root,
            clock: 1_700_000_000,
            world: None,
        }
    }

    /// The checkpoint folder as MindFormers' messages show it.
    pub fn d(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Create (or overwrite) a file with the next mtime tick.
    pub fn file(&mut self, rel: &str, bytes: &[u8]) -> &mut Self {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir -p");
        }
        fs::write(&p, bytes).expect("write");
        self.touch(rel)
    }

    /// Give a file the next mtime tick (newest so far).
    pub fn touch(&mut self, rel: &str) -> &mut Self {
        self.clock += 1;
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(self.clock);
        fs::File::options()
            .write(true)
            .open(self.path(rel))
            .expect("open")
            .set_modified(t)
            .expect("mtime");
        self
    }

    pub fn dir(&mut self, rel: &str) -> &mut Self {
        fs::create_dir_all(self.path(rel)).expect("mkdir");
        self
    }

    pub fn rm(&mut self, rel: &str) -> &mut Self {
        let p = self.path(rel);
        if p.is_dir() {
            fs::remove_dir_all(p).expect("rm -r");
        } else {
            fs::remove_file(p).expect("rm");
        }
        self
    }

    pub fn meta(&mut self, rank: u64, epoch: i64, step: i64, file: &str) -> &mut Self {
        let text = format!(
            "{{\"last_epoch\": {epoch}, \"last_step\": {step}, \"last_ckpt_file\": \"{file}\"}}"
        );
        self.file(&format!("rank_{rank}/meta.json"), text.as_bytes())
    }

    pub fn meta_raw(&mut self, rank: u64, text: &str) -> &mut Self {
        self.file(&format!("rank_{rank}/meta.json"), text.as_bytes())
    }

    /// The spec's common setup: `llama_rank_r-{10,15,20}_2.ckpt` in creation order, metas → 20_2.
    /// `ranks` folders with steps 10_2, 15_2 and 20_2 (small valid shards whose append
    /// entries agree with their names) and a meta.json naming 20_2.
    pub fn seed(&mut self, ranks: u64) -> &mut Self {
        for r in 0..ranks {
            for e in [10, 15, 20] {
                self.file(
                    &format!("rank_{r}/llama_rank_{r}-{e}_2.ckpt"),
                    &valid_shard(e),
                );
            }
            self.meta(r, 20, 2, &format!("llama_rank_{r}-20_2.ckpt"));
        }
        self
    }

    pub fn fmt(&mut self, f: Fmt) -> &mut Self {
        self.cfg.fmt = f;
        self
    }

    pub fn resume(&mut self, v: ResumeTraining) -> &mut Self {
        self.cfg.resume_training = v;
        self
    }

    pub fn health(&mut self) -> &mut Self {
        self.cfg.health = HealthSetting::Bool(true);
        self
    }

    pub fn health_json(&mut self, text: &str) -> &mut Self {
        self.paths.health_json = Some(ckptscope::model::FileRead::Bytes(text.as_bytes().to_vec()));
        self
    }

    pub fn world(&mut self, w: u64) -> &mut Self {
        self.world = Some(w);
        self
    }

    pub fn resolve(&self) -> MfResolution {
        let tree = scan(&RealFs, &self.d());
        let env = EnvFacts {
            world_size: self.world,
            ..self.env.clone()
        };
        resolve(&Inputs {
            tree: &tree,
            config: &self.cfg,
            env: &env,
            paths: &self.paths,
        })
    }
}

/// Every rank R resolves to `<prefix>_rank_R<suffix>`.
pub fn assert_all(r: &MfResolution, f: impl Fn(usize) -> String) {
    for (rank, got) in r.per_rank.iter().enumerate() {
        assert_eq!(got, &RankResult::File(f(rank)), "rank {rank}: {r:#?}");
    }
}

/// Every rank R resolves to `llama_rank_R-<es>.ckpt`.
pub fn assert_step(r: &MfResolution, es: &str) {
    assert_all(r, |rank| format!("llama_rank_{rank}-{es}.ckpt"));
}

pub fn assert_newest(r: &MfResolution) {
    assert!(!r.per_rank.is_empty());
    assert!(
        r.per_rank.iter().all(|x| *x == RankResult::Newest),
        "{r:#?}"
    );
}

/// Every rank raises `ValueError: Get resume-able checkpoint failed, due to Error: <first line>`.
pub fn assert_err(r: &MfResolution, first_line: &str) {
    assert_raises(
        r,
        "ValueError",
        &format!("Get resume-able checkpoint failed, due to Error: {first_line}"),
    );
}

pub fn assert_raises(r: &MfResolution, class: &str, message: &str) {
    assert!(!r.per_rank.is_empty());
    for (rank, got) in r.per_rank.iter().enumerate() {
        match got {
            RankResult::Error(e) => {
                assert_eq!(e.class, class, "rank {rank}");
                assert_eq!(e.first_line(), message, "rank {rank}");
            }
            other => panic!("rank {rank}: expected {class}: {message}, got {other:?}\n{r:#?}"),
        }
    }
}

/// The shared fixtures (`../shared/fixtures/mindspore`). A test that needs them fails when
/// they are absent: CI must never pass by checking nothing.
pub fn fixtures() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/mindspore");
    assert!(
        p.is_dir(),
        "{} not found: the shared fixtures live beside the repository (clone it next to shared/)",
        p.display()
    );
    p
}

/// A private copy of a fixture tree with the mtimes its files were written with.
pub struct FixtureTree {
    pub tmp: tempfile::TempDir,
    /// `<tmp>/<name>` (holds `checkpoint/`, maybe `resume_record/`).
    pub base: PathBuf,
    /// `<tmp>/<name>/checkpoint`.
    pub root: PathBuf,
}

/// Copy fixture tree `name` (e.g. `tree-seed-run1`) into a temporary folder and set every
/// file's mtime from `MANIFEST.json`'s `mtime_as_written`: git keeps no mtimes, so a checkout
/// has any order, and "newest by mtime" must not depend on it. `tree-seed-run1` is not in the
/// manifest: its checkpoints are `tree-seed`'s, and its `meta.json` was written just after
/// that rank's `-20_2` save.
pub fn fixture_tree(name: &str) -> FixtureTree {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = tmp.path().join(name);
    copy_fixture(name, &base);
    let root = base.join("checkpoint");
    FixtureTree { tmp, base, root }
}

/// Copy fixture tree `name` to `to` with its files' mtimes as written (see [`fixture_tree`]).
pub fn copy_fixture(name: &str, to: &Path) {
    let fx = fixtures();
    copy_tree(&fx.join(name), to);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(fx.join("MANIFEST.json")).expect("MANIFEST.json"))
            .expect("MANIFEST.json parses");
    let mtimes: std::collections::HashMap<String, f64> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            let path = f["path"].as_str().expect("path").to_owned();
            (path, f["mtime_as_written"].as_f64().expect("mtime"))
        })
        .collect();
    let source = if name == "tree-seed-run1" {
        "tree-seed"
    } else {
        name
    };
    let mut set = 0;
    for file in walk_files(to) {
        let rel = file
            .strip_prefix(to)
            .expect("inside")
            .to_string_lossy()
            .into_owned();
        let t = if name == "tree-seed-run1" && rel.ends_with("meta.json") {
            let dir = Path::new(&rel).parent().expect("rank folder");
            let rank = dir
                .file_name()
                .expect("rank_R")
                .to_string_lossy()
                .replace("rank_", "");
            let key = format!(
                "{source}/{}/llama3_1_8b_rank_{rank}-20_2.ckpt",
                dir.display()
            );
            mtimes.get(&key).map(|t| t + 0.001)
        } else {
            mtimes.get(&format!("{source}/{rel}")).copied()
        };
        let t = t.unwrap_or_else(|| panic!("{name}/{rel}: no mtime_as_written in MANIFEST.json"));
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t);
        fs::File::open(&file)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
        set += 1;
    }
    assert!(set > 0, "{name}: no files copied");
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("readdir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Copy a folder recursively (for tests that modify a fixture tree).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("readdir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).expect("copy");
            let mut perm = fs::metadata(&dst).expect("stat").permissions();
            use std::os::unix::fs::PermissionsExt;
            perm.set_mode(0o644);
            fs::set_permissions(&dst, perm).expect("chmod");
        }
    }
}

/// An in-memory tree (no filesystem): `ranks[r]` lists `(name, mtime seconds)` in listing
/// order; `metas[r]` is that rank's meta.json text, if any.
pub fn mem_tree(
    root: &str,
    ranks: &[Vec<(String, i64)>],
    metas: &[Option<String>],
) -> ckptscope::model::Tree {
    use ckptscope::model::*;
    let stat = |kind, size, t| Stat {
        kind,
        size,
        mtime_sec: t,
        mtime_nsec: 0,
        ino: 1,
        dev: 1,
        mode: 0o400,
        ctime_ns: t * 1_000_000_000,
    };
    let entry = |name: &str, kind, t| Entry {
        name: name.into(),
        lstat: Ok(stat(kind, 1, t)),
        extra: None,
    };
    let mut dirs = std::collections::BTreeMap::new();
    let mut root_entries = Vec::new();
    for (r, files) in ranks.iter().enumerate() {
        let name = format!("rank_{r}");
        root_entries.push(entry(&name, FileKind::Dir, 0));
        let mut entries: Vec<Entry> = files
            .iter()
            .map(|(n, t)| entry(n, FileKind::File, *t))
            .collect();
        let meta = metas.get(r).cloned().flatten();
        if meta.is_some() {
            entries.push(entry("meta.json", FileKind::File, 0));
        }
        dirs.insert(
            name,
            DirNode {
                stat: None,
                listing: Listing::Entries(entries.into()),
                meta: meta.map(|m| FileRead::Bytes(m.into_bytes())),
                probed: Vec::new(),
                control: Vec::new(),
                memo: Default::default(),
                origin: 0,
            }
            .into(),
        );
    }
    Tree {
        root: root.into(),
        state: RootState::Dir(Listing::Entries(root_entries.into())),
        dirs,
        root_files: Default::default(),
        verdicts: Default::default(),
        multi: None,
        host_paths: None,
    }
}

/// A session on checkpoint folder `root`, with `flags` and an empty environment, gathered as
/// every command gathers its context.
pub fn session_with(root: &Path, flags: &ckptscope::JobFlags) -> ckptscope::Session {
    let env = ckptscope::Environment::with(&[], root.parent().unwrap_or(Path::new("/")));
    let ctx =
        ckptscope::JobContext::gather(&RealFs, &env, root.as_os_str(), flags).expect("job context");
    ckptscope::Session::open(std::sync::Arc::new(RealFs), ctx)
}

/// Verify every shard of the session's tree (cheap pass), recording the verdicts.
pub fn verify_all(s: &mut ckptscope::Session) -> usize {
    let opts = ckptscope::verify::TreeOptions {
        deep: false,
        step: None,
        now: SystemTime::now(),
        workers: 0,
    };
    s.verify_all(&opts, &Default::default(), &mut |_, _| {})
}

/// The session's analysis of `root` with default flags (a single-node job).
pub fn resolve_dir(root: &Path) -> ckptscope::Analysis {
    session_with(root, &Default::default()).analysis().clone()
}

/// Resolve an in-memory tree as a single-node job with default configuration.
pub fn mem_resolve(tree: &ckptscope::model::Tree, world: u64) -> MfResolution {
    let cfg = ResumeConfig {
        load_checkpoint: Some(tree.root.clone()),
        ..Default::default()
    };
    let env = EnvFacts {
        world_size: Some(world),
        device_num_per_node: 8,
        ..Default::default()
    };
    let paths = PathFacts {
        abspath: tree.root.clone(),
        realpath: tree.root.clone(),
        ..Default::default()
    };
    resolve(&Inputs {
        tree,
        config: &cfg,
        env: &env,
        paths: &paths,
    })
}

/// A small valid `.ckpt` of epoch `e`, step-in-epoch 2 (one tensor and the append entries).
pub fn valid_shard(e: u64) -> Vec<u8> {
    ckptscope::writer::ckpt::small_shard(e)
}

/// Run the `ckptscope` binary with `args` and none of the job variables it reads
/// (`RANK_SIZE`, `SHARED_PATHS` … of the machine running the tests): exit status, stdout,
/// stderr.
pub fn run_bin(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"));
    for k in ckptscope::job::VARIABLES {
        cmd.env_remove(k);
    }
    let o = cmd.args(args).output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The warning group of `code` in a `resolve --json` document, if any.
pub fn warning<'a>(doc: &'a serde_json::Value, code: &str) -> Option<&'a serde_json::Value> {
    doc["warnings"]
        .as_array()?
        .iter()
        .find(|w| w["code"] == code)
}

/// The lines `child` writes on its output, as they come (read on a thread of their own, so a
/// test can wait for one with a deadline).
pub fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("the child's output is piped");
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
    rx
}
