//! `verify_ckpt_valid(d, require_optimizer)` (`mindformers-new-format.md` §6.3): what
//! MindFormers checks of an iteration folder before it resumes from it — only that files
//! exist: with `metadata.json`, every file it lists (optimizer files only for a full resume);
//! without it, any `*.safetensors` at all. A truncated shard passes here and fails later.
//! Pure: it reads the folder's listing and `metadata.json` as the model holds them.

use crate::model::FileRead;
use crate::py::int::is_unicode_digit;
use crate::py::json::{self, PyValue};
use crate::py::PyException;

/// `is_optimizer_ckpt_file(name)`: the base name fully matches
/// `(?:.+-)?opt-\d+-\d+\.safetensors` (`\d` is Unicode).
pub fn is_optimizer_file(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    let Some(stem) = base.strip_suffix(".safetensors") else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(is_unicode_digit);
    let tail_ok = |t: &str| {
        t.split_once('-')
            .is_some_and(|(a, b)| digits(a) && digits(b))
    };
    stem.match_indices("opt-").any(|(i, _)| {
        let prefix_ok = i == 0 || (i >= 2 && stem[..i].ends_with('-'));
        prefix_ok && tail_ok(&stem[i + 4..])
    })
}

/// One iteration folder as `verify_ckpt_valid` sees it.
pub struct Folder<'a> {
    /// The folder's path as MindFormers prints it (`<root>/iteration_…`).
    pub path: &'a str,
    pub entries: &'a crate::model::Entries,
    /// `metadata.json`'s content, when the listing has one that `stat` follows to a file.
    pub metadata: Option<&'a FileRead>,
}

/// The "exception" for a control file ckptscope did not read (class `ckptscope`, never
/// MindFormers'): the answer is then unknown, and says why.
pub fn unread(path: &str, r: &FileRead) -> PyException {
    let why = match r {
        FileRead::TooLarge(n) => format!(
            "{path} is {} bytes: ckptscope reads a control file of at most {} MiB, and holds at most {} MiB of them at once",
            crate::verify::verdict::thousands(*n),
            crate::scan::CONTROL_LIMIT >> 20,
            crate::scan::CONTROL_BUDGET >> 20
        ),
        FileRead::NotRegular(k) => format!("{path} is {k}: ckptscope never opens one"),
        FileRead::Error(e) => format!("{path}: {}", e.text),
        FileRead::Bytes(_) => format!("{path}: not read"),
    };
    PyException::new(
        super::analysis::UNREAD,
        format!("{why}; what MindFormers does with it is unknown"),
    )
}

fn err(class: &str, message: String) -> PyException {
    PyException::new(class, message)
}

/// `x[key]` for a JSON value `x` and a `str` key: the value, or Python's exception.
fn index<'v>(x: &'v PyValue, key: &str) -> Result<&'v PyValue, PyException> {
    match x {
        PyValue::Dict(_) => x
            .get(key)
            .ok_or_else(|| err("KeyError", format!("'{key}'"))),
        PyValue::List(_) => Err(err(
            "TypeError",
            "list indices must be integers or slices, not str".into(),
        )),
        PyValue::Str(_) => Err(err(
            "TypeError",
            "string indices must be integers, not 'str'".into(),
        )),
        other => Err(err(
            "TypeError",
            format!("'{}' object is not subscriptable", other.type_name()),
        )),
    }
}

/// `for e in x`: the items Python iterates.
fn iterate(x: &PyValue) -> Result<Vec<PyValue>, PyException> {
    match x {
        PyValue::List(l) => Ok(l.clone()),
        PyValue::Dict(d) => Ok(d.iter().map(|(k, _)| PyValue::Str(k.clone())).collect()),
        PyValue::Str(s) => Ok(s.chars().map(|c| PyValue::Str(c.to_string())).collect()),
        other => Err(err(
            "TypeError",
            format!("'{}' object is not iterable", other.type_name()),
        )),
    }
}

/// Whether `name` exists in the folder as `os.path.exists` sees it (symlinks followed).
fn exists(f: &Folder, name: &str) -> bool {
    f.entries.iter().any(|e| *e.name == *name && e.exists())
}

/// `verify_ckpt_valid(f.path, require_optimizer)`.
pub fn verify_ckpt_valid(f: &Folder, require_optimizer: bool) -> Result<(), PyException> {
    let d = f.path;
    let m = format!("{d}/metadata.json");
    let Some(read) = f.metadata.filter(|_| exists(f, "metadata.json")) else {
        // any *.safetensors name the folder lists (glob: no dot-files; folders count too)
        let any = f
            .entries
            .iter()
            .any(|e| e.name.ends_with(".safetensors") && !e.name.starts_with('.'));
        return match any {
            true => Ok(()),
            false => Err(err("FileNotFoundError", format!("Checkpoint directory validation failed: No Safetensors files found in '{d}'. Ensure the directory contains valid checkpoint files."))),
        };
    };
    let bytes = match read {
        FileRead::Bytes(b) => b,
        FileRead::Error(e) => return Err(e.to_py(&m)),
        FileRead::NotRegular(crate::model::FileKind::Dir) => {
            return Err(err(
                "IsADirectoryError",
                format!("[Errno 21] Is a directory: '{m}'"),
            ))
        }
        other => return Err(unread(&m, other)),
    };
    let obj = json::load(bytes).map_err(|e| match e.class {
        "JSONDecodeError" => err("RuntimeError", format!("Checkpoint metadata validation failed: 'metadata.json' in '{d}' has invalid JSON format. Error details: {}", e.message)),
        class => err(class, e.message),
    })?;
    let sd = index(&obj, "storage_data")?;
    let PyValue::Dict(items) = sd else {
        return Err(err(
            "AttributeError",
            format!("'{}' object has no attribute 'items'", sd.type_name()),
        ));
    };
    for (key, entries) in items {
        for e in iterate(entries)? {
            let file = index(&e, "file_name")?;
            let PyValue::Str(name) = file else {
                return Err(err(
                    "TypeError",
                    format!(
                        "expected string or bytes-like object, got '{}'",
                        file.type_name()
                    ),
                ));
            };
            if !require_optimizer && is_optimizer_file(name) {
                continue;
            }
            if !exists(f, name) {
                return Err(err("FileNotFoundError", format!("Checkpoint file validation failed: Safetensors file '{name}' (referenced in metadata for parameter '{key}') is missing from checkpoint directory '{d}'. Full expected path: '{d}/{name}'.")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_optimizer_file;

    #[test]
    fn optimizer_files_by_the_pattern() {
        for (n, want) in [
            ("llama-opt-0000001-0000002.safetensors", true),
            ("opt-0000001-0000002.safetensors", true),
            ("a-b-opt-1-2.safetensors", true),
            ("my-opt-7b-model-0000002-0000008.safetensors", false),
            ("llama-model-0000001-0000002.safetensors", false),
            ("xopt-1-2.safetensors", false),
            ("-opt-1-2.safetensors", false),
            ("llama-opt-１-2.safetensors", true),
            ("llama-opt-1-2.ckpt", false),
        ] {
            assert_eq!(is_optimizer_file(n), want, "{n}");
        }
    }
}
