//! Demo scenarios: small TOML files in `demo/` (embedded in the binary) describing a training
//! run, a timeline of events (saves, kills, faults, resumes) and the outcome it demonstrates,
//! checked by `ckptscope demo --no-tui` and by the tests.
//!
//! ```toml
//! name = "fault-recovery"
//! description = "…"
//! outcome = "what it demonstrates, in one sentence"
//! [run]                      # all optional except ranks
//! ranks = 4
//! prefix = "llama3_1_8b"     # sink_size = 2, save_steps = 10, keep_max = 3,
//! async_save = false         # global_batch_size = 8, world_size, device_num_per_node
//! [[timeline]]
//! event = "train"            # train | kill | delete | truncate | corrupt | remove_meta |
//! steps = 40                 # resume | pause | breakpoint ; each may have `say = "…"`
//! [[expect]]                 # after the timeline; several allowed (different settings)
//! mindformers = "llama3_1_8b_rank_0-15_2.ckpt"   # or "newest", or "error: <text>"
//! safe = "llama3_1_8b_rank_0-15_2.ckpt"          # or "none"
//! skip = 30
//! first_printed = 32
//! # settings for this check: global_batch_size, ignore_data_skip, data_skip_steps
//! ```

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub outcome: String,
    pub run: RunSpec,
    pub timeline: Vec<Event>,
    #[serde(default)]
    pub expect: Vec<Expect>,
}

fn prefix() -> String {
    "llama3_1_8b".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub ranks: u64,
    #[serde(default = "prefix")]
    pub prefix: String,
    #[serde(default = "two")]
    pub sink_size: i64,
    #[serde(default = "ten")]
    pub save_steps: i64,
    #[serde(default = "three")]
    pub keep_max: usize,
    #[serde(default)]
    pub async_save: bool,
    #[serde(default = "eight")]
    pub global_batch_size: i64,
    /// The job's world size for the checks (default: `ranks`).
    pub world_size: Option<u64>,
    pub device_num_per_node: Option<i64>,
}

fn two() -> i64 {
    2
}
fn ten() -> i64 {
    10
}
fn three() -> usize {
    3
}
fn eight() -> i64 {
    8
}

/// One timeline event. `step` is an `E_S` such as `20_2` (of the newest run that has it).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The first launch: train this many steps, saving on schedule.
    Train {
        steps: i64,
        say: Option<String>,
    },
    /// The job dies in the middle of its next save: a `.tmp` is left on these ranks (all by default).
    Kill {
        ranks: Option<Vec<u64>>,
        say: Option<String>,
    },
    Delete {
        rank: u64,
        step: String,
        say: Option<String>,
    },
    Truncate {
        rank: u64,
        step: String,
        bytes: u64,
        say: Option<String>,
    },
    /// Flip one byte of a tensor's data (undetectable without a CRC or a manifest).
    Corrupt {
        rank: u64,
        step: String,
        offset: u64,
        say: Option<String>,
    },
    RemoveMeta {
        rank: u64,
        say: Option<String>,
    },
    /// Resume where MindFormers would, as a new launch (restart suffix), optionally with a new
    /// global batch size.
    Resume {
        steps: i64,
        global_batch_size: Option<i64>,
        say: Option<String>,
    },
    Pause {
        seconds: f64,
        say: Option<String>,
    },
    /// Exception saves (`…-E_S_breakpoint.ckpt`) on these ranks (all by default).
    Breakpoint {
        ranks: Option<Vec<u64>>,
        step: String,
        say: Option<String>,
    },
}

impl Event {
    pub fn say(&self) -> Option<&str> {
        match self {
            Event::Train { say, .. }
            | Event::Kill { say, .. }
            | Event::Delete { say, .. }
            | Event::Truncate { say, .. }
            | Event::Corrupt { say, .. }
            | Event::RemoveMeta { say, .. }
            | Event::Resume { say, .. }
            | Event::Pause { say, .. }
            | Event::Breakpoint { say, .. } => say.as_deref(),
        }
    }
}

/// The outcome to check after the timeline, under these settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub label: Option<String>,
    pub mindformers: String,
    pub safe: Option<String>,
    pub skip: Option<i64>,
    pub first_printed: Option<i64>,
    pub global_batch_size: Option<i64>,
    #[serde(default)]
    pub ignore_data_skip: bool,
    pub data_skip_steps: Option<i64>,
}

/// The scenarios shipped in `demo/`, in the order `--list` shows them.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "seed-walkthrough",
        include_str!("../../demo/seed-walkthrough.toml"),
    ),
    (
        "fault-recovery",
        include_str!("../../demo/fault-recovery.toml"),
    ),
    (
        "dataset-change",
        include_str!("../../demo/dataset-change.toml"),
    ),
    (
        "truncated-shard",
        include_str!("../../demo/truncated-shard.toml"),
    ),
    (
        "async-meta-lag",
        include_str!("../../demo/async-meta-lag.toml"),
    ),
    (
        "restart-prefix",
        include_str!("../../demo/restart-prefix.toml"),
    ),
    (
        "breakpoint-file",
        include_str!("../../demo/breakpoint-file.toml"),
    ),
    (
        "non-shared-multinode",
        include_str!("../../demo/non-shared-multinode.toml"),
    ),
];

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScenarioError {
    #[error("built-in scenario {name}: {why}")]
    Builtin { name: String, why: String },
    #[error("{name}: not a built-in scenario ({known}) nor a readable scenario file: {why}")]
    Unreadable {
        name: String,
        known: String,
        why: String,
    },
    #[error("{name}: not a valid scenario: {why}")]
    Invalid { name: String, why: String },
}

/// The largest scenario file read (a real one is a few KB).
pub const SCENARIO_LIMIT: u64 = 1 << 20;

pub fn parse(text: &str) -> Result<Scenario, toml::de::Error> {
    toml::from_str(text)
}

/// A built-in scenario by name, or a scenario file by path (regular files only, opened
/// non-blocking, at most [`SCENARIO_LIMIT`] bytes).
pub fn load(name: &str) -> Result<Scenario, ScenarioError> {
    use crate::fsys::Fs;
    use crate::model::FileRead;
    if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        return parse(text).map_err(|e| ScenarioError::Builtin {
            name: name.into(),
            why: e.to_string(),
        });
    }
    let unreadable = |why: String| ScenarioError::Unreadable {
        name: name.into(),
        known: names(),
        why,
    };
    let bytes = match crate::fsys::RealFs.read_small(std::path::Path::new(name), SCENARIO_LIMIT) {
        FileRead::Bytes(b) => b,
        FileRead::Error(e) => return Err(unreadable(e.text)),
        FileRead::TooLarge(n) => {
            return Err(unreadable(format!(
                "{n} bytes or more, over the {SCENARIO_LIMIT}-byte limit"
            )))
        }
        FileRead::NotRegular(k) => {
            return Err(unreadable(format!(
                "a {k:?}, not a regular file (never opened)"
            )))
        }
    };
    let invalid = |why: String| ScenarioError::Invalid {
        name: name.into(),
        why,
    };
    let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
    parse(&text).map_err(|e| invalid(e.to_string()))
}

pub fn names() -> String {
    BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
