//! The job context: every fact about a training job that is not the checkpoint tree itself —
//! MindFormers' configuration (flags over YAML over defaults), the environment variables it
//! reads, the mount table, realpaths, the existing resume record and health record — gathered
//! once, here, through the [`Fs`] seam. Every command gets its context from
//! [`JobContext::gather`] and nothing else, so the same folder and flags give the same answer
//! in `resolve`, `verify`, `grid`, `watch`, the TUI and the demo.

pub(crate) mod env;
pub(crate) mod flags;
pub(crate) mod mounts;
pub(crate) mod newfmt;

pub use env::{Environment, VARIABLES};
pub use flags::{FormatArg, JobFlags, LayoutArg};
pub use newfmt::NewJob;

use crate::fsys::Fs;
use crate::layout::mindformers::names::Fmt;
use crate::model::FileRead;
use crate::py::text::{abspath, join, normpath};
use crate::resolve::config::{
    EnvFacts, HealthSetting, PathFacts, ResumeConfig, ResumeTraining, RunMode,
};
use crate::resolve::context::RunSettings;
use crate::resolve::yaml::{self, NewFormatYaml};
use std::path::{Path, PathBuf};

/// The largest world size accepted: every rank gets a line in the answer and a row in the
/// grid, so this bound keeps memory proportional to a real job (about 100 MB at the bound).
pub const MAX_WORLD_SIZE: u64 = 1 << 17;

/// A YAML larger than this is not a MindFormers config (and is not read into memory).
pub const CONFIG_LIMIT: u64 = 16 << 20;

/// Small control files under `output_dir` (the resume record, `health_ckpts.json`).
pub const RECORD_LIMIT: u64 = 4 << 20;

/// Why a job context could not be gathered: a usage error (exit status 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JobError {
    #[error("{path}: {cause}; pass a readable MindFormers YAML with --config")]
    ConfigUnreadable { path: String, cause: String },
    #[error("{path}: not a valid MindFormers YAML ({why}); check the file's syntax")]
    ConfigInvalid { path: String, why: String },
    #[error("{flag} {value}: {expected}")]
    BadValue {
        flag: String,
        value: String,
        expected: String,
    },
    #[error("{0}")]
    Roots(String),
}

/// Everything about the job besides the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct JobContext {
    /// `load_checkpoint` exactly as given: MindFormers' messages quote it.
    pub root: String,
    /// The root resolved once (absolute, symlinks resolved; lexical when it does not exist):
    /// the path the scanner and the watcher read, so filesystem events match it.
    pub canonical: PathBuf,
    pub config: ResumeConfig,
    pub run: RunSettings,
    pub env: EnvFacts,
    pub paths: PathFacts,
    /// Why the root must be polled rather than watched (a network or parallel filesystem).
    pub network_fs: Option<String>,
    /// What MindFormers' new checkpoint format reads besides (its config stage's YAML values).
    pub newfmt: NewJob,
    /// The job's further roots, when its rank folders are spread over several (each node's
    /// own disk): the same path on every node as MindFormers sees it, read from elsewhere.
    pub more_roots: Vec<MoreRoot>,
    /// Where the first root is when it is on another host (`ssh://host/path`): its path is
    /// `root`, as MindFormers there is given it.
    pub remote: Option<crate::remote::SshRoot>,
    /// How roots on other hosts are reached.
    pub ssh: crate::remote::SshSettings,
}

/// The root `r` names on another host (`ssh://…`), if it is one; a malformed URL is a usage
/// error.
fn remote_of(r: &std::ffi::OsStr) -> Result<Option<crate::remote::SshRoot>, JobError> {
    let Some(s) = r.to_str() else {
        return match r.as_encoded_bytes().starts_with(b"ssh://") {
            true => Err(JobError::Roots(format!(
                "{}: an ssh:// root must be UTF-8",
                crate::model::name_of(r)
            ))),
            false => Ok(None),
        };
    };
    crate::remote::SshRoot::parse(s)
        .transpose()
        .map_err(JobError::Roots)
}

