//! MindFormers' NO_META branch (`check_last_timestamp_checkpoints`, spec §5.9), including the bug
//! in its second loop, which forgets the format and always looks for `.ckpt` files.

use super::view::View;
use crate::layout::mindformers::names::{check_ckpt_file_name, replace_rank_id, Fmt};
use crate::py::int::PyInt;
use crate::py::text::join;
use crate::py::PyException;

/// `get_last_checkpoint(join(D, dir), fmt)`: the newest entry ending in `.fmt` by `getmtime`
/// (float seconds), the last listed winning ties. Returns the joined path.
pub fn last_checkpoint(v: &View, dir: &str, fmt: Fmt) -> Result<Option<String>, PyException> {
    let path = v.dir_path(dir);
    if !v.isdir(dir) {
        return Err(m14(&path, fmt));
    }
    let suffix = format!(".{}", fmt.ext());
    let mut best: Option<(f64, crate::model::Name)> = None;
    for e in v.listdir(dir)? {
        if !e.name.ends_with(&suffix) {
            continue;
        }
        let t = v.getmtime(dir, &e)?;
        // sorted() is stable and ascending; the last of the equal maxima is the one returned
        if best.as_ref().is_none_or(|(b, _)| t >= *b) {
            best = Some((t, e.name));
        }
    }
    Ok(best.map(|(_, name)| join(&path, &name)))
}

/// M14: `get_last_checkpoint` on something that is not a directory.
pub fn m14(path: &str, fmt: Fmt) -> PyException {
    PyException::new(
        "NotADirectoryError",
        format!(
            "{path} is not a real directory,When distributed loads are sliced weights,load_checkpoint should be a checkpoint directory containing the directory of rank_{{0-*}},The directory structure is as follows: **checkpoint_root_dir/rank_{{0-*}}/**.{}",
            fmt.ext()
        ),
    )
}

/// `check_last_timestamp_checkpoints(D, N, fmt)`.
pub fn check_last_timestamp(
    v: &View,
    n: usize,
    fmt: Fmt,
    log: &mut Vec<String>,
) -> Result<(), PyException> {
    let zero = PyInt::from_i64(0);
    let mut reference: Option<(String, String)> = None;
    for r in 0..n {
        let dir = format!("rank_{r}");
        let Some(last) = last_checkpoint(v, &dir, fmt)? else {
            return Err(PyException::new(
                "ValueError",
                format!(
                    "Checkpoint not found under {} with config.load_ckpt_format:{}.",
                    v.dir_path(&dir),
                    fmt.ext()
                ),
            ));
        };
        if check_ckpt_file_name(&last, fmt) {
            let cmp = replace_rank_id(&last, &zero)?;
            reference = Some((cmp, crate::py::text::basename(&last).to_owned()));
            break;
        }
    }
    let Some((cmp, cmp_orig)) = reference else {
        return Ok(());
    };
    let mut bad = false;
    for r in 0..n {
        let dir = format!("rank_{r}");
        // The bug: no format argument, so `.ckpt` files are compared even for safetensors.
        let Some(last) = last_checkpoint(v, &dir, Fmt::Ckpt)? else {
            return Err(PyException::new(
                "TypeError",
                "expected str, bytes or os.PathLike object, not NoneType",
            ));
        };
        if !check_ckpt_file_name(&last, fmt) {
            log.push(format!(
                "Find checkpoint not follow the {{prefix}}-{{epoch}}_{{step}}.{} in rank_{r} folder: {last}.",
                fmt.ext()
            ));
            bad = true;
            continue;
        }
        let cur = replace_rank_id(&last, &zero)?;
        if cur != cmp {
            return Err(m15(&cmp_orig, crate::py::text::basename(&last), fmt));
        }
    }
    if bad {
        return Err(PyException::new(
            "ValueError",
            format!(
                "Some checkpoints follow the {{prefix}}-{{epoch}}_{{step}}.{} naming convention, while others do not.",
                fmt.ext()
            ),
        ));
    }
    Ok(())
}

fn m15(a: &str, b: &str, fmt: Fmt) -> PyException {
    let f = fmt.ext();
    PyException::new(
        "ValueError",
        format!(
            "Check name of the checkpoint file with the last timestamp Failed.\n1. Find 2 different checkpoints name: {a} and {b}.\n2. Checkpoint file name should follow rule: {{prefix}}-{{epoch}}_{{step}}.{f}, and not corrupted across all rank folders.\n 3. Rename `resume_training` checkpoint such as llama_7b_rank_0-3_2.{f} may solve the problem."
        ),
    )
}
