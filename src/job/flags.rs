//! The job's command-line flags, shared by every command that answers questions about a job
//! (`resolve`, `verify`, `grid`, `watch`, the TUI): the same flags mean the same context
//! everywhere. Environment variables are not read here (clap's `env` is not used): the job
//! context reads them once, so a flag visibly overrides its variable in one place.

use clap::ValueEnum;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Ckpt,
    Safetensors,
}

/// Which checkpoint layout to read a root as (`--layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// `rank_*/` folders (MindFormers' legacy format).
    Legacy,
    /// `iteration_*/` folders and a tracker (MindFormers' new format).
    New,
}

#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct JobFlags {
    /// true, false, or a checkpoint file name (MindFormers' resume_training).
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
    /// The job's world size (default: env RANK_SIZE, else the number of rank_* entries).
    #[arg(long, value_name = "N")]
    pub world_size: Option<u64>,
    /// Devices per node (default: env DEVICE_NUM_PER_NODE, else 8).
    #[arg(long, value_name = "N")]
    pub device_num_per_node: Option<i64>,
    /// Comma-separated shared path prefixes (default: env SHARED_PATHS).
    #[arg(long, value_name = "P1,P2")]
    pub shared_paths: Option<String>,
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
    /// New format: checkpoint.no_load_optim: True (load the weights only, start at step 0).
    #[arg(long)]
    pub no_load_optim: bool,
    /// Read the root as this layout (default: what it holds; with both, what --config selects).
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// The ssh client for ssh:// roots, with its own options (default `ssh`), e.g.
    /// 'ssh -F ~/.ssh/job_config'.
    #[arg(long, value_name = "CMD")]
    pub ssh_command: Option<String>,
    /// ckptscope's path on the hosts of ssh:// roots (default `ckptscope`, found on their PATH).
    #[arg(long, value_name = "PATH")]
    pub remote_ckptscope: Option<String>,
    /// The S3 API endpoint of s3:// roots for a store other than AWS (MinIO, OBS:
    /// `https://obs.<region>.myhuaweicloud.com`); requests are then path-style.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    pub s3_endpoint: Option<String>,
    /// The region of s3:// roots' buckets (default `us-east-1`).
    #[arg(long, value_name = "NAME", env = "AWS_REGION")]
    pub s3_region: Option<String>,
}
