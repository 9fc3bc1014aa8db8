//! One rank's resume in the new format, stage by stage as MindFormers runs it
//! (`mindformers-new-format.md` §6, §7.2–§7.4): the folder (`resolve`), the context from
//! `common.json` (`context`), then the MindIO preload trap of `load_ckpt_format: ckpt`; health
//! mode (§7.1) replaces the folder first. Every rank gets the same answer up to here (§9). The
//! weights stage (§7.5) is [`super::weights`] and [`super::analysis`]'s.

use super::context::{resume as context, Resumed, RunArgs};
use super::resolve::{get_checkpoint_path, At};
use crate::fsys::Fs;
use crate::model::{FileKind, FileRead};
use crate::py::PyException;

/// How the job is configured, as far as these stages care.
#[derive(Clone, Debug, PartialEq)]
pub struct Mode {
    pub run: RunArgs,
    /// The top-level `load_ckpt_format` (the template default `ckpt` breaks every resume).
    pub load_ckpt_format: String,
    /// Health mode on: `<output_dir>/checkpoint` (where MindFormers looks for a healthy
    /// folder, whatever `load_checkpoint` says).
    pub health: Option<At>,
}

/// Where a rank resumes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// What `get_checkpoint_path` resolved the configured path to.
    pub resolved: Option<At>,
    /// The folder loaded (`None`: nothing is loaded): `resolved`, or health mode's choice.
    pub load_path: Option<At>,
    pub context: Resumed,
}

/// What a rank raises, and in which stage (`resolve`, `context`, as the oracle names them).
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub stage: &'static str,
    pub error: PyException,
}

fn at(stage: &'static str) -> impl Fn(PyException) -> Failure {
    move |error| Failure { stage, error }
}

/// The resume of a job whose `checkpoint.load_path` is `load_path`, up to the weights.
pub fn resume(fs: &dyn Fs, load_path: &At, mode: &Mode) -> Result<Resolved, Failure> {
    let run = &mode.run;
    let resolved = get_checkpoint_path(fs, load_path, !run.no_load_optim).map_err(at("resolve"))?;
    let d = match (&mode.health, run.no_load_optim) {
        (Some(c), false) => Some(healthy(fs, c).map_err(at("context"))?),
        _ => resolved.clone(),
    };
    let dir = d.as_ref().map_or("", |d| d.shown.as_str());
    let common = match (&d, run.no_load_optim) {
        (Some(d), false) => {
            let f = d.join("common.json");
            match fs.stat(&f.real) {
                Err(_) => None,
                Ok(_) => match fs.read_small(&f.real, 64 << 20) {
                    FileRead::Bytes(b) => Some(b),
                    FileRead::Error(e) => return Err(at("context")(e.to_py(&f.shown))),
                    other => return Err(at("context")(super::valid::unread(&f.shown, &other))),
                },
            }
        }
        _ => None,
    };
    let ctx = context(dir, common.as_deref(), run).map_err(at("context"))?;
    if let Some(d) = &d {
        if mode.load_ckpt_format == "ckpt" && !preload_finds_ckpt(fs, d) {
            return Err(at("context")(PyException::new(
                "ValueError",
                format!(
                    "{} is not a valid path to load checkpoint when auto_trans_ckpt is False.",
                    d.shown
                ),
            )));
        }
    }
    Ok(Resolved {
        resolved,
        load_path: d,
        context: ctx,
    })
}

/// `get_healthy_checkpoint_path()` (§7.1): the newest `iteration_*` of `c` whose
/// `common.json` says `ckpt_status == 0` — the tracker is not read, the folder not verified.
fn healthy(fs: &dyn Fs, c: &At) -> Result<At, PyException> {
    use crate::py::json::PyValue;
    match fs.stat(&c.real).map(|s| s.kind) {
        Err(_) => {
            return Err(PyException::new(
                "ValueError",
                format!("Checkpoint directory does not exist: {}", c.shown),
            ))
        }
        Ok(FileKind::Dir) => {}
        Ok(_) => {
            return Err(PyException::new(
                "ValueError",
                format!("Checkpoint path is not a directory: {}", c.shown),
            ))
        }
    }
    // glob("iteration_*") in readdir order, then a stable sort by the number, newest first
    let names: Vec<String> = fs
        .read_dir(&c.real)
        .map(|es| {
            es.iter()
                .map(|e| e.name.to_string_lossy().into_owned())
                .filter(|n| n.starts_with("iteration_"))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return Err(PyException::new(
            "RuntimeError",
            format!("No checkpoint directory found in: {}", c.shown),
        ));
    }
    let number = |n: &str| -> Option<crate::py::int::PyInt> {
        let rest = &n["iteration_".len()..];
        let digits: String = rest
            .chars()
            .skip_while(|ch| !crate::py::int::is_unicode_digit(*ch))
            .take_while(|ch| crate::py::int::is_unicode_digit(*ch))
            .collect();
        super::tracker::py_int(&digits)
    };
    let mut keyed: Vec<(Option<crate::py::int::PyInt>, &String)> =
        names.iter().map(|n| (number(n), n)).collect();
    if keyed.len() > 1 && keyed.iter().any(|(k, _)| k.is_none()) {
        let other = match keyed.iter().all(|(k, _)| k.is_none()) {
            true => "NoneType",
            false => "int",
        };
        return Err(PyException::new(
            "TypeError",
            format!("'<' not supported between instances of 'NoneType' and '{other}'"),
        ));
    }
    keyed.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, name) in keyed {
        let x = c.join(name);
        let f = x.join("common.json");
        if fs.stat(&f.real).is_err() {
            continue;
        }
        let bytes = match fs.read_small(&f.real, 64 << 20) {
            FileRead::Bytes(b) => b,
            _ => continue, // an IOError: skipped with a warning
        };
        let obj = match crate::py::json::load(&bytes) {
            Ok(v) => v,
            Err(e) if e.class == "JSONDecodeError" => continue,
            Err(e) => return Err(PyException::new(e.class, e.message)),
        };
        let PyValue::Dict(_) = obj else {
            return Err(PyException::new(
                "AttributeError",
                format!("'{}' object has no attribute 'get'", obj.type_name()),
            ));
        };
        // Python's `== 0`: 0, 0.0 and false are healthy; "0", null and a missing key are not
        if obj.get("ckpt_status").is_some_and(PyValue::equals_zero) {
            return Ok(x);
        }
    }
    Err(PyException::new(
        "RuntimeError",
        format!("No healthy checkpoint found in: {}", c.shown),
    ))
}

/// MindIO's preload check (§7.3) passes only for a folder holding some `*.ckpt` file or a
/// `rank_{R}` sub-folder — never for an `iteration_…` folder. (The `rank_{R}` case is per
/// rank in MindFormers; here any `rank_N` folder counts: a corner no fixture reaches.)
fn preload_finds_ckpt(fs: &dyn Fs, d: &At) -> bool {
    fs.read_dir(&d.real).is_ok_and(|es| {
        es.iter().any(|e| {
            let n = e.name.to_string_lossy();
            let is_dir = matches!(&e.lstat, Ok(s) if s.kind == FileKind::Dir);
            n.ends_with(".ckpt") || (is_dir && crate::layout::rank_dir_number(&n).is_some())
        })
    })
}
