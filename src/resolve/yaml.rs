//! Reading the resume-related keys of a MindFormers YAML (serde-saphyr: maintained, pure Rust).
//! Values are read loosely (`serde_json::Value`) because MindFormers' behaviour depends on their
//! *types*: `resume_training: 1` is an error, `use_checkpoint_health_monitor: 1` is ignored by
//! `train`, and so on.

use super::config::{HealthSetting, ResumeConfig, ResumeTraining, RunMode};
use super::context::RunSettings;
use crate::layout::mindformers::names::Fmt;
use crate::py::json::PyValue;
use serde_json::Value;

/// What the YAML sets (unset keys stay `None` so that flags and defaults can fill them).
#[derive(Clone, Debug, Default)]
pub struct YamlConfig {
    pub load_checkpoint: Option<Option<String>>,
    pub resume_training: Option<ResumeTraining>,
    pub fmt: Option<Fmt>,
    pub by_last_timestamp: Option<bool>,
    pub health: HealthSetting,
    pub output_dir: Option<String>,
    pub mode: Option<RunMode>,
    pub auto_trans_ckpt: bool,
    pub use_graceful_exit: bool,
    pub remove_redundancy: bool,
    pub has_checkpoint_section: bool,
    pub checkpoint_name_or_path: Option<String>,
    pub callback_prefix: Option<String>,
    pub run: RunSettings,
    /// What the new format's config stage reads, as Python values.
    pub new_format: NewFormatYaml,
}

/// The keys the new checkpoint format's config stage and resume read
/// (`mindformers-new-format.md` §1, §7.1, §7.3), as Python sees them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewFormatYaml {
    pub resume_training: Option<PyValue>,
    pub load_checkpoint: Option<PyValue>,
    pub use_legacy_format: Option<PyValue>,
    /// The `checkpoint:` section as written (`None`: absent).
    pub checkpoint: Option<PyValue>,
    /// The `CheckpointMonitor` callback's `keep_checkpoint_max`.
    pub keep_checkpoint_max: Option<PyValue>,
    /// The top-level `load_ckpt_format` as written (any string: only `ckpt` is a trap).
    pub load_ckpt_format: Option<String>,
    /// `monitor_config.health_checkpoint.embedding_local_norm_threshold` is truthy.
    pub health_threshold: bool,
}

/// A YAML value as the Python value PyYAML would give.
fn py(v: &Value) -> PyValue {
    crate::py::json::loads(&v.to_string()).unwrap_or(PyValue::None)
}

/// The pieces of MindFormers' global-batch-size formula (spec §8.1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GbsFormula {
    pub semi_or_auto: bool,
    pub batch_size: i64,
    pub data_parallel: i64,
    pub pipeline_stages: i64,
    pub micro_batch_num: i64,
    pub micro_batch_interleave_num: i64,
    pub gradient_accumulation_steps: i64,
}

impl GbsFormula {
    /// The global batch size, or `None` when the data-parallel formula needs a world size
    /// that was not given, or when the product overflows (a YAML no job runs with).
    pub fn global_batch_size(&self, world_size: Option<u64>) -> Option<i64> {
        let product = |xs: &[i64]| xs.iter().try_fold(1i64, |a, x| a.checked_mul(*x));
        if self.semi_or_auto {
            if self.pipeline_stages > 1 {
                product(&[
                    self.batch_size,
                    self.data_parallel,
                    self.micro_batch_num,
                    self.micro_batch_interleave_num,
                ])
            } else {
                product(&[
                    self.batch_size,
                    self.data_parallel,
                    self.micro_batch_interleave_num,
                    self.gradient_accumulation_steps,
                ])
            }
        } else {
            let w = i64::try_from(world_size?).ok()?;
            product(&[self.batch_size, w, self.gradient_accumulation_steps])
        }
    }
}

fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .try_fold(v, |cur, k| cur.get(k))
        .filter(|v| !v.is_null())
}

