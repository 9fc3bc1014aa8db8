//! MindFormers' file-name helpers (`tools/utils.py`), with Python `re` semantics: `\d` is any
//! Unicode decimal digit, `$` also matches before one trailing `\n`, searches are leftmost, and
//! numbers are unbounded. Every helper works on the basename of its argument, and errors carry
//! MindFormers' exact messages with the argument as it was passed.

use crate::py::int::PyInt;
use crate::py::text::basename;
use crate::py::PyException;
use regex::Regex;
use serde::Serialize;
use std::sync::OnceLock;

/// MindFormers' `load_ckpt_format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Fmt {
    Ckpt,
    Safetensors,
}

impl Fmt {
    pub fn ext(self) -> &'static str {
        match self {
            Fmt::Ckpt => "ckpt",
            Fmt::Safetensors => "safetensors",
        }
    }

    pub fn parse(s: &str) -> Option<Fmt> {
        match s {
            "ckpt" => Some(Fmt::Ckpt),
            "safetensors" => Some(Fmt::Safetensors),
            _ => None,
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

struct Patterns {
    check: Regex,
    epoch_step: Regex,
    times: Regex,
}

fn patterns(fmt: Fmt) -> &'static Patterns {
    static P: OnceLock<[Patterns; 2]> = OnceLock::new();
    let all = P.get_or_init(|| {
        [Fmt::Ckpt, Fmt::Safetensors].map(|f| {
            let e = f.ext();
            Patterns {
                // Python's `$` matches at the end or before a final "\n".
                check: Regex::new(&format!(r"\A[^/]+-\d+_\d+\.{e}\n?\z")).expect("static regex"),
                epoch_step: Regex::new(&format!(r"-(\d+)_(\d+)\.{e}")).expect("static regex"),
                times: Regex::new(&format!(r"_(\d+)-(\d+)_(\d+)\.{e}")).expect("static regex"),
            }
        })
    });
    &all[fmt.idx()]
}

fn rank_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"_rank_(\d+)").expect("static regex"))
}

fn int(s: &str) -> PyInt {
    PyInt::parse_digits(s)
        .map(|(v, _)| v)
        .unwrap_or_else(|| PyInt::from_i64(0))
}

/// True when a name contains a decimal digit outside ASCII (Python accepts it; we warn).
pub fn has_non_ascii_digit(name: &str) -> bool {
    name.chars()
        .any(|c| !c.is_ascii() && crate::py::int::is_unicode_digit(c))
}

/// `check_ckpt_file_name`.
pub fn check_ckpt_file_name(f: &str, fmt: Fmt) -> bool {
    patterns(fmt).check.is_match(basename(f))
}

fn m9(f: &str, fmt: Fmt) -> PyException {
    let e = fmt.ext();
    PyException::new(
        "ValueError",
        format!(
            "Can't match epoch and step from checkpoint file: {f}. Please ensure the format of the checkpoint file name is {{prefix}}-{{epoch}}_{{step}}.{e}, for example, llama_7b_rank_0-3_2.{e}."
        ),
    )
}

/// `get_epoch_and_step_from_ckpt_name`.
pub fn epoch_and_step(f: &str, fmt: Fmt) -> Result<(PyInt, PyInt), PyException> {
    match patterns(fmt).epoch_step.captures(basename(f)) {
        Some(c) => Ok((int(&c[1]), int(&c[2]))),
        None => Err(m9(f, fmt)),
    }
}

/// `get_times_epoch_and_step_from_ckpt_name`, including its crash when only the short pattern
/// matches (it reads the groups of the failed match).
pub fn times_epoch_and_step(f: &str, fmt: Fmt) -> Result<(PyInt, PyInt, PyInt), PyException> {
    let name = basename(f);
    let p = patterns(fmt);
    if let Some(c) = p.times.captures(name) {
        return Ok((int(&c[1]), int(&c[2]), int(&c[3])));
    }
    if p.epoch_step.is_match(name) {
        return Err(PyException::new(
            "AttributeError",
            "'NoneType' object has no attribute 'group'",
        ));
    }
    Err(m9(f, fmt))
}

/// `get_rank_id_from_ckpt_name`.
pub fn rank_id(f: &str) -> Result<PyInt, PyException> {
    match rank_re().captures(basename(f)) {
        Some(c) => Ok(int(&c[1])),
        None => Err(PyException::new(
            "ValueError",
            format!(
                "Can't match rank id from checkpoint file: {f}. Please ensure the name of the checkpoint file is xxx_rank_x-{{epoch}}_{{step}}, for example, llama_7b_rank_0-3_2."
            ),
        )),
    }
}

/// `replace_rank_id_in_ckpt_name`: every `_rank_<old>` becomes `_rank_<new>` (plain substring
/// replace on the basename, so `_rank_1` inside `_rank_12` changes too).
pub fn replace_rank_id(f: &str, dst: &PyInt) -> Result<String, PyException> {
    let name = basename(f);
    let ori = rank_id(name)?;
    Ok(name.replace(&format!("_rank_{ori}"), &format!("_rank_{dst}")))
}

