//! `ckptscope resolve`: flags and environment → configuration, then the report and exit code.

use super::{fail, FormatArg};
use crate::fsys::Fs;
use crate::layout::mindformers::names::Fmt;
use crate::model::{FileRead, Listing, RootState, Tree};
use crate::py::text::{abspath, join, normpath};
use crate::resolve::config::{
    EnvFacts, HealthSetting, PathFacts, ResumeConfig, ResumeTraining, RunMode,
};
use crate::resolve::context::RunSettings;
use crate::resolve::mindformers::RankResult;
use crate::resolve::{analyze, yaml};
use crate::scan::{scan, SMALL_FILE_LIMIT};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ResolveArgs {
    /// MindFormers' load_checkpoint: the folder holding rank_0/ … rank_N/ (or one weight file).
    pub load_checkpoint: String,
    /// true, false, or a checkpoint file name.
    #[arg(long, value_name = "V")]
    pub resume_training: Option<String>,
    /// load_ckpt_format.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// resume_by_last_timestamp_ckpt: True.
    #[arg(long)]
    pub by_last_timestamp: bool,
    /// use_checkpoint_health_monitor: True.
    #[arg(long)]
    pub health_monitor: bool,
    /// output_dir (resume_record/ and health_ckpts.json live there); default LOAD_CHECKPOINT/..
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<String>,
    #[command(flatten)]
    pub job: super::JobArgs,
    /// A MindFormers YAML; explicit flags win over its keys.
    #[arg(long, value_name = "FILE.yaml")]
    pub config: Option<PathBuf>,
    /// train (default) or finetune: they gate the resolver slightly differently.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// The new run's global batch size (default: from --config, else assumed unchanged).
    #[arg(long, value_name = "N")]
    pub global_batch_size: Option<i64>,
    /// Sink size (0 for non-sink mode); default: from --config, else inferred from the names.
    #[arg(long, value_name = "N")]
    pub sink_size: Option<i64>,
    /// Batches per epoch, for the printed-step arithmetic (default: unknown, assumed large).
    #[arg(long, value_name = "N")]
    pub dataset_size: Option<i64>,
    /// ignore_data_skip: True.
    #[arg(long)]
    pub ignore_data_skip: bool,
    /// data_skip_steps.
    #[arg(long, value_name = "N")]
    pub data_skip_steps: Option<i64>,
    /// Print the JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,
}

/// `ckptscope resolve`, reading through `fs` (tests inject faults there).
pub fn resolve_cmd(a: &ResolveArgs, fs: &dyn Fs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (config, mut run) = match build_config(a) {
        Ok(x) => x,
        Err(msg) => return fail(err, &msg),
    };
    let root = a.load_checkpoint.clone();
    let tree = scan(fs, &root);
    let n_entries = tree.rank_entry_count();
    let env = gather_env(a, n_entries as u64);
    let paths = gather_paths(fs, &root, &config, &env);
    if run.new_global_batch_size.is_none() {
        run.new_global_batch_size = a.global_batch_size;
    }
    let fmt = config.fmt;
    let read =
        |file: &str| crate::verify::read_append(&Path::new(&root).join("rank_0").join(file), fmt);
    let checker = crate::verify::disk_checker(Path::new(&root));
    let analysis = analyze(&tree, &config, &env, &paths, &run, &read, Some(&checker));
    let text = if a.json {
        let doc = crate::report::json::document(&analysis);
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    } else {
        crate::report::text::render(&analysis)
    };
    if out.write_all(text.as_bytes()).is_err() {
        return 2;
    }
    if let Some(msg) = unreadable(&tree) {
        return fail(err, &msg);
    }
    let any_error = analysis
        .mindformers
        .per_rank
        .iter()
        .any(|r| matches!(r, RankResult::Error(_)));
    i32::from(any_error)
}

/// The first input ckptscope could not read, as "path: cause; fix".
fn unreadable(tree: &Tree) -> Option<String> {
    let d = &tree.root;
    match &tree.state {
        RootState::Missing => return Some(format!("{d}: no such file or directory; pass the checkpoint folder (the one holding rank_0/ …) as LOAD_CHECKPOINT")),
        RootState::Error(e) => return Some(format!("{d}: {}; check the path and its permissions", e.text)),
        RootState::Dir(Listing::Error(e)) => return Some(format!("{d}: cannot list the folder ({}); run ckptscope as a user who can read it", e.text)),
        RootState::Other(k) => return Some(format!("{d} is a {k:?}, not a folder or file")),
        _ => {}
    }
    for (name, node) in &tree.dirs {
        if let Listing::Error(e) = &node.listing {
            return Some(format!("{d}/{name}: cannot list the folder ({}); the answer above assumes MindFormers fails the same way — run ckptscope as the training user", e.text));
        }
        if let Some(FileRead::Error(e)) = &node.meta {
            if e.errno != 21 {
                return Some(format!(
                    "{d}/{name}/meta.json: {}; run ckptscope as a user who can read it",
                    e.text
                ));
            }
        }
    }
    None
}

