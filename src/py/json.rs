//! A JSON reader that accepts and rejects exactly what CPython 3.11's `json.load` does, and
//! fails with the same messages.
//!
//! Why not serde_json: MindFormers' decisions hinge on Python's quirks, which no Rust JSON crate
//! copies. `NaN`/`Infinity` are accepted; `true` is an `int` for `isinstance`; `20.0` is a float;
//! integers are unbounded; duplicate keys keep the last value; a UTF-8 BOM is an error; the file
//! is read in text mode (universal newlines) before parsing; and when `health_ckpts.json` is
//! malformed, the exact `JSONDecodeError` text ("Expecting value: line 1 column 1 (char 0)")
//! becomes the error every rank raises. The parser is iterative-recursive with a depth cap, works
//! on untrusted bytes and never panics.

use super::int::PyInt;
use super::text::{decode_utf8, universal_newlines};

/// A decoded Python value.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(PyInt),
    Float(f64),
    /// Lone surrogates (legal in Python strings) are replaced by U+FFFD.
    Str(String),
    List(Vec<PyValue>),
    /// Insertion order of first occurrence; a duplicate key replaces the value in place.
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => !i.is_zero(),
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(l) => !l.is_empty(),
            PyValue::Dict(d) => !d.is_empty(),
        }
    }

    /// `type(x).__name__`.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Dict(_) => "dict",
        }
    }

    /// `d.get(key)` for a dict (None when absent).
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `isinstance(x, int)` (bools included), as a Python int.
    pub fn as_int(&self) -> Option<PyInt> {
        match self {
            PyValue::Bool(b) => Some(PyInt::from_i64(*b as i64)),
            PyValue::Int(i) => Some(i.clone()),
            _ => None,
        }
    }

    /// Python's `str(x)` for the scalar kinds that reach messages and file names.
    pub fn py_str(&self) -> String {
        match self {
            PyValue::None => "None".into(),
            PyValue::Bool(true) => "True".into(),
            PyValue::Bool(false) => "False".into(),
            PyValue::Int(i) => i.to_string(),
            PyValue::Float(f) => py_float_repr(*f),
            PyValue::Str(s) => s.clone(),
            PyValue::List(_) | PyValue::Dict(_) => format!("<{}>", self.type_name()),
        }
    }

    /// Python `x == 0` (used by the health filter).
    pub fn equals_zero(&self) -> bool {
        match self {
            PyValue::Bool(b) => !*b,
            PyValue::Int(i) => i.is_zero(),
            PyValue::Float(f) => *f == 0.0,
            _ => false,
        }
    }
}

/// Python's `repr(float)`, close enough for messages: integral values keep a `.0`.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else if f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// What `json.load(open(path, encoding="utf-8"))` raised, as `str(exception)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyJsonError {
    /// Python exception class: `JSONDecodeError`, `UnicodeDecodeError`, `RecursionError` or
    /// `ValueError` (an integer too long to convert).
    pub class: &'static str,
    pub message: String,
}

/// CPython's default `sys.get_int_max_str_digits()` (3.11+, the Python MindFormers 2.1.0 runs
/// on): longer integer literals are refused.
pub const INT_MAX_STR_DIGITS: usize = 4300;

/// Decode `bytes` as a UTF-8 text file and parse it like `json.load`.
pub fn load(bytes: &[u8]) -> Result<PyValue, PyJsonError> {
    let text = decode_utf8(bytes).map_err(|message| PyJsonError {
        class: "UnicodeDecodeError",
        message,
    })?;
    loads(&universal_newlines(&text))
}

