//! `get_checkpoint_path(p, require_optimizer)` (`mindformers-new-format.md` §6.1): the folder
//! MindFormers resumes from — the folder itself, or the one the tracker names, verified — or
//! the exception it raises. No scan for the newest folder and no fallback, ever. Reads go
//! through the [`Fs`] seam; messages quote `p` as it was given (`At::shown`).

use super::tracker::{iteration_dir, parse, TRACKER};
use super::valid::{verify_ckpt_valid, Folder};
use crate::fsys::Fs;
use crate::model::{FileKind, FileRead};
use crate::py::json::{self, PyValue};
use crate::py::PyException;
use std::path::PathBuf;

/// A path as MindFormers prints it and where ckptscope reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct At {
    pub shown: String,
    pub real: PathBuf,
}

impl At {
    /// `os.path.join` on the shown path (a trailing `/` is kept as one separator).
    pub fn join(&self, name: &str) -> At {
        At {
            shown: crate::py::text::join(&self.shown, name),
            real: self.real.join(name),
        }
    }
}

/// The most ckptscope reads of a control file (tracker, index, `metadata.json`).
const CONTROL_MAX: u64 = 64 << 20;

fn kind(fs: &dyn Fs, at: &At) -> Option<FileKind> {
    fs.stat(&at.real).ok().map(|s| s.kind)
}

fn value_error(m: String) -> PyException {
    PyException::new("ValueError", m)
}

/// A control file's bytes, or the exception reading it raises.
fn read(fs: &dyn Fs, at: &At) -> Result<Vec<u8>, PyException> {
    match fs.read_small(&at.real, CONTROL_MAX) {
        FileRead::Bytes(b) => Ok(b),
        FileRead::Error(e) => Err(e.to_py(&at.shown)),
        other => Err(super::valid::unread(&at.shown, &other)),
    }
}

/// A Hugging Face folder (`model.safetensors.index.json`): every file its weight map names
/// must exist; no tracker, no verification.
fn hf_folder(fs: &dyn Fs, p: &At, index: &At) -> Result<(), PyException> {
    let obj = json::load(&read(fs, index)?).map_err(|e| PyException::new(e.class, e.message))?;
    let map = match obj.get("weight_map") {
        Some(m) => m.clone(),
        None => obj,
    };
    let PyValue::Dict(items) = map else {
        return Err(value_error(format!(
            "Format of '{}' is illegal!",
            index.shown
        )));
    };
    let mut missing: Vec<&str> = items
        .iter()
        .filter_map(|(_, v)| match v {
            PyValue::Str(f) => Some(f.as_str()),
            _ => None,
        })
        .filter(|f| kind(fs, &p.join(f)) != Some(FileKind::File))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing.iter().map(|f| crate::py::py_repr(f)).collect();
    Err(value_error(format!(
        "The files '[{}]' do not exist in `{}`.",
        list.join(", "),
        p.shown
    )))
}

/// The folder `p` resolves to (`None`: `p` is empty, nothing is loaded).
pub fn get_checkpoint_path(
    fs: &dyn Fs,
    p: &At,
    require_optimizer: bool,
) -> Result<Option<At>, PyException> {
    if p.shown.is_empty() {
        return Ok(None);
    }
    match kind(fs, p) {
        None => {
            return Err(value_error(format!(
                "Checkpoint directory does not exist: {}",
                p.shown
            )))
        }
        Some(FileKind::Dir) => {}
        Some(_) => {
            return Err(value_error(format!(
                "Checkpoint path is not a directory: {}",
                p.shown
            )))
        }
    }
    let index = p.join("model.safetensors.index.json");
    if kind(fs, &index).is_some() {
        hf_folder(fs, p, &index)?;
        return Ok(Some(p.clone()));
    }
    let t = p.join(TRACKER);
    let mut d = p.clone();
    if let Some(k) = kind(fs, &t) {
        if k != FileKind::File {
            return Err(PyException::new(
                "FileNotFoundError",
                format!("No tracker file found in load directory: '{}'.", t.shown),
            ));
        }
        let n = parse(&t.shown, &read(fs, &t)?)?;
        d = p.join(&iteration_dir(&n));
        if kind(fs, &d) != Some(FileKind::Dir) {
            return Err(PyException::new("FileNotFoundError", format!("Can not find the latest iteration weight path: '{}'. Or it does not a directory.", d.shown)));
        }
    }
    let node = crate::scan::scan_dir(fs, &d.real);
    let meta = d.join("metadata.json");
    let metadata = fs.read_small(&meta.real, CONTROL_MAX);
    let folder = Folder {
        path: &d.shown,
        entries: node.listing.entries(),
        metadata: Some(&metadata),
    };
    verify_ckpt_valid(&folder, require_optimizer)?;
    Ok(Some(d))
}
