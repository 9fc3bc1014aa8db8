//! SHA-256 manifests in `sha256sum -c` format: `SHA256SUMS` in the root or a rank folder, and
//! `<file>.sha256` sidecars. Reading them is how a tree says what its shards should hash to;
//! writing one (always outside the tree) lets an operator check the same tree later.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Expected hashes by absolute-or-root-relative path as found in the tree.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub expected: HashMap<PathBuf, String>,
    /// Which manifest files were read.
    pub sources: Vec<PathBuf>,
}

/// Parse `sha256sum` output: `<64 hex> <space|*><name>` per line; `\`-escaped names (GNU's
/// form for names with backslashes or newlines) are unescaped. Malformed lines are skipped.
pub fn parse_sums(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (escaped, line) = match line.strip_prefix('\\') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (hex, rest) = line.split_at_checked(64)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let name = rest
                .strip_prefix(" *")
                .or_else(|| rest.strip_prefix("  "))?;
            let name = if escaped {
                name.replace("\\n", "\n").replace("\\\\", "\\")
            } else {
                name.to_owned()
            };
            Some((hex.to_ascii_lowercase(), name))
        })
        .collect()
}

/// Read `SHA256SUMS` from `root` and from each of `dirs`, and `*.sha256` sidecars in `dirs`.
pub fn read_manifests(root: &Path, dirs: &[PathBuf]) -> Manifest {
    let mut m = Manifest::default();
    let read_sums = |dir: &Path, m: &mut Manifest| {
        let p = dir.join("SHA256SUMS");
        if let Ok(text) = std::fs::read_to_string(&p) {
            for (hex, name) in parse_sums(&text) {
                m.expected.insert(dir.join(name), hex);
            }
            m.sources.push(p);
        }
    };
    read_sums(root, &mut m);
    for d in dirs {
        read_sums(d, &mut m);
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(target) = name.strip_suffix(".sha256") else {
                continue;
            };
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                if let Some((hex, _)) = parse_sums(&text).into_iter().next() {
                    m.expected.insert(d.join(target), hex);
                    m.sources.push(e.path());
                }
            }
        }
    }
    m
}

/// Render a manifest with paths relative to `root` (`sha256sum -c` format).
pub fn render_sums(root: &Path, hashes: &[(PathBuf, String)]) -> String {
    let mut lines: Vec<String> = hashes
        .iter()
        .map(|(p, h)| format!("{h}  {}", p.strip_prefix(root).unwrap_or(p).display()))
        .collect();
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Refuse a manifest destination inside the tree (ckptscope never writes there).
pub fn check_outside(root: &Path, dest: &Path) -> Result<(), String> {
    let canon_root = std::fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let canon_parent = std::fs::canonicalize(parent)
        .map_err(|e| format!("{}: {e}; create the folder first", parent.display()))?;
    if canon_parent.starts_with(&canon_root) {
        return Err(format!(
            "{} is inside the checkpoint tree {}: ckptscope never writes there; choose a path outside it",
            dest.display(),
            root.display()
        ));
    }
    Ok(())
}

/// SHA-256 of a whole file, streamed with a 4 MiB buffer (the deep pass computes the same hash
/// in its own loop, together with the CRC).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = crate::fsys::open_regular(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_format() {
        let h = "a".repeat(64);
        let text = format!("{h}  rank_0/x.ckpt\n{h} *y.ckpt\nbad line\n\\{h}  a\\nb.ckpt\n");
        let v = parse_sums(&text);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].1, "rank_0/x.ckpt");
        assert_eq!(v[1].1, "y.ckpt");
        assert_eq!(v[2].1, "a\nb.ckpt");
    }
}
