//! The inputs of a resolution besides the tree: MindFormers' configuration keys, the
//! environment variables it reads, and the few facts about paths that need the disk
//! (realpaths, the mount table, files under `output_dir`). They are gathered once by the caller,
//! so the resolvers themselves stay pure.

pub use crate::job::mounts::Mount;
use crate::layout::mindformers::names::Fmt;
use crate::model::FileRead;
use serde::Serialize;

/// MindFormers' `resume_training` after YAML/flag parsing.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResumeTraining {
    Bool(bool),
    Name(String),
    /// YAML `null`: not resuming.
    Unset,
    /// Any other YAML value, shown as Python's `str()` of it (raises M0).
    Invalid(String),
}

/// Which `Trainer` entry point runs (they gate the resolver slightly differently, §13.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    #[default]
    Train,
    Finetune,
}

/// `use_checkpoint_health_monitor` as written in the YAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
pub enum HealthSetting {
    #[default]
    Unset,
    Bool(bool),
    /// A non-bool value and its Python truthiness (`train` ignores it, `finetune` does not).
    Other(bool),
}

/// MindFormers configuration keys that affect resuming.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResumeConfig {
    /// `load_checkpoint`; `None` is YAML `null` (raises M3 when resuming).
    pub load_checkpoint: Option<String>,
    pub resume_training: ResumeTraining,
    pub fmt: Fmt,
    /// `resume_by_last_timestamp_ckpt` (`resume_by_meta = not this`).
    pub by_last_timestamp: bool,
    pub health: HealthSetting,
    /// `output_dir` as configured (health record is read from it as written).
    pub output_dir: String,
    pub mode: RunMode,
    pub auto_trans_ckpt: bool,
    pub use_graceful_exit: bool,
    pub remove_redundancy: bool,
    /// False when the YAML has a `checkpoint:` section (new format; out of scope).
    pub use_legacy_format: bool,
    /// `model.model_config.checkpoint_name_or_path` (used when `load_checkpoint` is empty).
    pub checkpoint_name_or_path: Option<String>,
    /// `prefix` of the `CheckpointMonitor` callback, when the YAML has one (M1 check).
    pub callback_prefix: Option<String>,
}

impl Default for ResumeConfig {
    fn default() -> Self {
        ResumeConfig {
            load_checkpoint: Some(String::new()),
            resume_training: ResumeTraining::Bool(true),
            fmt: Fmt::Ckpt,
            by_last_timestamp: false,
            health: HealthSetting::Unset,
            output_dir: "./output".into(),
            mode: RunMode::Train,
            auto_trans_ckpt: false,
            use_graceful_exit: false,
            remove_redundancy: false,
            use_legacy_format: true,
            checkpoint_name_or_path: None,
            callback_prefix: None,
        }
    }
}

impl ResumeConfig {
    /// Whether health mode is on, as `train` or `finetune` decides it.
    pub fn health_on(&self) -> bool {
        match (self.mode, self.health) {
            (_, HealthSetting::Bool(b)) => b,
            (RunMode::Train, HealthSetting::Other(_)) => false,
            (RunMode::Finetune, HealthSetting::Other(t)) => t,
            (_, HealthSetting::Unset) => false,
        }
    }
}

/// Environment variables and machine facts MindFormers consults.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct EnvFacts {
    /// `RANK_SIZE` / `--world-size` (the job's world size `W`); `None`: the number of `rank_*`
    /// entries in the checkpoint folder, counted at resolution time — the one convention.
    pub world_size: Option<u64>,
    /// `DEVICE_NUM_PER_NODE` (default 8).
    pub device_num_per_node: i64,
    /// `SHARED_PATHS` as one string, unsplit.
    pub shared_paths: Option<String>,
    /// Any ModelArts marker (`MA_LOG_DIR`, `MA_JOB_DIR`, `MA_LOCAL_LOG_PATH`, `BATCH_GROUP_NAME`).
    pub modelarts: bool,
    pub remote_save_url: Option<String>,
    /// `MS_ENABLE_TFT` enables TTP/UCE/ARF/HCCE.
    pub tft: bool,
    /// The mount table of the machine ckptscope runs on.
    pub mounts: Vec<Mount>,
}

impl EnvFacts {
    /// The world size the resolvers use: the configured one, else the `rank_*` entry count.
    pub fn world_size_for(&self, tree: &crate::model::Tree) -> u64 {
        // a single weights file has no rank folders to count: one process loads it
        let default = match tree.state {
            crate::model::RootState::File(_) => 1,
            _ => tree.rank_entry_count() as u64,
        };
        self.world_size.unwrap_or(default)
    }
}

/// Facts about paths that need the disk: realpaths and files under `output_dir`.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct PathFacts {
    /// `os.path.abspath(load_checkpoint)`.
    pub abspath: String,
    /// `os.path.realpath(load_checkpoint)`.
    pub realpath: String,
    /// Each `SHARED_PATHS` element with its realpath.
    pub shared_realpaths: Vec<(String, String)>,
    /// `<output_dir>/health_ckpts.json` (None: does not exist).
    pub health_json: Option<FileRead>,
    /// The existing `<realpath(output_dir)>/resume_record/latest_checkpointed_iteration.txt`.
    pub existing_record: Option<FileRead>,
    /// Its path, for messages.
    pub record_path: String,
}