fn build_config(a: &ResolveArgs) -> Result<(ResumeConfig, RunSettings), String> {
    let mut cfg = ResumeConfig::default();
    let mut run = RunSettings::default();
    let mut gbs_formula = None;
    let mut yaml_output_dir = None;
    if let Some(path) = &a.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}; pass a readable MindFormers YAML", path.display()))?;
        let y = yaml::parse(&text)
            .map_err(|e| format!("{}: not a valid YAML file: {e}", path.display()))?;
        y.apply(&mut cfg);
        yaml_output_dir = y.output_dir.clone();
        run = y.run.clone();
        gbs_formula = y.gbs.clone();
    }
    cfg.load_checkpoint = Some(a.load_checkpoint.clone());
    if let Some(v) = &a.resume_training {
        cfg.resume_training = match v.as_str() {
            "true" | "True" => ResumeTraining::Bool(true),
            "false" | "False" => ResumeTraining::Bool(false),
            name => ResumeTraining::Name(name.to_owned()),
        };
    }
    if let Some(f) = a.format {
        cfg.fmt = match f {
            FormatArg::Ckpt => Fmt::Ckpt,
            FormatArg::Safetensors => Fmt::Safetensors,
        };
    }
    if a.by_last_timestamp {
        cfg.by_last_timestamp = true;
    }
    if a.health_monitor {
        cfg.health = HealthSetting::Bool(true);
    }
    if let Some(m) = &a.mode {
        cfg.mode = match m.as_str() {
            "train" => RunMode::Train,
            "finetune" => RunMode::Finetune,
            other => return Err(format!("--mode {other}: expected train or finetune")),
        };
    }
    cfg.output_dir = match (&a.output_dir, yaml_output_dir) {
        (Some(o), _) => o.clone(),
        (None, Some(o)) => o,
        (None, None) => parent_of(&a.load_checkpoint),
    };
    if let Some(s) = a.sink_size {
        run.sink_mode = Some(s > 0);
        run.sink_size = Some(s);
    }
    run.dataset_size = a.dataset_size.or(run.dataset_size);
    run.ignore_data_skip |= a.ignore_data_skip;
    run.data_skip_steps = a.data_skip_steps.or(run.data_skip_steps);
    run.new_global_batch_size = a.global_batch_size;
    if run.new_global_batch_size.is_none() {
        if let Some(f) = gbs_formula {
            let w = a.job.world_size.unwrap_or(0);
            if w > 0 || f.semi_or_auto {
                run.new_global_batch_size = Some(f.global_batch_size(w));
            }
        }
    }
    Ok((cfg, run))
}

/// `LOAD_CHECKPOINT/..`, lexically (the contract's default output_dir).
fn parent_of(p: &str) -> String {
    let trimmed = p.trim_end_matches('/');
    match Path::new(trimmed).parent() {
        Some(par) if !par.as_os_str().is_empty() => par.to_string_lossy().into_owned(),
        _ if trimmed.starts_with('/') => "/".into(),
        _ => ".".into(),
    }
}

fn gather_env(a: &ResolveArgs, n_entries: u64) -> EnvFacts {
    let var = |k: &str| std::env::var(k).ok();
    let tft = var("MS_ENABLE_TFT").is_some_and(|v| {
        ["TTP:1", "UCE:1", "ARF:1", "HCCE:1"]
            .iter()
            .any(|k| v.contains(k))
    });
    EnvFacts {
        world_size: a.job.world_size.unwrap_or(n_entries),
        device_num_per_node: a.job.device_num_per_node,
        shared_paths: a.job.shared_paths.clone(),
        modelarts: [
            "MA_LOG_DIR",
            "MA_JOB_DIR",
            "MA_LOCAL_LOG_PATH",
            "BATCH_GROUP_NAME",
        ]
        .iter()
        .any(|k| std::env::var_os(k).is_some()),
        remote_save_url: var("REMOTE_SAVE_URL"),
        tft,
        mounts: std::fs::read_to_string("/proc/self/mounts")
            .map(|t| crate::resolve::shared::parse_mounts(&t))
            .unwrap_or_default(),
    }
}

/// `os.path.realpath` (non-strict): the longest existing ancestor is canonicalised, the rest is
/// appended as written (after lexical normalisation).
pub fn py_realpath(p: &str, cwd: &str) -> String {
    let abs = abspath(p, cwd);
    let mut existing = PathBuf::from(&abs);
    let mut rest: Vec<String> = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
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

fn gather_paths(fs: &dyn Fs, root: &str, cfg: &ResumeConfig, env: &EnvFacts) -> PathFacts {
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".into());
    let shared_realpaths = env
        .shared_paths
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|s| {
            (
                s.to_owned(),
                if s.is_empty() {
                    String::new()
                } else {
                    py_realpath(s, &cwd)
                },
            )
        })
        .collect();
    let health = join(&cfg.output_dir, "health_ckpts.json");
    let record_path = join(
        &join(&py_realpath(&cfg.output_dir, &cwd), "resume_record"),
        "latest_checkpointed_iteration.txt",
    );
    let probe = |p: &str| {
        fs.stat(Path::new(p))
            .ok()
            .map(|_| fs.read_small(Path::new(p), SMALL_FILE_LIMIT))
    };
    PathFacts {
        abspath: abspath(root, &cwd),
        realpath: py_realpath(root, &cwd),
        shared_realpaths,
        health_json: probe(&health),
        existing_record: probe(&record_path),
        record_path,
    }
}
