//! The tracker `<root>/latest_checkpointed_iteration.txt` as MindFormers reads it
//! (`mindformers-new-format.md` §6.2, §0.1): UTF-8 text, universal newlines, `str.strip()`,
//! then Python's `int()` — signs, leading zeros, underscores between digits and any Unicode
//! decimal digits are accepted; `10.0`, `1e1`, `10 10` and a byte-order mark are not. The
//! folder it names is `iteration_{N:08d}` (the sign inside the width; never truncated). The
//! tracker is trusted blindly: what it names is what MindFormers loads.

use crate::py::int::PyInt;
use crate::py::text::{decode_utf8, is_py_space, py_strip, universal_newlines};
use crate::py::PyException;

/// The tracker's file name.
pub const TRACKER: &str = "latest_checkpointed_iteration.txt";

/// CPython's limit on the digits `int()` converts: longer numbers raise `ValueError`, which
/// MindFormers reports as an invalid iteration.
use crate::py::json::INT_MAX_STR_DIGITS;

/// Python's `int(s)` for a string: `None` where Python raises `ValueError`.
pub fn py_int(s: &str) -> Option<PyInt> {
    let s = s.trim_matches(is_py_space);
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    // digits, with single underscores between them (not first, last or doubled)
    let mut digits = String::with_capacity(body.len());
    let mut after_digit = false;
    for c in body.chars() {
        match c {
            '_' if after_digit => after_digit = false,
            c if c.is_ascii_digit() || crate::py::int::is_unicode_digit(c) => {
                digits.push(c);
                after_digit = true;
            }
            _ => return None,
        }
    }
    if !after_digit || digits.chars().count() > INT_MAX_STR_DIGITS {
        return None;
    }
    let text = if neg { format!("-{digits}") } else { digits };
    PyInt::parse_digits(&text).map(|(v, _)| v)
}

/// `f"iteration_{N:08d}"`: zero-padded to 8 characters with the sign inside the width
/// (`-1` → `iteration_-0000001`), never truncated (`123456789` → `iteration_123456789`).
pub fn iteration_dir(n: &PyInt) -> String {
    let text = n.to_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", text.as_str()),
    };
    let pad = 8usize.saturating_sub(sign.len() + digits.len());
    format!("iteration_{sign}{}{digits}", "0".repeat(pad))
}

/// The iteration the tracker at path `tracker` names, from its bytes, or the exception
/// MindFormers raises reading it (the `resolve` stage): `UnicodeDecodeError` for bytes that
/// are not UTF-8, `ValueError: Invalid iteration num in {tracker}` for text `int()` refuses.
pub fn parse(tracker: &str, bytes: &[u8]) -> Result<PyInt, PyException> {
    let text = decode_utf8(bytes).map_err(|m| PyException::new("UnicodeDecodeError", m))?;
    py_int(py_strip(&universal_newlines(&text))).ok_or_else(|| {
        PyException::new("ValueError", format!("Invalid iteration num in {tracker}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int_accepts_and_refuses_what_python_does() {
        let n = |s: &str| py_int(s).map(|v| v.to_string());
        for (s, want) in [
            ("10", Some("10")),
            ("+10", Some("10")),
            ("-1", Some("-1")),
            ("0010", Some("10")),
            ("00", Some("0")),
            ("1_0", Some("10")),
            ("1_000_000", Some("1000000")),
            ("\u{ff11}\u{ff10}", Some("10")),
            ("\u{0661}\u{0660}", Some("10")), // Arabic-Indic digits
            (" 10 ", Some("10")),
            ("", None),
            ("+", None),
            ("-", None),
            ("_10", None),
            ("10_", None),
            ("1__0", None),
            ("10.0", None),
            ("1e1", None),
            ("0x0a", None),
            ("10 10", None),
            ("\u{feff}10", None),
            ("+-1", None),
            ("²", None), // a superscript is a digit, not a decimal digit
        ] {
            assert_eq!(n(s), want.map(str::to_owned), "{s:?}");
        }
        let long = "1".repeat(INT_MAX_STR_DIGITS);
        assert_eq!(n(&long).map(|v| v.len()), Some(INT_MAX_STR_DIGITS));
        assert_eq!(n(&format!("{long}1")), None, "over CPython's digit limit");
    }

    #[test]
    fn folder_names_pad_with_the_sign_inside_and_never_truncate() {
        let d = |s: &str| iteration_dir(&py_int(s).unwrap());
        assert_eq!(d("10"), "iteration_00000010");
        assert_eq!(d("-1"), "iteration_-0000001");
        assert_eq!(d("0"), "iteration_00000000");
        assert_eq!(d("12345678"), "iteration_12345678");
        assert_eq!(d("123456789"), "iteration_123456789");
        assert_eq!(d("-12345678"), "iteration_-12345678");
        assert_eq!(
            d("123456789012345678901234567890123456789012"),
            "iteration_123456789012345678901234567890123456789012"
        );
    }
}
