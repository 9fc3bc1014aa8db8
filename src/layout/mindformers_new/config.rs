//! The config stage of a new-format job (`mindformers-new-format.md` §1, §10.1, §13.1 item 1):
//! the `Trainer` rules that touch `resume_training` and `load_checkpoint`, then
//! `convert_checkpoint_config` (the `checkpoint:` section filled from the top-level keys) and
//! `validate_checkpoint_config` — in MindFormers' order, with its messages. The values are the
//! YAML's as Python sees them ([`PyValue`]); the filesystem is asked only whether the path
//! exists, is a folder, is empty, or holds Hugging Face markers.

use crate::fsys::Fs;
use crate::model::FileKind;
use crate::py::json::PyValue;
use crate::py::PyException;
use std::path::Path;

/// What the YAML says, as far as this stage reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Yaml {
    pub resume_training: PyValue,
    pub load_checkpoint: PyValue,
    /// `use_legacy_format` as written in the YAML (`None`: not written; the default is `True`).
    pub use_legacy_format: Option<PyValue>,
    /// The `checkpoint:` section as written (`None`: absent).
    pub checkpoint: Option<PyValue>,
    /// The `CheckpointMonitor` callback's `keep_checkpoint_max`, when given.
    pub keep_checkpoint_max: Option<PyValue>,
}

/// What the config stage leaves for the resume.
#[derive(Clone, Debug, PartialEq)]
pub enum Config {
    /// The legacy format stays in force (no truthy `checkpoint:` section, no
    /// `use_legacy_format: False`).
    Legacy,
    New {
        /// `checkpoint.load_path`.
        load_path: String,
        /// `checkpoint.no_load_optim`, truthy or not (a string is truthy).
        no_load_optim: bool,
        /// `resume_training` after the rules (truthy or not).
        resume_training: bool,
    },
}

fn value_error(m: impl Into<String>) -> PyException {
    PyException::new("ValueError", m)
}

/// The config stage for YAML `y`, paths read through `fs` relative to `cwd` (absolute paths as
/// they are).
pub fn config(fs: &dyn Fs, cwd: &Path, y: &Yaml) -> Result<Config, PyException> {
    let at = |p: &str| cwd.join(p);
    let kind = |p: &str| fs.stat(&at(p)).ok().map(|s| s.kind);
    let mut resume = y.resume_training.clone();
    let mut load = y.load_checkpoint.clone();
    // resume_training must be bool, str (or null)
    if !matches!(resume, PyValue::Bool(_) | PyValue::Str(_) | PyValue::None) {
        return Err(PyException::new(
            "TypeError",
            format!(
                "resume_training must be bool or str, but get {}",
                resume.py_str()
            ),
        ));
    }
    // resume on with an empty load_checkpoint (or an empty folder): a fresh start, warning only
    if resume == PyValue::Bool(true) {
        match &load {
            PyValue::Str(p) => {
                let empty_dir = kind(p) == Some(FileKind::Dir)
                    && fs.read_dir(&at(p)).is_ok_and(|es| es.is_empty());
                if p.is_empty() || empty_dir {
                    resume = PyValue::Bool(false);
                    load = PyValue::Str(String::new());
                }
            }
            other => {
                return Err(PyException::new(
                    "TypeError",
                    format!(
                        "`load_checkpoint` should be a string, but got type {}.",
                        other.type_name()
                    ),
                ))
            }
        }
    }
    // a string resume_training with an existing FILE as load_checkpoint becomes True
    if let (PyValue::Str(_), PyValue::Str(p)) = (&resume, &load) {
        if kind(p) == Some(FileKind::File) {
            resume = PyValue::Bool(true);
        }
    }
    let written_new = y.use_legacy_format.as_ref().is_some_and(|v| !v.truthy());
    if written_new && !matches!(resume, PyValue::Bool(_)) {
        return Err(value_error("The resume_training must be a boolean value."));
    }
    let section = y.checkpoint.clone().unwrap_or(PyValue::None);
    if !(section.truthy() || written_new) {
        return Ok(Config::Legacy);
    }
    if !matches!(resume, PyValue::Bool(_) | PyValue::None) {
        return Err(value_error(
            "resume_training should be a bool value when the use_legacy_format is False.",
        ));
    }
    // convert_checkpoint_config: a key missing or null in the section is filled
    let get = |k: &str| section.get(k).filter(|v| **v != PyValue::None).cloned();
    let load_path = match get("load_path").unwrap_or(load) {
        PyValue::Str(s) => s,
        PyValue::None => String::new(),
        other => other.py_str(),
    };
    let no_load_optim = get("no_load_optim").unwrap_or(PyValue::Bool(!resume.truthy()));
    let at_least_one = |k: &str, default: i64| -> Result<(), PyException> {
        let n = get(k).and_then(|v| as_count(&v)).unwrap_or(default);
        match n < 1 {
            true => Err(value_error(format!(
                "{k} in checkpoint_config should be at least 1."
            ))),
            false => Ok(()),
        }
    };
    let save_max_default = save_max_default(y);
    at_least_one("save_max", save_max_default)?;
    at_least_one("save_interleaved_steps", 1)?;
    at_least_one("reshard_worker_num", 1)?;
    // validate_checkpoint_config: a string no_load_optim counts as False here
    let resume_here = matches!(no_load_optim, PyValue::Str(_)) || !no_load_optim.truthy();
    if resume_here && !load_path.is_empty() {
        match kind(&load_path) {
            None => {
                return Err(value_error(format!(
                    "checkpoint_path does not exist: {load_path}"
                )))
            }
            Some(FileKind::Dir) => {}
            Some(_) => {
                return Err(value_error(format!(
                    "checkpoint_path is not a directory: {load_path}"
                )))
            }
        }
        let hf = fs.read_dir(&at(&load_path)).is_ok_and(|es| {
            es.iter().any(|e| {
                let n = e.name.to_string_lossy();
                n == "model.safetensors" || n.ends_with("model.safetensors.index.json")
            })
        });
        if hf {
            return Err(value_error(
                "Resume training not supported for HuggingFace checkpoints.",
            ));
        }
    }
    Ok(Config::New {
        load_path,
        no_load_optim: no_load_optim.truthy(),
        resume_training: resume.truthy(),
    })
}

/// A count setting (`save_max`, `save_interleaved_steps` …) as the config stage compares it
/// with 1: an int (one beyond 64 bits counts as huge), a bool as 0 or 1, a float rounded down;
/// anything else leaves the default.
pub(crate) fn as_count(v: &PyValue) -> Option<i64> {
    match v {
        PyValue::Int(i) => Some(i.to_i64().unwrap_or(i64::MAX)),
        PyValue::Bool(b) => Some(i64::from(*b)),
        PyValue::Float(f) => Some(f.floor() as i64),
        _ => None,
    }
}

/// `save_max` when the section does not set it: the callback's `keep_checkpoint_max` (an int
/// that fits 64 bits), else 5.
pub(crate) fn save_max_default(y: &Yaml) -> i64 {
    match &y.keep_checkpoint_max {
        Some(PyValue::Int(i)) => i.to_i64().unwrap_or(5),
        _ => 5,
    }
}