/// `json.loads` on a `str`.
pub fn loads(text: &str) -> Result<PyValue, PyJsonError> {
    let chars: Vec<char> = text.chars().collect();
    let p = Parser { s: &chars };
    if chars.first() == Some(&'\u{feff}') {
        return Err(p.err("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0));
    }
    let start = p.ws(0);
    let (value, end) = p.value(start)?;
    let end = p.ws(end);
    if end != chars.len() {
        return Err(p.err("Extra data", end));
    }
    Ok(value)
}

/// Python's recursion limit (1000) minus the frames MindFormers' own call stack already uses;
/// deeper nesting raises `RecursionError` there too (the exact depth varies by a few frames).
const MAX_DEPTH: usize = 950;

/// A container being filled; objects remember the key whose value comes next, and where each
/// key already is (a repeated key replaces its value in place, as in a Python dict — found
/// by hash, so an object of 300,000 keys is not 300,000² comparisons).
enum Open {
    List(Vec<PyValue>),
    Dict(
        Vec<(String, PyValue)>,
        String,
        std::collections::HashMap<String, usize>,
    ),
}

struct Parser<'a> {
    s: &'a [char],
}

impl Parser<'_> {
    fn err(&self, msg: &str, pos: usize) -> PyJsonError {
        let before = &self.s[..pos.min(self.s.len())];
        let lineno = before.iter().filter(|&&c| c == '\n').count() + 1;
        let colno = match before.iter().rposition(|&c| c == '\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        PyJsonError {
            class: "JSONDecodeError",
            message: format!("{msg}: line {lineno} column {colno} (char {pos})"),
        }
    }

    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn ws(&self, mut i: usize) -> usize {
        while matches!(self.at(i), Some(' ' | '\t' | '\n' | '\r')) {
            i += 1;
        }
        i
    }

    fn starts(&self, i: usize, word: &str) -> bool {
        let n = word.chars().count();
        i + n <= self.s.len() && self.s[i..i + n].iter().copied().eq(word.chars())
    }

    /// One value starting at `i`, iteratively (an explicit stack instead of recursion, so that
    /// hostile nesting cannot overflow the thread's stack).
    fn value(&self, mut i: usize) -> Result<(PyValue, usize), PyJsonError> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            let (mut val, mut end) = match self.at(i) {
                Some(c @ ('{' | '[')) => {
                    if stack.len() >= MAX_DEPTH {
                        let what = if c == '{' { "object" } else { "array" };
                        return Err(PyJsonError {
                            class: "RecursionError",
                            message: format!(
                                "maximum recursion depth exceeded while decoding a JSON {what} from a unicode string"
                            ),
                        });
                    }
                    let j = self.ws(i + 1);
                    match (c, self.at(j)) {
                        ('{', Some('}')) => (PyValue::Dict(Vec::new()), j + 1),
                        ('[', Some(']')) => (PyValue::List(Vec::new()), j + 1),
                        ('{', _) => {
                            let (key, next) = self.key(j)?;
                            stack.push(Open::Dict(Vec::new(), key, Default::default()));
                            i = next;
                            continue;
                        }
                        _ => {
                            stack.push(Open::List(Vec::new()));
                            i = j;
                            continue;
                        }
                    }
                }
                _ => self.scalar(i)?,
            };
            // Attach the finished value to its parents, closing every container that ends here.
            loop {
                let j = self.ws(end);
                match stack.last_mut() {
                    None => return Ok((val, end)),
                    Some(Open::List(items)) => {
                        items.push(val);
                        match self.at(j) {
                            Some(']') => {}
                            Some(',') => {
                                i = self.ws(j + 1);
                                break;
                            }
                            _ => return Err(self.err("Expecting ',' delimiter", j)),
                        }
                    }
                    Some(Open::Dict(items, key, index)) => {
                        let key = std::mem::take(key);
                        match index.get(&key) {
                            Some(&at) => items[at].1 = val,
                            None => {
                                index.insert(key.clone(), items.len());
                                items.push((key, val));
                            }
                        }
                        match self.at(j) {
                            Some('}') => {}
                            Some(',') => {
                                let (next_key, next) = self.key(self.ws(j + 1))?;
                                if let Some(Open::Dict(_, k, _)) = stack.last_mut() {
                                    *k = next_key;
                                }
                                i = next;
                                break;
                            }
                            _ => return Err(self.err("Expecting ',' delimiter", j)),
                        }
                    }
                }
                val = match stack.pop() {
                    Some(Open::List(items)) => PyValue::List(items),
                    Some(Open::Dict(items, _, _)) => PyValue::Dict(items),
                    None => PyValue::None, // unreachable: the match above saw a container
                };
                end = j + 1;
            }
        }
    }

    /// `"key" :` starting at `i`; returns the key and the position of its value.
    fn key(&self, i: usize) -> Result<(String, usize), PyJsonError> {
        if self.at(i) != Some('"') {
            return Err(self.err("Expecting property name enclosed in double quotes", i));
        }
        let (key, next) = self.string(i + 1)?;
        let j = self.ws(next);
        if self.at(j) != Some(':') {
            return Err(self.err("Expecting ':' delimiter", j));
        }
        Ok((key, self.ws(j + 1)))
    }

    /// Strings, constants and numbers; anything else is "Expecting value".
    fn scalar(&self, i: usize) -> Result<(PyValue, usize), PyJsonError> {
        let Some(c) = self.at(i) else {
            return Err(self.err("Expecting value", i));
        };
        Ok(match c {
            '"' => {
                let (s, end) = self.string(i + 1)?;
                (PyValue::Str(s), end)
            }
            'n' if self.starts(i, "null") => (PyValue::None, i + 4),
            't' if self.starts(i, "true") => (PyValue::Bool(true), i + 4),
            'f' if self.starts(i, "false") => (PyValue::Bool(false), i + 5),
            'N' if self.starts(i, "NaN") => (PyValue::Float(f64::NAN), i + 3),
            'I' if self.starts(i, "Infinity") => (PyValue::Float(f64::INFINITY), i + 8),
            '-' if self.starts(i, "-Infinity") => (PyValue::Float(f64::NEG_INFINITY), i + 9),
            _ => self
                .number(i)?
                .ok_or_else(|| self.err("Expecting value", i))?,
        })
    }

    /// A JSON number; an integer of more than [`INT_MAX_STR_DIGITS`] digits is CPython's
    /// `ValueError` (3.11+ refuses to convert it, and `json.load` lets that through).
    fn number(&self, start: usize) -> Result<Option<(PyValue, usize)>, PyJsonError> {
        let Some((is_float, int_end, end)) = self.number_span(start) else {
            return Ok(None);
        };
        let text: String = self.s[start..end].iter().collect();
        if is_float {
            let f = text.parse::<f64>().unwrap_or(f64::NAN);
            return Ok(Some((PyValue::Float(f), end)));
        }
        let int_text: String = self.s[start..int_end].iter().collect();
        let digits = int_text.trim_start_matches('-').len();
        if digits > INT_MAX_STR_DIGITS {
            return Err(PyJsonError {
                class: "ValueError",
                message: format!("Exceeds the limit ({INT_MAX_STR_DIGITS} digits) for integer string conversion: value has {digits} digits; use sys.set_int_max_str_digits() to increase the limit"),
            });
        }
        Ok(PyInt::parse_digits(&int_text).map(|(v, _)| (PyValue::Int(v), end)))
    }

    /// Where a number ends: (is it a float, end of its integer part, end).
    fn number_span(&self, start: usize) -> Option<(bool, usize, usize)> {
        let mut i = start;
        if self.at(i) == Some('-') {
            i += 1;
        }
        match self.at(i) {
            Some('1'..='9') => {
                while matches!(self.at(i), Some('0'..='9')) {
                    i += 1;
                }
            }
            Some('0') => i += 1,
            _ => return None,
        }
        let int_end = i;
        let mut is_float = false;
        if self.at(i) == Some('.') && matches!(self.at(i + 1), Some('0'..='9')) {
            i += 2;
            while matches!(self.at(i), Some('0'..='9')) {
                i += 1;
            }
            is_float = true;
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let save = i;
            i += 1;
            if matches!(self.at(i), Some('+' | '-')) {
                i += 1;
            }
            let digits = i;
            while matches!(self.at(i), Some('0'..='9')) {
                i += 1;
            }
            if i == digits {
                i = save;
            } else {
                is_float = true;
            }
        }
        Some((is_float, int_end, i))
    }

    /// `scanstring` with strict=True; `i` is just past the opening quote.
    fn string(&self, mut i: usize) -> Result<(String, usize), PyJsonError> {
        let begin = i - 1;
        let mut out = String::new();
        loop {
            let mut c = None;
            while let Some(ch) = self.at(i) {
                if ch == '"' || ch == '\\' {
                    c = Some(ch);
                    break;
                }
                if (ch as u32) <= 0x1f {
                    return Err(self.err("Invalid control character at", i));
                }
                out.push(ch);
                i += 1;
            }
            match c {
                None => return Err(self.err("Unterminated string starting at", begin)),
                Some('"') => return Ok((out, i + 1)),
                Some(_) => {}
            }
            i += 1; // past the backslash
            let Some(esc) = self.at(i) else {
                return Err(self.err("Unterminated string starting at", begin));
            };
            if esc != 'u' {
                let mapped = match esc {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    _ => return Err(self.err("Invalid \\escape", i - 1)),
                };
                out.push(mapped);
                i += 1;
                continue;
            }
            let (ch, next) = self.unicode_escape(i + 1)?;
            out.push(ch);
            i = next;
        }
    }

    /// `\uXXXX` (with an optional low surrogate after a high one); `i` is at the first hex digit.
    fn unicode_escape(&self, i: usize) -> Result<(char, usize), PyJsonError> {
        let end = i + 4;
        if end >= self.s.len() {
            return Err(self.err("Invalid \\uXXXX escape", i - 1));
        }
        let hex = |from: usize, to: usize| -> Result<u32, PyJsonError> {
            let mut v = 0u32;
            for k in from..to {
                let d = self.s[k]
                    .to_digit(16)
                    .ok_or_else(|| self.err("Invalid \\uXXXX escape", to - 5))?;
                v = (v << 4) | d;
            }
            Ok(v)
        };
        let hi = hex(i, end)?;
        if (0xD800..0xDC00).contains(&hi)
            && end + 6 < self.s.len()
            && self.s[end] == '\\'
            && self.s[end + 1] == 'u'
        {
            let lo = hex(end + 2, end + 6)?;
            if (0xDC00..0xE000).contains(&lo) {
                let joined = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok((char::from_u32(joined).unwrap_or('\u{fffd}'), end + 6));
            }
        }
        Ok((char::from_u32(hi).unwrap_or('\u{fffd}'), end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> String {
        loads(s).unwrap_err().message
    }

    #[test]
    fn python_error_messages() {
        assert_eq!(msg(""), "Expecting value: line 1 column 1 (char 0)");
        assert_eq!(
            msg("{"),
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
        );
        assert_eq!(
            msg("{\"a\" 1}"),
            "Expecting ':' delimiter: line 1 column 6 (char 5)"
        );
        assert_eq!(
            msg("[1 2]"),
            "Expecting ',' delimiter: line 1 column 4 (char 3)"
        );
        assert_eq!(msg("[1,]"), "Expecting value: line 1 column 4 (char 3)");
        assert_eq!(msg("{}\n x"), "Extra data: line 2 column 2 (char 4)");
        assert_eq!(
            msg("\"abc"),
            "Unterminated string starting at: line 1 column 1 (char 0)"
        );
        assert_eq!(
            msg("\"a\tb\""),
            "Invalid control character at: line 1 column 3 (char 2)"
        );
        assert_eq!(msg("\"\\x\""), "Invalid \\escape: line 1 column 2 (char 1)");
        assert_eq!(
            msg("\u{feff}{}"),
            "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"
        );
    }

    #[test]
    fn python_values() {
        assert_eq!(loads("true").unwrap().as_int(), Some(PyInt::from_i64(1)));
        assert!(matches!(loads("20.0").unwrap(), PyValue::Float(_)));
        assert!(matches!(loads(" NaN ").unwrap(), PyValue::Float(f) if f.is_nan()));
        assert!(matches!(loads("-Infinity").unwrap(), PyValue::Float(f) if f == f64::NEG_INFINITY));
        let d = loads(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(d.get("a"), Some(&PyValue::Int(PyInt::from_i64(3))));
        assert_eq!(
            loads("123456789012345678901234567890")
                .unwrap()
                .as_int()
                .unwrap()
                .to_string(),
            "123456789012345678901234567890"
        );
        assert_eq!(
            loads(r#""\ud83d\ude00""#).unwrap(),
            PyValue::Str("😀".into())
        );
        assert!(!loads("[]").unwrap().truthy());
        assert!(!loads("0.0").unwrap().truthy());
    }

    /// An object of 300,000 keys parses (by hash: a linear search per key took minutes), and
    /// a repeated key keeps its first position with the last value.
    #[test]
    fn many_keys_are_linear_and_repeats_replace_in_place() {
        let text = format!(
            "{{\"a\": 1, {}, \"a\": 2}}",
            (0..300_000)
                .map(|i| format!("\"k{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let v = loads(&text).unwrap();
        let PyValue::Dict(items) = &v else { panic!() };
        assert_eq!(items.len(), 300_001);
        assert_eq!(items[0].0, "a");
        assert_eq!(v.get("a"), Some(&PyValue::Int(PyInt::from_i64(2))));
    }

    /// CPython 3.11's integer conversion limit, as `json.loads` raises it (checked against
    /// Python 3.11.7): 4,300 digits load, 4,301 raise; a sign does not count; floats are free.
    #[test]
    fn integers_over_4300_digits_are_a_value_error() {
        assert!(loads(&"1".repeat(4300)).is_ok());
        let e = loads(&format!("{{\"a\": -{}}}", "1".repeat(4301))).unwrap_err();
        assert_eq!(e.class, "ValueError");
        assert_eq!(e.message, "Exceeds the limit (4300 digits) for integer string conversion: value has 4301 digits; use sys.set_int_max_str_digits() to increase the limit");
        assert!(loads(&format!("{}.5", "1".repeat(4301))).is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(loads(&deep).unwrap_err().class, "RecursionError");
        let ok = format!("{}{}", "[".repeat(900), "]".repeat(900));
        assert!(loads(&ok).is_ok());
        let nested = loads(r#"{"a": [1, {"b": [2, 3]}, []], "c": {}}"#).unwrap();
        assert_eq!(nested.get("c"), Some(&PyValue::Dict(vec![])));
        assert_eq!(
            msg("{\"a\": 1,}"),
            "Expecting property name enclosed in double quotes: line 1 column 9 (char 8)"
        );
        assert_eq!(
            msg("[1, {\"a\" 2}]"),
            "Expecting ':' delimiter: line 1 column 10 (char 9)"
        );
        assert_eq!(
            msg("[[1] 2]"),
            "Expecting ',' delimiter: line 1 column 6 (char 5)"
        );
    }

    #[test]
    fn bad_utf8_is_python_text() {
        let e = load(b"{\xff}").unwrap_err();
        assert_eq!(
            e.message,
            "'utf-8' codec can't decode byte 0xff in position 1: invalid start byte"
        );
    }
}
