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
//! layout = "legacy"          # or "new": iteration_* folders, a tracker, common.json; `step`
//!                            # is then an iteration ("30"), expectations name folders
//! [[timeline]]
//! event = "train"            # train | kill | delete | truncate | corrupt | remove_meta |
//! steps = 40                 # resume | pause | breakpoint | kill_before_tracker (new) |
//!                            # async_lag (new) ; each may have `say = "…"`
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
    /// `"new"`: the run saves in MindFormers' new format (`iteration_*` folders, a tracker,
    /// `common.json`); `step` in events and expectations is then an iteration number (`"30"`)
    /// and `mindformers`/`safe` name folders (`"iteration_00000030"`).
    #[serde(default)]
    pub layout: Layout,
}

/// The checkpoint format a demo run saves in.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    #[default]
    Legacy,
    New,
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
    /// New format: the next save completes on every rank, and the job dies just before rank 0
    /// writes the tracker.
    KillBeforeTracker {
        say: Option<String>,
    },
    /// New format: the next save is asynchronous and the job dies with its optimizer shards
    /// still `.tmp`; the tracker names the save before (its finaliser ran late).
    AsyncLag {
        say: Option<String>,
    },
}

impl Event {
    /// The event's name as the scenario file writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Train { .. } => "train",
            Event::Kill { .. } => "kill",
            Event::Delete { .. } => "delete",
            Event::Truncate { .. } => "truncate",
            Event::Corrupt { .. } => "corrupt",
            Event::RemoveMeta { .. } => "remove_meta",
            Event::Resume { .. } => "resume",
            Event::Pause { .. } => "pause",
            Event::Breakpoint { .. } => "breakpoint",
            Event::KillBeforeTracker { .. } => "kill_before_tracker",
            Event::AsyncLag { .. } => "async_lag",
        }
    }

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
            | Event::Breakpoint { say, .. }
            | Event::KillBeforeTracker { say }
            | Event::AsyncLag { say } => say.as_deref(),
        }
    }
}

/// Bounds on what a scenario may ask of the simulated trainer: a demo is a few ranks and a few
/// saves (a typo must not write millions of files or fill the memory).
pub const MAX_RANKS: u64 = 1024;
pub const MAX_STEPS: i64 = 100_000;
/// Files written over the whole timeline (saves × ranks).
pub const MAX_FILES: i64 = 200_000;

impl Scenario {
    /// Check every value against its bound, with the reason.
    pub fn validate(&self) -> Result<(), String> {
        let r = &self.run;
        let within = |what: &str, v: i64, lo: i64, hi: i64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{what} = {v}: expected {lo} … {hi}"))
            }
        };
        within(
            "run.ranks",
            r.ranks.min(i64::MAX as u64) as i64,
            1,
            MAX_RANKS as i64,
        )?;
        within("run.sink_size", r.sink_size, 1, 10_000)?;
        within("run.save_steps", r.save_steps, 1, MAX_STEPS)?;
        within(
            "run.keep_max",
            r.keep_max.min(i64::MAX as usize) as i64,
            1,
            1000,
        )?;
        within("run.global_batch_size", r.global_batch_size, 1, 1 << 30)?;
        if r.prefix.is_empty()
            || r.prefix.len() > 64
            || r.prefix.contains(['/', '\0'])
            || r.prefix.chars().any(char::is_control)
        {
            return Err(format!(
                "run.prefix {:?}: expected 1 … 64 characters, no '/' or control characters",
                r.prefix
            ));
        }
        if let Some(w) = r.world_size {
            within(
                "run.world_size",
                w.min(i64::MAX as u64) as i64,
                1,
                crate::job::MAX_WORLD_SIZE as i64,
            )?;
        }
        if let Some(d) = r.device_num_per_node {
            within("run.device_num_per_node", d, 1, 1 << 20)?;
        }
        let mut files: i64 = 0;
        for ev in &self.timeline {
            match ev {
                Event::Resume {
                    global_batch_size: Some(g),
                    ..
                } if !(1..=1 << 30).contains(g) => {
                    return Err(format!(
                        "resume global_batch_size = {g}: expected 1 … {}",
                        1 << 30
                    ));
                }
                Event::Train { steps, .. } | Event::Resume { steps, .. } => {
                    within("timeline steps", *steps, 1, MAX_STEPS)?;
                    files = files.saturating_add(steps / r.save_steps.max(1) * r.ranks as i64);
                }
                Event::Pause { seconds, .. } if !(0.0..=3600.0).contains(seconds) => {
                    return Err(format!("pause seconds = {seconds}: expected 0 … 3600"));
                }
                Event::KillBeforeTracker { .. } | Event::AsyncLag { .. }
                    if r.layout != Layout::New =>
                {
                    return Err(format!(
                        "event {}: only a new-format run (run.layout = \"new\") has a tracker",
                        ev.kind()
                    ));
                }
                Event::RemoveMeta { .. } | Event::Breakpoint { .. } if r.layout == Layout::New => {
                    return Err(format!(
                        "event {}: a new-format run has no meta.json and no exception saves",
                        ev.kind()
                    ));
                }
                Event::Delete { rank, .. }
                | Event::Truncate { rank, .. }
                | Event::Corrupt { rank, .. }
                | Event::RemoveMeta { rank, .. }
                    if *rank >= r.ranks =>
                {
                    return Err(format!(
                        "rank {rank}: the run has ranks 0 … {}",
                        r.ranks - 1
                    ));
                }
                Event::Kill {
                    ranks: Some(rs), ..
                }
                | Event::Breakpoint {
                    ranks: Some(rs), ..
                } if rs.iter().any(|x| *x >= r.ranks) => {
                    return Err(format!(
                        "ranks {rs:?}: the run has ranks 0 … {}",
                        r.ranks - 1
                    ));
                }
                _ => {}
            }
        }
        if files > MAX_FILES {
            return Err(format!(
                "the timeline writes {files} checkpoint files: a demo writes at most {MAX_FILES}"
            ));
        }
        Ok(())
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
    (
        "new-kill-before-tracker",
        include_str!("../../demo/new-kill-before-tracker.toml"),
    ),
    (
        "new-kill-midsave",
        include_str!("../../demo/new-kill-midsave.toml"),
    ),
    (
        "new-async-lag",
        include_str!("../../demo/new-async-lag.toml"),
    ),
    (
        "new-batch-size",
        include_str!("../../demo/new-batch-size.toml"),
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
                "{k}, not a regular file (never opened)"
            )))
        }
    };
    let invalid = |why: String| ScenarioError::Invalid {
        name: name.into(),
        why,
    };
    let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
    let sc = parse(&text).map_err(|e| invalid(one_line(&text, &e)))?;
    sc.validate().map_err(invalid)?;
    Ok(sc)
}

/// A TOML error as one line ("line 3, column 1: missing field `description`"): the parser's
/// own rendering spans several lines with a source excerpt, which a one-line usage error
/// would show as escaped newlines.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

pub fn names() -> String {
    BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