fn int(v: &Value, keys: &[&str]) -> Option<i64> {
    path(v, keys).and_then(Value::as_i64)
}

fn boolean(v: &Value, keys: &[&str]) -> Option<bool> {
    path(v, keys).and_then(Value::as_bool)
}

fn string(v: &Value, keys: &[&str]) -> Option<String> {
    path(v, keys).and_then(Value::as_str).map(str::to_owned)
}

/// Python's `str()` of a YAML value, for M0.
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parse YAML text.
pub fn parse(text: &str) -> Result<YamlConfig, String> {
    // PyYAML (what MindFormers loads its config with) keeps the last of repeated keys
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::LastWins,
    };
    let v: Value = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        // the parser's message spans several lines (with a source excerpt): the first says it
        let full = e.to_string();
        full.lines().next().unwrap_or_default().trim().to_owned()
    })?;
    if !v.is_object() {
        return Err("the YAML document is not a mapping".into());
    }
    let mut y = YamlConfig {
        load_checkpoint: v
            .get("load_checkpoint")
            .map(|x| x.as_str().map(str::to_owned)),
        resume_training: v.get("resume_training").map(|x| match x {
            Value::Bool(b) => ResumeTraining::Bool(*b),
            Value::String(s) => ResumeTraining::Name(s.clone()),
            Value::Null => ResumeTraining::Unset,
            other => ResumeTraining::Invalid(py_str(other)),
        }),
        fmt: string(&v, &["load_ckpt_format"]).and_then(|s| Fmt::parse(&s)),
        by_last_timestamp: boolean(&v, &["resume_by_last_timestamp_ckpt"]),
        output_dir: string(&v, &["output_dir"]),
        mode: string(&v, &["run_mode"]).and_then(|m| match m.as_str() {
            "train" => Some(RunMode::Train),
            "finetune" => Some(RunMode::Finetune),
            _ => None,
        }),
        auto_trans_ckpt: boolean(&v, &["auto_trans_ckpt"]).unwrap_or(false),
        use_graceful_exit: boolean(&v, &["use_graceful_exit"]).unwrap_or(false),
        remove_redundancy: boolean(&v, &["remove_redundancy"]).unwrap_or(false),
        has_checkpoint_section: v.get("checkpoint").is_some_and(|c| !c.is_null()),
        checkpoint_name_or_path: string(&v, &["model", "model_config", "checkpoint_name_or_path"]),
        ..Default::default()
    };
    y.health = match v.get("use_checkpoint_health_monitor") {
        None | Some(Value::Null) => HealthSetting::Unset,
        Some(Value::Bool(b)) => HealthSetting::Bool(*b),
        Some(other) => HealthSetting::Other(truthy(other)),
    };
    y.new_format = NewFormatYaml {
        resume_training: v.get("resume_training").map(py),
        load_checkpoint: v.get("load_checkpoint").map(py),
        use_legacy_format: v.get("use_legacy_format").map(py),
        checkpoint: v.get("checkpoint").map(py),
        keep_checkpoint_max: v
            .get("callbacks")
            .and_then(Value::as_array)
            .and_then(|cbs| {
                cbs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("CheckpointMonitor"))
                    .and_then(|c| c.get("keep_checkpoint_max"))
                    .map(py)
            }),
        load_ckpt_format: string(&v, &["load_ckpt_format"]),
        health_threshold: path(
            &v,
            &[
                "monitor_config",
                "health_checkpoint",
                "embedding_local_norm_threshold",
            ],
        )
        .is_some_and(truthy),
    };
    y.callback_prefix = v
        .get("callbacks")
        .and_then(Value::as_array)
        .and_then(|cbs| {
            cbs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("CheckpointMonitor"))
                .and_then(|c| string(c, &["prefix"]))
        });
    y.run = RunSettings {
        new_global_batch_size: None,
        sink_mode: boolean(&v, &["runner_config", "sink_mode"]),
        sink_size: int(&v, &["runner_config", "sink_size"]),
        dataset_size: None,
        ignore_data_skip: boolean(&v, &["ignore_data_skip"]).unwrap_or(false),
        data_skip_steps: int(&v, &["data_skip_steps"]),
        global_batch_formula: None,
        no_load_optim: None,
    };
    y.run.global_batch_formula =
        int(&v, &["runner_config", "batch_size"]).map(|batch_size| GbsFormula {
            semi_or_auto: matches!(
                path(&v, &["parallel", "parallel_mode"]),
                Some(Value::Number(n)) if matches!(n.as_i64(), Some(1 | 2))
            ) || matches!(
                string(&v, &["parallel", "parallel_mode"]).as_deref(),
                Some("semi_auto_parallel" | "auto_parallel")
            ),
            batch_size,
            data_parallel: int(&v, &["parallel_config", "data_parallel"]).unwrap_or(1),
            pipeline_stages: int(&v, &["parallel_config", "pipeline_stage"]).unwrap_or(1),
            micro_batch_num: int(&v, &["parallel_config", "micro_batch_num"]).unwrap_or(1),
            micro_batch_interleave_num: int(&v, &["micro_batch_interleave_num"]).unwrap_or(1),
            gradient_accumulation_steps: int(&v, &["runner_config", "gradient_accumulation_steps"])
                .unwrap_or(1),
        });
    Ok(y)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