/// A further root of the job ([`JobContext::more_roots`]). Its node checks whether the
/// folder is shared with the job's own path (`load_checkpoint` is the same string on every
/// node), so it has no path facts of its own: this machine's view of it (an NFS mount of the
/// node's disk here) is not the node's.
#[derive(Clone, Debug, PartialEq)]
pub struct MoreRoot {
    /// As given (messages name it).
    pub root: String,
    /// Where it is read (on its host, for a remote root).
    pub canonical: PathBuf,
    /// Its host, for a root on another machine.
    pub remote: Option<crate::remote::SshRoot>,
}

/// The most roots a job may be given as (one per node).
pub const MAX_ROOTS: u16 = 4096;

impl JobContext {
    /// Gather the context of the job whose checkpoint folder is `root`.
    pub fn gather(
        fs: &dyn Fs,
        env: &Environment,
        root: impl AsRef<std::ffi::OsStr>,
        flags: &JobFlags,
    ) -> Result<JobContext, JobError> {
        let root_os = root.as_ref();
        if let Some(parent) = iteration_folder_parent(fs, root_os, flags) {
            // one new-format folder given as `load_checkpoint` (the way to resume from an older
            // save): the checkpoint root holding it is scanned and the folder is what is loaded
            let mut ctx = JobContext::gather(fs, env, &parent, flags)?;
            ctx.newfmt.set_load_path(&crate::model::name_of(root_os));
            return Ok(ctx);
        }
        // MindFormers sees the path as a Python str. A path that is not UTF-8, or holds a control
        // character or a backslash, is shown the way names in the tree are (`\xff`, `\x5c`:
        // one-to-one, so two folders never print alike) and read from disk as it is
        let shown = crate::model::name_of(root_os);
        let root = shown.as_str();
        let (config, run, nf_yaml) = configuration(fs, root, flags)?;
        let newfmt = NewJob::gather(
            flags,
            nf_yaml.as_ref(),
            root,
            &config.output_dir,
            matches!(config.health, HealthSetting::Bool(true)),
            &env.cwd,
        );
        let env_facts = env_facts(fs, env, flags)?;
        let cwd = env.cwd.to_string_lossy().into_owned();
        let in_store = crate::objstore::is_url(root);
        // (an s3:// root is its URL: never made absolute against this machine's folders)
        let canonical = match in_store {
            true => PathBuf::from(root),
            false => read_path(fs, env, root_os),
        };
        let paths = path_facts(fs, root, &config, &env_facts, &cwd);
        let network_fs = match in_store {
            true => Some(crate::objstore::NO_EVENTS.to_owned()),
            false => mounts::network_reason(&env_facts.mounts, &canonical.to_string_lossy()),
        };
        Ok(JobContext {
            root: root.to_owned(),
            canonical,
            config,
            run,
            env: env_facts,
            paths,
            network_fs,
            newfmt,
            more_roots: Vec::new(),
            remote: None,
            ssh: Default::default(),
        })
    }

    /// Ranks per node (`DEVICE_NUM_PER_NODE`, at least 1): which rank folders of a job given
    /// as several roots belong together.
    pub fn node_block(&self) -> usize {
        usize::try_from(self.env.device_num_per_node.max(1)).unwrap_or(usize::MAX)
    }

    /// The first root as given: the folder, or the `ssh://` URL of one on another host.
    pub fn first_label(&self) -> &str {
        self.remote.as_ref().map_or(&self.root, |r| &r.label)
    }

    /// Any root on another host (the local disk holds none of its files).
    pub fn has_remote(&self) -> bool {
        self.remote.is_some() || self.more_roots.iter().any(|m| m.remote.is_some())
    }

