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
    let name = basename(f);
    if name.is_ascii() {
        return ascii_check(name, fmt);
    }
    patterns(fmt).check.is_match(name)
}

/// Digits ending at byte `end` (exclusive): the start of the maximal run.
fn digits_back(b: &[u8], end: usize) -> usize {
    let mut i = end;
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    i
}

/// Digits starting at byte `start`: the end of the maximal run.
fn digits_fwd(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// `^[^/]+-\d+_\d+\.fmt$` for an ASCII basename (equivalent to the regex: the pattern is
/// anchored at the end, so the greedy digit runs are the only possible split).
fn ascii_check(name: &str, fmt: Fmt) -> bool {
    let name = name.strip_suffix('\n').unwrap_or(name);
    let Some(x) = name
        .strip_suffix(fmt.ext())
        .and_then(|x| x.strip_suffix('.'))
    else {
        return false;
    };
    let b = x.as_bytes();
    let d2 = digits_back(b, b.len());
    if d2 == b.len() || d2 == 0 || b[d2 - 1] != b'_' {
        return false;
    }
    let d1 = digits_back(b, d2 - 1);
    d1 < d2 - 1 && d1 >= 2 && b[d1 - 1] == b'-'
}

/// Leftmost `-(\d+)_(\d+)\.fmt` in an ASCII name: the byte ranges of the two numbers.
fn ascii_epoch_step(name: &str, fmt: Fmt) -> Option<(&str, &str)> {
    let b = name.as_bytes();
    let ext = fmt.ext().as_bytes();
    for (i, _) in name.match_indices('-') {
        let e_end = digits_fwd(b, i + 1);
        if e_end == i + 1 || b.get(e_end) != Some(&b'_') {
            continue;
        }
        let s_end = digits_fwd(b, e_end + 1);
        if s_end == e_end + 1 || b.get(s_end) != Some(&b'.') || !b[s_end + 1..].starts_with(ext) {
            continue;
        }
        return Some((&name[i + 1..e_end], &name[e_end + 1..s_end]));
    }
    None
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
    let name = basename(f);
    if name.is_ascii() {
        return ascii_epoch_step(name, fmt)
            .map(|(e, s)| (int(e), int(s)))
            .ok_or_else(|| m9(f, fmt));
    }
    match patterns(fmt).epoch_step.captures(name) {
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
    let name = basename(f);
    let found = if name.is_ascii() {
        let b = name.as_bytes();
        (0..b.len().saturating_sub(5))
            .filter(|&i| b[i] == b'_' && &b[i..i + 6] == b"_rank_")
            .find_map(|i| {
                let end = digits_fwd(b, i + 6);
                (end > i + 6).then(|| int(&name[i + 6..end]))
            })
    } else {
        rank_re().captures(name).map(|c| int(&c[1]))
    };
    match found {
        Some(v) => Ok(v),
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
/// else, which the grid then shows as "other". The stem is everything before the first
/// `_rank_` after which the rest parses.
pub fn parse_ckpt_name(name: &str) -> Option<CkptName> {
    let (body, fmt) = if let Some(b) = name.strip_suffix(".ckpt") {
        (b, Fmt::Ckpt)
    } else {
        (name.strip_suffix(".safetensors")?, Fmt::Safetensors)
    };
    body.match_indices("_rank_").find_map(|(i, _)| {
        let rest = &body[i + 6..];
        let (ids, es) = rest.split_once('-')?;
        let (rank, restart) = match ids.split_once('_') {
            Some((r, k)) => (num(r)?, num(k)?),
            None => (num(ids)?, 0),
        };
        let (e, st) = es.split_once('_')?;
        Some(CkptName {
            stem: body[..i].to_owned(),
            rank,
            restart,
            epoch: num(e)?,
            step: num(st)?,
            fmt,
        })
    })
}

/// ASCII digits only, fitting `u64`.
fn num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
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

    /// The ASCII fast paths agree with the regexes on tricky names.
    #[test]
    fn fast_paths_agree_with_the_regexes() {
        let names = [
            "a-1_2.ckpt",
            "-1_2.ckpt",
            "a--1_2.ckpt",
            "a-1-2_3.ckpt",
            "a-1_2.ckpt\n",
            "a-1_2.ckpt\n\n",
            "a-_2.ckpt",
            "a-1_.ckpt",
            "a-1_2.ckptx",
            "a-1_2.ckp",
            "x-1_2.ckpt-3_4.ckpt",
            "a-1_2_3.ckpt",
            "a_rank_1-2_3.ckpt",
            "a_rank_-1_rank_7-1_1.ckpt",
            "_rank_",
            "a_rank_12x",
            "a-01_02.safetensors",
        ];
        for n in names {
            for fmt in [Fmt::Ckpt, Fmt::Safetensors] {
                let p = patterns(fmt);
                assert_eq!(ascii_check(n, fmt), p.check.is_match(n), "check {n:?}");
                let re = p
                    .epoch_step
                    .captures(n)
                    .map(|c| (c[1].to_owned(), c[2].to_owned()));
                let fast = ascii_epoch_step(n, fmt).map(|(e, s)| (e.to_owned(), s.to_owned()));
                assert_eq!(fast, re, "epoch/step {n:?}");
            }
            let re = rank_re().captures(n).map(|c| int(&c[1]));
            assert_eq!(rank_id(n).ok(), re, "rank {n:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Random names over the characters that matter: fast paths ≡ regexes.
        #[test]
        fn fast_paths_match_regexes_on_random_names(n in "[a_rnk0-9\\-.cptsfe\n]{0,24}") {
            for fmt in [Fmt::Ckpt, Fmt::Safetensors] {
                let p = patterns(fmt);
                proptest::prop_assert_eq!(ascii_check(&n, fmt), p.check.is_match(&n));
                let re = p.epoch_step.captures(&n).map(|c| (c[1].to_owned(), c[2].to_owned()));
                proptest::prop_assert_eq!(ascii_epoch_step(&n, fmt).map(|(e, s)| (e.to_owned(), s.to_owned())), re);
            }
            proptest::prop_assert_eq!(rank_id(&n).ok(), rank_re().captures(&n).map(|c| int(&c[1])));
        }
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
        assert!(parse_ckpt_name("x_rank_0_1_2-20_2.ckpt").is_none());
        assert_eq!(
            parse_ckpt_name("a_rank_x_rank_2-1_1.ckpt").unwrap().stem,
            "a_rank_x"
        );
    }
}
