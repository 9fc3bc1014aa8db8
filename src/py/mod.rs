//! Python semantics that MindFormers' behaviour depends on (json, int, str, os.path).
pub mod int;
pub mod json;
pub(crate) mod text;

use serde::Serialize;

/// An exception as MindFormers would raise it: the class name and the full message (which may
/// span lines; the resolve contract reports the first line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PyException {
    #[serde(rename = "type")]
    pub class: String,
    pub message: String,
}

impl PyException {
    pub fn new(class: &str, message: impl Into<String>) -> Self {
        PyException {
            class: class.to_owned(),
            message: message.into(),
        }
    }

    /// `str(e)` as `f"Error: {str(e)}"` sees it.
    pub fn str(&self) -> &str {
        &self.message
    }

    pub fn first_line(&self) -> &str {
        self.message.split('\n').next().unwrap_or("")
    }
}

impl std::fmt::Display for PyException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// Python's `repr()` of a `str`, as it appears inside OSError messages.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}
