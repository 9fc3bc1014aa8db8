//! Text that reaches a terminal. File names and `meta.json` content come from the tree and may
//! hold control bytes: an OSC 52 sequence writes the clipboard, OSC 0 sets the window title, a
//! `\r` forges a whole line. Every human-readable output escapes them with this one function.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal raw: C0, DEL, C1, and the bidirectional overrides
/// that reorder what is shown.
pub fn dangerous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every dangerous character written as `\xNN` (or `\u{NNNN}`); borrowed when clean.
pub fn safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !dangerous(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// A multi-line text with every dangerous character of every line escaped (line breaks
/// kept): the last guard of each human-readable output.
pub fn safe_text(s: &str) -> String {
    s.split('\n').map(safe).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::{safe, safe_text};

    #[test]
    fn text_keeps_its_lines() {
        assert_eq!(safe_text("a\nb\rc\n"), "a\nb\\x0dc\n");
    }

    #[test]
    fn controls_are_escaped_and_clean_text_is_borrowed() {
        assert!(matches!(
            safe("rank_0-20_2.ckpt"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(safe("a\rb\x1b]52;c;x\x07"), "a\\x0db\\x1b]52;c;x\\x07");
        assert_eq!(safe("\u{9b}\u{7f}\n"), "\\x9b\\x7f\\x0a");
        assert_eq!(safe("abc\u{202e}txt"), "abc\\u{202e}txt");
        assert_eq!(safe("ünïcödé ✓"), "ünïcödé ✓");
    }
}