/// The parts of a MindFormers-made checkpoint name `<prefix>_rank_<R>[_<k>]-<E>_<S>.<fmt>`,
/// for display and grouping (the resolver itself uses the helpers above, not this).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CkptName {
    /// Everything before `_rank_`.
    pub stem: String,
    pub rank: u64,
    /// The restart suffix `k` (0 for a first run).
    pub restart: u64,
    pub epoch: u64,
    pub step: u64,
    pub fmt: Fmt,
}

impl CkptName {
    /// The per-rank prefix with restart suffix, e.g. `llama_rank_3_1`.
    pub fn prefix(&self) -> String {
        if self.restart == 0 {
            format!("{}_rank_{}", self.stem, self.rank)
        } else {
            format!("{}_rank_{}_{}", self.stem, self.rank, self.restart)
        }
    }

    pub fn file_name(&self) -> String {
        format!(
            "{}-{}_{}.{}",
            self.prefix(),
            self.epoch,
            self.step,
            self.fmt.ext()
        )
    }
}

/// Parse a canonical checkpoint name (ASCII digits, values that fit `u64`); `None` for anything
/// else, which the grid then shows as "other".
pub fn parse_ckpt_name(name: &str) -> Option<CkptName> {
    static R: OnceLock<Regex> = OnceLock::new();
    let re = R.get_or_init(|| {
        Regex::new(r"\A(.*?)_rank_([0-9]+)(?:_([0-9]+))?-([0-9]+)_([0-9]+)\.(ckpt|safetensors)\z")
            .expect("static regex")
    });
    let c = re.captures(name)?;
    Some(CkptName {
        stem: c[1].to_owned(),
        rank: c[2].parse().ok()?,
        restart: c.get(3).map_or(Some(0), |m| m.as_str().parse().ok())?,
        epoch: c[4].parse().ok()?,
        step: c[5].parse().ok()?,
        fmt: Fmt::parse(&c[6])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_semantics_follow_python() {
        assert!(check_ckpt_file_name("llama_rank_0-20_2.ckpt", Fmt::Ckpt));
        assert!(check_ckpt_file_name(
            "sub/llama_rank_1-20_2.ckpt",
            Fmt::Ckpt
        ));
        assert!(check_ckpt_file_name("x-1_1.ckpt\n", Fmt::Ckpt));
        assert!(!check_ckpt_file_name("x-1_1.ckpt.bak", Fmt::Ckpt));
        assert!(!check_ckpt_file_name("-1_1.ckpt", Fmt::Ckpt));
        assert!(!check_ckpt_file_name("x-20_2_breakpoint.ckpt", Fmt::Ckpt));
        let (e, s) = epoch_and_step("llama_rank_1-020_2.ckpt", Fmt::Ckpt).unwrap();
        assert_eq!((e.to_string(), s.to_string()), ("20".into(), "2".into()));
        assert!(epoch_and_step("x-20_2_breakpoint.ckpt", Fmt::Ckpt).is_err());
        // not anchored at the end
        assert!(epoch_and_step("x-1_2.ckptfoo", Fmt::Ckpt).is_ok());
    }

    #[test]
    fn rank_replacement_is_a_plain_substring_replace() {
        let one = PyInt::from_i64(1);
        assert_eq!(
            replace_rank_id("a_rank_0-1_1.ckpt", &one).unwrap(),
            "a_rank_1-1_1.ckpt"
        );
        assert_eq!(
            replace_rank_id("a_rank_01-20_2.ckpt", &PyInt::from_i64(3)).unwrap(),
            "a_rank_01-20_2.ckpt"
        );
        assert_eq!(
            replace_rank_id("llama-15_2.ckpt", &one).unwrap_err().message,
            "Can't match rank id from checkpoint file: llama-15_2.ckpt. Please ensure the name of the checkpoint file is xxx_rank_x-{epoch}_{step}, for example, llama_7b_rank_0-3_2."
        );
    }

    #[test]
    fn times_crash_is_reproduced() {
        let e = times_epoch_and_step("llama_rank_0bis-20_2.ckpt", Fmt::Ckpt).unwrap_err();
        assert_eq!(e.class, "AttributeError");
        let (t, _, _) = times_epoch_and_step("llama_rank_0_2-20_2.ckpt", Fmt::Ckpt).unwrap();
        assert_eq!(t.to_string(), "2");
    }

    #[test]
    fn canonical_names_parse() {
        let n = parse_ckpt_name("llama3_1_8b_rank_3_1-25_2.ckpt").unwrap();
        assert_eq!(
            (n.stem.as_str(), n.rank, n.restart, n.epoch, n.step),
            ("llama3_1_8b", 3, 1, 25, 2)
        );
        assert_eq!(n.file_name(), "llama3_1_8b_rank_3_1-25_2.ckpt");
        assert!(parse_ckpt_name("x_rank_0-20_2_breakpoint.ckpt").is_none());
    }
}
