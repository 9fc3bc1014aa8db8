//! Python string and path helpers whose edge cases MindFormers' behaviour depends on.

/// `bytes.decode("utf-8")`, with CPython's `UnicodeDecodeError` text on failure.
pub fn decode_utf8(bytes: &[u8]) -> Result<String, String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => {
            let at = e.valid_up_to();
            let first = bytes[at];
            let (len, reason) = match e.error_len() {
                None => (bytes.len() - at, "unexpected end of data"),
                Some(_) if matches!(first, 0x80..=0xC1 | 0xF5..=0xFF) => (1, "invalid start byte"),
                Some(n) => (n, "invalid continuation byte"),
            };
            Err(if len <= 1 {
                format!("'utf-8' codec can't decode byte 0x{first:02x} in position {at}: {reason}")
            } else {
                format!(
                    "'utf-8' codec can't decode bytes in position {at}-{}: {reason}",
                    at + len - 1
                )
            })
        }
    }
}

/// Text-mode reading: `\r\n` and `\r` become `\n`.
pub fn universal_newlines(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_owned();
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// `f.readlines()` in text mode: lines keep their (translated) terminator.
pub fn readlines(s: &str) -> Vec<String> {
    let t = universal_newlines(s);
    t.split_inclusive('\n').map(str::to_owned).collect()
}

/// Python's `str.isspace()` for one character.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// `os.path.basename`.
pub fn basename(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// `os.path.join(a, b)` for a relative `b` without a leading slash.
pub fn join(a: &str, b: &str) -> String {
    if b.starts_with('/') {
        b.to_owned()
    } else if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

/// `s[:s.rfind(c)]`, including Python's quirk that a missing `c` (rfind = -1) drops the last
/// character. Slicing counts characters, not bytes.
pub fn slice_before_last(s: &str, c: char) -> &str {
    match s.rfind(c) {
        Some(i) => &s[..i],
        None => match s.char_indices().last() {
            Some((i, _)) => &s[..i],
            None => s,
        },
    }
}

/// `os.path.splitext(name)[1]`: from the last dot, ignoring leading dots.
pub fn splitext_ext(name: &str) -> &str {
    let base = basename(name);
    let stripped = base.trim_start_matches('.');
    match stripped.rfind('.') {
        Some(i) => &stripped[i..],
        None => "",
    }
}

/// `os.path.normpath` (lexical): collapses `//`, `.` and `..`.
pub fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial == 0 && parts.is_empty()) || parts.last() == Some(&"..") {
            parts.push(comp);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let body = parts.join("/");
    let out = format!("{}{}", "/".repeat(initial), body);
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

/// `os.path.abspath(p)` relative to `cwd`.
pub fn abspath(p: &str, cwd: &str) -> String {
    if p.starts_with('/') {
        normpath(p)
    } else {
        normpath(&join(cwd, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_match_python() {
        assert_eq!(join("a/", "b"), "a/b");
        assert_eq!(join("a", "b"), "a/b");
        assert_eq!(slice_before_last("llama_rank_0-", '_'), "llama_rank");
        assert_eq!(slice_before_last("x-", '_'), "x");
        assert_eq!(splitext_ext("a.b.ckpt"), ".ckpt");
        assert_eq!(splitext_ext(".ckpt"), "");
        assert_eq!(normpath("/a/./b/../c//"), "/a/c");
        assert_eq!(normpath("../x"), "../x");
        assert_eq!(abspath("out/../ckpt", "/w"), "/w/ckpt");
        assert_eq!(py_strip("\u{1f} x \n"), "x");
        assert_eq!(readlines("a\r\nb\rc"), vec!["a\n", "b\n", "c"]);
    }

    #[test]
    fn utf8_errors_match_cpython() {
        assert_eq!(
            decode_utf8(b"ab\xe2\x82").unwrap_err(),
            "'utf-8' codec can't decode bytes in position 2-3: unexpected end of data"
        );
        assert_eq!(
            decode_utf8(b"\xe2\x28\xa1").unwrap_err(),
            "'utf-8' codec can't decode byte 0xe2 in position 0: invalid continuation byte"
        );
    }
}