    /// Every root as given, joined by ` + ` (headers and titles name them all).
    pub fn roots_label(&self) -> String {
        std::iter::once(self.first_label())
            .chain(self.more_roots.iter().map(|m| m.root.as_str()))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The context of a job whose rank folders are under `roots` (the first is
    /// `load_checkpoint`, whose configuration is the job's; the others are other nodes' copies
    /// of the same folder).
    pub fn gather_roots(
        fs: &dyn Fs,
        env: &Environment,
        roots: &[std::ffi::OsString],
        flags: &JobFlags,
    ) -> Result<JobContext, JobError> {
        let (first, more) = roots.split_first().ok_or_else(|| {
            JobError::Roots(
                "no checkpoint folder given: pass the folder that holds rank_0/ …".into(),
            )
        })?;
        if more.len() >= usize::from(MAX_ROOTS) {
            return Err(JobError::Roots(format!(
                "{} folders given: at most {MAX_ROOTS} roots (one per node) are read",
                roots.len()
            )));
        }
        let ssh = crate::remote::SshSettings::from_flags(
            flags.ssh_command.as_deref(),
            flags.remote_ckptscope.as_deref(),
        )
        .map_err(JobError::Roots)?;
        let first_url = first
            .to_str()
            .and_then(crate::objstore::S3Url::parse)
            .transpose()
            .map_err(JobError::Roots)?;
        let mut ctx = match remote_of(first)? {
            // (its URL as the user would write it again: no trailing slash)
            None if first_url.is_some() => JobContext::gather(
                fs,
                env,
                first_url.as_ref().map_or("", |u| u.label.as_str()),
                flags,
            )?,
            None => JobContext::gather(fs, env, first, flags)?,
            Some(r) => {
                // gathered as the node sees its own path: nothing read here but --config
                let local = flags
                    .config
                    .iter()
                    .flat_map(|c| [c.clone(), env.cwd.join(c)])
                    .collect();
                let seam = crate::fsys::elsewhere::Elsewhere { inner: fs, local };
                let mut ctx = JobContext::gather(&seam, env, &r.path, flags)?;
                ctx.canonical = PathBuf::from(&r.path);
                ctx.remote = Some(r);
                ctx
            }
        };
        ctx.ssh = ssh;
        let new_format = |shown: &str, at: &Path| {
            match !more.is_empty() && new_format_root(fs, at) {
            // each node's iteration_N/ holds that node's ranks' shards: folders of one name
            // on every root, which a merge by folder name cannot model
            true => Err(JobError::Roots(format!(
                "{shown}: a new-format root (iteration_* folders); several roots of the new format are not supported yet — give one node's folder at a time"
            ))),
            false => Ok(()),
        }
        };
        if ctx.remote.is_none() {
            new_format(&ctx.root, &ctx.canonical)?;
        }
        let mut labels = vec![ctx.first_label().to_owned()];
        for r in more {
            if let Some(remote) = remote_of(r)? {
                if labels.contains(&remote.label) {
                    return Err(JobError::Roots(format!(
                        "{}: the same folder is given twice; give each node's folder once",
                        remote.label
                    )));
                }
                labels.push(remote.label.clone());
                ctx.more_roots.push(MoreRoot {
                    root: remote.label.clone(),
                    canonical: PathBuf::from(&remote.path),
                    remote: Some(remote),
                });
                continue;
            }
            let shown = crate::model::name_of(r);
            let canonical = match r.to_str().and_then(crate::objstore::S3Url::parse) {
                Some(u) => PathBuf::from(u.map_err(JobError::Roots)?.label),
                None => read_path(fs, env, r),
            };
            let local = |c: &PathBuf| ctx.remote.is_none() && *c == ctx.canonical;
            if local(&canonical)
                || ctx
                    .more_roots
                    .iter()
                    .any(|m| m.remote.is_none() && m.canonical == canonical)
            {
                return Err(JobError::Roots(format!(
                    "{shown}: the same folder is given twice ({}); give each node's folder once",
                    canonical.display()
                )));
            }
            // a further root is a node's checkpoint folder: anything else is a mistake to say
            // (a typo, a subcommand after the folders), not a node with nothing
            let not = match fs.stat(&canonical) {
                Ok(st) if st.kind == crate::model::FileKind::Dir => match fs.read_dir(&canonical) {
                    Ok(_) => None,
                    Err(e) => Some(format!("cannot be listed ({e})")),
                },
                Ok(st) => Some(format!("is {}, not a folder", st.kind)),
                Err(e) => Some(format!("cannot be read ({e})")),
            };
            if let Some(why) = not {
                return Err(JobError::Roots(format!(
                    "{shown} {why}: every further root must be a node's checkpoint folder (an empty one for a node with none)"
                )));
            }
            new_format(&shown, &canonical)?;
            ctx.more_roots.push(MoreRoot {
                root: shown,
                canonical,
                remote: None,
            });
        }
        Ok(ctx)
    }

    /// A single-node job with MindFormers' defaults and nothing from the environment: what the
    /// demo's trainer runs and what tests start from. Reads nothing.
    pub fn standalone(root: &Path, fmt: Fmt) -> JobContext {
        let r = root.to_string_lossy().into_owned();
        JobContext {
            root: r.clone(),
            canonical: root.to_path_buf(),
            config: ResumeConfig {
                load_checkpoint: Some(r.clone()),
                fmt,
                output_dir: parent_of(&r),
                ..Default::default()
            },
            run: RunSettings::default(),
            env: EnvFacts {
                device_num_per_node: 8,
                ..Default::default()
            },
            paths: PathFacts {
                abspath: r.clone(),
                realpath: r.clone(),
                ..Default::default()
            },
            network_fs: None,
            more_roots: Vec::new(),
            remote: None,
            ssh: Default::default(),
            newfmt: NewJob::gather(
                &JobFlags::default(),
                None,
                &r,
                &parent_of(&r),
                false,
                Path::new("/"),
            ),
        }
    }
}

/// Where a folder given on the command line is read: absolute (against the working folder),
/// normalised as Python's `abspath` does for a printable UTF-8 path (a path shown escaped is
/// joined as its bytes), then with symlinks resolved when it exists.
fn read_path(fs: &dyn Fs, env: &Environment, given: &std::ffi::OsStr) -> PathBuf {
    let shown = crate::model::name_of(given);
    let lexical = match given.to_str() == Some(shown.as_str()) {
        true => PathBuf::from(normpath(&abspath(&shown, &env.cwd.to_string_lossy()))),
        false => env.cwd.join(given),
    };
    fs.canonicalize(&lexical).unwrap_or(lexical)
}

/// Whether the folder at `root` holds new-format `iteration_*` folders or the tracker.
fn new_format_root(fs: &dyn Fs, root: &Path) -> bool {
    fs.read_dir(root).is_ok_and(|es| {
        es.iter().any(|e| {
            let n = e.name.to_string_lossy();
            n.starts_with("iteration_") || n == crate::layout::mindformers_new::tracker::TRACKER
        })
    })
}

/// The parent of `root` when `root` is a new-format `iteration_*` folder (and the legacy
/// layout was not asked for).
fn iteration_folder_parent(
    fs: &dyn Fs,
    root: &std::ffi::OsStr,
    flags: &JobFlags,
) -> Option<std::ffi::OsString> {
    if flags.layout == Some(LayoutArg::Legacy) {
        return None;
    }
    let p = Path::new(root);
    let name = p.file_name()?.to_string_lossy();
    if !name.starts_with("iteration_") || fs.stat(p).ok()?.kind != crate::model::FileKind::Dir {
        return None;
    }
    Some(match p.parent() {
        Some(q) if !q.as_os_str().is_empty() => q.as_os_str().to_owned(),
        _ => ".".into(),
    })
}

/// MindFormers' configuration keys and the run settings: defaults, then the YAML, then flags.
fn configuration(
    fs: &dyn Fs,
    root: &str,
    flags: &JobFlags,
) -> Result<(ResumeConfig, RunSettings, Option<NewFormatYaml>), JobError> {
    let mut cfg = ResumeConfig::default();
    let mut run = RunSettings::default();
    let mut yaml_output_dir = None;
    let mut nf = None;
    if let Some(path) = &flags.config {
        let y = read_yaml(fs, path)?;
        y.apply(&mut cfg);
        yaml_output_dir = y.output_dir.clone();
        run = y.run.clone();
        nf = Some(y.new_format);
    }
    cfg.load_checkpoint = Some(root.to_owned());
    if let Some(v) = &flags.resume_training {
        cfg.resume_training = match v.as_str() {
            "true" | "True" => ResumeTraining::Bool(true),
            "false" | "False" => ResumeTraining::Bool(false),
            name => ResumeTraining::Name(name.to_owned()),
        };
    }
    if let Some(f) = flags.format {
        cfg.fmt = match f {
            FormatArg::Ckpt => Fmt::Ckpt,
            FormatArg::Safetensors => Fmt::Safetensors,
        };
    }
    cfg.by_last_timestamp |= flags.by_last_timestamp;
    if flags.health_monitor {
        cfg.health = HealthSetting::Bool(true);
    }
    if let Some(m) = &flags.mode {
        cfg.mode = match m.as_str() {
            "train" => RunMode::Train,
            "finetune" => RunMode::Finetune,
            other => return Err(bad("--mode", other, "expected train or finetune")),
        };
    }
    cfg.output_dir = match (&flags.output_dir, yaml_output_dir) {
        (Some(o), _) => o.clone(),
        (None, Some(o)) => o,
        (None, None) => parent_of(root),
    };
    run_flags(flags, &mut run)?;
    Ok((cfg, run, nf))
}

/// The run settings given as flags (they win over the YAML).
fn run_flags(flags: &JobFlags, run: &mut RunSettings) -> Result<(), JobError> {
    if let Some(s) = flags.sink_size {
        if s < 0 {
            return Err(bad(
                "--sink-size",
                &s.to_string(),
                "expected 0 (non-sink mode) or a positive sink size",
            ));
        }
        run.sink_mode = Some(s > 0);
        run.sink_size = Some(s);
    }
    if let Some(g) = flags.global_batch_size {
        if g <= 0 {
            return Err(bad(
                "--global-batch-size",
                &g.to_string(),
                "expected a positive number",
            ));
        }
        run.new_global_batch_size = Some(g);
    }
    if let Some(d) = flags.dataset_size {
        if d <= 0 {
            return Err(bad(
                "--dataset-size",
                &d.to_string(),
                "expected a positive number of batches",
            ));
        }
        run.dataset_size = Some(d);
    }
    if let Some(d) = flags.data_skip_steps {
        if d < 0 {
            return Err(bad(
                "--data-skip-steps",
                &d.to_string(),
                "expected 0 or more",
            ));
        }
        run.data_skip_steps = Some(d);
    }
    run.ignore_data_skip |= flags.ignore_data_skip;
    Ok(())
}

/// Read and parse `--config` (non-blocking, regular files only, at most [`CONFIG_LIMIT`]).
fn read_yaml(fs: &dyn Fs, path: &Path) -> Result<yaml::YamlConfig, JobError> {
    let shown = path.display().to_string();
    let unreadable = |cause: String| JobError::ConfigUnreadable {
        path: shown.clone(),
        cause,
    };
    let bytes = match fs.read_small(path, CONFIG_LIMIT) {
        FileRead::Bytes(b) => b,
        FileRead::Error(e) => return Err(unreadable(e.text)),
        FileRead::TooLarge(n) => {
            return Err(unreadable(format!(
                "{n} bytes or more, larger than the {} MiB a MindFormers YAML can be",
                CONFIG_LIMIT >> 20
            )))
        }
        FileRead::NotRegular(k) => {
            return Err(unreadable(format!(
                "{k}, not a regular file (never opened)"
            )))
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| JobError::ConfigInvalid {
        path: shown.clone(),
        why: "not UTF-8 text".into(),
    })?;
    yaml::parse(&text).map_err(|why| JobError::ConfigInvalid { path: shown, why })
}

/// `LOAD_CHECKPOINT/..`, lexically (the contract's default output_dir).
fn parent_of(p: &str) -> String {
    if let Some(Ok(u)) = crate::objstore::S3Url::parse(p) {
        // (in the bucket; a whole bucket has no parent there, and `s3:` is no folder here)
        return match u.prefix.rsplit_once('/') {
            Some((parent, _)) => format!("s3://{}/{parent}", u.bucket),
            None => format!("s3://{}", u.bucket),
        };
    }
    let trimmed = p.trim_end_matches('/');
    match Path::new(trimmed).parent() {
        Some(par) if !par.as_os_str().is_empty() => par.to_string_lossy().into_owned(),
        _ if trimmed.starts_with('/') => "/".into(),
        _ => ".".into(),
    }
}

fn bad(flag: &str, value: &str, expected: &str) -> JobError {
    JobError::BadValue {
        flag: flag.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

/// The environment MindFormers reads, flags first, and the mount table.
fn env_facts(fs: &dyn Fs, env: &Environment, flags: &JobFlags) -> Result<EnvFacts, JobError> {
    let world_size = match (flags.world_size, env.get("RANK_SIZE")) {
        (Some(w), _) => Some(w),
        (None, Some(v)) => Some(v.trim().parse::<u64>().map_err(|_| {
            bad(
                "RANK_SIZE",
                v,
                "expected the job's world size, a positive integer",
            )
        })?),
        (None, None) => None,
    };
    match world_size {
        Some(0) => {
            return Err(bad(
                "--world-size / RANK_SIZE",
                "0",
                "a job has at least one rank",
            ))
        }
        Some(w) if w > MAX_WORLD_SIZE => {
            return Err(bad(
                "--world-size / RANK_SIZE",
                &w.to_string(),
                &format!("at most {MAX_WORLD_SIZE} ranks (more than any training job runs); give the job's real world size"),
            ))
        }
        _ => {}
    }
    let device_num_per_node = match (flags.device_num_per_node, env.get("DEVICE_NUM_PER_NODE")) {
        (Some(d), _) => d,
        (None, Some(v)) => v.trim().parse::<i64>().map_err(|_| {
            bad(
                "DEVICE_NUM_PER_NODE",
                v,
                "expected an integer (MindFormers calls int() on it)",
            )
        })?,
        (None, None) => 8,
    };
    let tft = env.get("MS_ENABLE_TFT").is_some_and(|v| {
        ["TTP:1", "UCE:1", "ARF:1", "HCCE:1"]
            .iter()
            .any(|k| v.contains(k))
    });
    Ok(EnvFacts {
        world_size,
        device_num_per_node,
        shared_paths: flags
            .shared_paths
            .clone()
            .or_else(|| env.get("SHARED_PATHS").map(str::to_owned)),
        modelarts: [
            "MA_LOG_DIR",
            "MA_JOB_DIR",
            "MA_LOCAL_LOG_PATH",
            "BATCH_GROUP_NAME",
        ]
        .iter()
        .any(|k| env.is_set(k)),
        remote_save_url: env.get("REMOTE_SAVE_URL").map(str::to_owned),
        tft,
        mounts: fs
            .mount_table()
            .map(|t| mounts::parse_mounts(&t))
            .unwrap_or_default(),
    })
}

/// `os.path.realpath` (non-strict): the longest existing ancestor is canonicalised, the rest is
/// appended as written (after lexical normalisation).
pub fn py_realpath(fs: &dyn Fs, p: &str, cwd: &str) -> String {
    let abs = abspath(p, cwd);
    let mut existing = PathBuf::from(&abs);
    let mut rest: Vec<String> = Vec::new();
    loop {
        if let Ok(c) = fs.canonicalize(&existing) {
            let mut out = c.to_string_lossy().into_owned();
            for r in rest.iter().rev() {
                out = join(&out, r);
            }
            return normpath(&out);
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_string_lossy().into_owned());
                existing = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
}

/// Realpaths, and the files under `output_dir` that MindFormers consults.
fn path_facts(fs: &dyn Fs, root: &str, cfg: &ResumeConfig, env: &EnvFacts, cwd: &str) -> PathFacts {
    let shared_realpaths = env
        .shared_paths
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|s| {
            let real = if s.is_empty() {
                String::new()
            } else {
                py_realpath(fs, s, cwd)
            };
            (s.to_owned(), real)
        })
        .collect();
    let health = join(&cfg.output_dir, "health_ckpts.json");
    let record_path = join(
        &join(&py_realpath(fs, &cfg.output_dir, cwd), "resume_record"),
        "latest_checkpointed_iteration.txt",
    );
    let probe = |p: &str| {
        let path = Path::new(p);
        let path = if path.is_relative() {
            Path::new(cwd).join(path)
        } else {
            path.to_path_buf()
        };
        fs.stat(&path)
            .ok()
            .map(|_| fs.read_small(&path, RECORD_LIMIT))
    };
    if crate::objstore::is_url(root) {
        // object storage has no working folder and no links: the URL is its own path, and the
        // output folder's files are read where the configuration puts them
        let probe = |p: &str| {
            let path = Path::new(p);
            fs.stat(path)
                .ok()
                .map(|_| fs.read_small(path, RECORD_LIMIT))
        };
        let record_path = join(
            &join(&cfg.output_dir, "resume_record"),
            "latest_checkpointed_iteration.txt",
        );
        return PathFacts {
            abspath: root.to_owned(),
            realpath: root.to_owned(),
            shared_realpaths,
            health_json: probe(&health),
            existing_record: probe(&record_path),
            record_path,
        };
    }
    PathFacts {
        abspath: abspath(root, cwd),
        realpath: py_realpath(fs, root, cwd),
        shared_realpaths,
        health_json: probe(&health),
        existing_record: probe(&record_path),
        record_path,
    }
}