impl YamlConfig {
    /// Fill a configuration from the YAML's keys (flags applied afterwards win).
    pub fn apply(&self, cfg: &mut ResumeConfig) {
        if let Some(lc) = &self.load_checkpoint {
            cfg.load_checkpoint = lc.clone();
        }
        if let Some(rt) = &self.resume_training {
            cfg.resume_training = rt.clone();
        }
        if let Some(f) = self.fmt {
            cfg.fmt = f;
        }
        if let Some(b) = self.by_last_timestamp {
            cfg.by_last_timestamp = b;
        }
        cfg.health = self.health;
        if let Some(o) = &self.output_dir {
            cfg.output_dir = o.clone();
        }
        if let Some(m) = self.mode {
            cfg.mode = m;
        }
        cfg.auto_trans_ckpt = self.auto_trans_ckpt;
        cfg.use_graceful_exit = self.use_graceful_exit;
        cfg.remove_redundancy = self.remove_redundancy;
        cfg.use_legacy_format = !self.has_checkpoint_section;
        cfg.checkpoint_name_or_path = self.checkpoint_name_or_path.clone();
        cfg.callback_prefix = self.callback_prefix.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resume_keys() {
        let y = parse(
            "load_checkpoint: /out/checkpoint\nresume_training: True\nrunner_config:\n  batch_size: 1\n  sink_mode: True\n  sink_size: 2\nparallel:\n  parallel_mode: 1\nparallel_config:\n  data_parallel: 8\n  pipeline_stage: 1\ncallbacks:\n  - type: MFLossMonitor\n  - type: CheckpointMonitor\n    prefix: llama3_1_8b\n",
        )
        .unwrap();
        assert_eq!(y.load_checkpoint, Some(Some("/out/checkpoint".into())));
        assert_eq!(y.resume_training, Some(ResumeTraining::Bool(true)));
        assert_eq!(y.run.sink_size, Some(2));
        assert_eq!(y.callback_prefix.as_deref(), Some("llama3_1_8b"));
        assert_eq!(
            y.run
                .global_batch_formula
                .unwrap()
                .global_batch_size(Some(8)),
            Some(8)
        );
    }

    #[test]
    fn non_bool_resume_training_is_kept_for_m0() {
        let y = parse("resume_training: false\nresume_training: true\n").unwrap();
        assert_eq!(
            y.resume_training,
            Some(ResumeTraining::Bool(true)),
            "PyYAML keeps the last of repeated keys"
        );
        let y = parse("resume_training: 1\n").unwrap();
        assert_eq!(y.resume_training, Some(ResumeTraining::Invalid("1".into())));
    }
}
