//! One rank's resume in the new format, stage by stage as MindFormers runs it
//! (`mindformers-new-format.md` §6, §7.2–§7.4): the folder (`resolve`), the context from
//! `common.json` (`context`), then the MindIO preload trap of `load_ckpt_format: ckpt`. Every
//! rank gets the same answer up to here (§9). Health mode (§7.1) and the weights stage (§7.5)
//! are not built yet.

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
}

/// Where a rank resumes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The folder loaded (`None`: nothing is loaded).
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
    let d = get_checkpoint_path(fs, load_path, !run.no_load_optim).map_err(at("resolve"))?;
    let dir = d.as_ref().map_or("", |d| d.shown.as_str());
    let common = match (&d, run.no_load_optim) {
        (Some(d), false) => {
            let f = d.join("common.json");
            match fs.stat(&f.real) {
                Err(_) => None,
                Ok(_) => match fs.read_small(&f.real, 64 << 20) {
                    FileRead::Bytes(b) => Some(b),
                    FileRead::Error(e) => return Err(at("context")(e.to_py(&f.shown))),
                    other => {
                        return Err(at("context")(PyException::new(
                            "ckptscope",
                            format!("{}: {other:?}: not read", f.shown),
                        )))
                    }
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
        load_path: d,
        context: ctx,
    })
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
