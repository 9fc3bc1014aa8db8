//! SHA-256 manifests in `sha256sum -c` format: `SHA256SUMS` in the root or a rank folder, and
//! `<file>.sha256` sidecars. Reading them is how a tree says what its shards should hash to;
//! writing one (always outside the tree) lets an operator check the same tree later.

use crate::fsys::Fs;
use crate::model::{FileRead, Tree};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Expected hashes by absolute-or-root-relative path as found in the tree.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub expected: HashMap<PathBuf, String>,
    /// Which manifest files were read.
    pub sources: Vec<PathBuf>,
    /// Manifests that exist but could not be used, and why.
    pub problems: Vec<String>,
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

/// The largest manifest read (a line per shard: 8,192 ranks × 100 files is about 80 MB).
pub const MANIFEST_LIMIT: u64 = 128 << 20;

/// Read `SHA256SUMS` from `root` and from each folder of `tree`, and the `*.sha256` sidecars
/// its listings show — through `fs`: regular files only, opened non-blocking, at most
/// [`MANIFEST_LIMIT`] bytes each. A manifest that cannot be used is named in `problems`.
pub fn read_manifests(fs: &dyn Fs, root: &Path, tree: &Tree) -> Manifest {
    let mut m = Manifest::default();
    let read = |path: &Path, m: &mut Manifest| -> Option<String> {
        match fs.read_small(path, MANIFEST_LIMIT) {
            FileRead::Bytes(b) => {
                m.sources.push(path.to_path_buf());
                Some(String::from_utf8_lossy(&b).into_owned())
            }
            FileRead::Error(e) if e.errno == 2 => None,
            FileRead::Error(e) => {
                m.problems
                    .push(format!("{}: {}; ignored", path.display(), e.text));
                None
            }
            FileRead::TooLarge(n) => {
                m.problems.push(format!(
                    "{}: {n} bytes or more, over the {} MiB a manifest may have; ignored",
                    path.display(),
                    MANIFEST_LIMIT >> 20
                ));
                None
            }
            FileRead::NotRegular(k) => {
                m.problems.push(format!(
                    "{}: a {k:?}, not a regular file; never opened",
                    path.display()
                ));
                None
            }
        }
    };
    let sums = |dir: &Path, m: &mut Manifest| {
        if let Some(text) = read(&dir.join("SHA256SUMS"), m) {
            for (hex, name) in parse_sums(&text) {
                m.expected.insert(dir.join(name), hex);
            }
        }
    };
    sums(root, &mut m);
    for (name, node) in &tree.dirs {
        let d = tree.path_of(root, name, None);
        if node.listing.find("SHA256SUMS").is_some() {
            sums(&d, &mut m);
        }
        for e in node.listing.entries() {
            let Some(target) = e.name.strip_suffix(".sha256") else {
                continue;
            };
            if let Some(text) = read(&d.join(e.os_name()), &mut m) {
                if let Some((hex, _)) = parse_sums(&text).into_iter().next() {
                    m.expected.insert(d.join(target), hex);
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

/// Why a manifest cannot be written where asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("{dest}: {why}; ckptscope never writes into the checkpoint tree {root} — choose a path outside it")]
    InsideTree {
        dest: String,
        root: String,
        why: String,
    },
    #[error("{path}: {cause}; create the folder first, or choose another path")]
    Folder { path: String, cause: String },
    #[error("{dest}: cannot be written ({cause})")]
    Write { dest: String, cause: String },
}

/// Refuse a manifest destination that is, or leads, into the tree: inside it, a symlink into
/// it, or another name (hard link) of one of its files.
pub fn check_target(root: &Path, tree: &Tree, dest: &Path) -> Result<(), ManifestError> {
    let inside = |why: &str| ManifestError::InsideTree {
        dest: dest.display().to_string(),
        root: root.display().to_string(),
        why: why.into(),
    };
    let canon_root = std::fs::canonicalize(root).map_err(|e| ManifestError::Folder {
        path: root.display().to_string(),
        cause: e.to_string(),
    })?;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let canon_parent = std::fs::canonicalize(parent).map_err(|e| ManifestError::Folder {
        path: parent.display().to_string(),
        cause: e.to_string(),
    })?;
    if canon_parent.starts_with(&canon_root) {
        return Err(inside("inside the checkpoint tree"));
    }
    if let Ok(real) = std::fs::canonicalize(dest) {
        if real.starts_with(&canon_root) {
            return Err(inside("a symlink to a file of the tree"));
        }
    }
    if let Ok(md) = std::fs::metadata(dest) {
        use std::os::unix::fs::MetadataExt;
        let id = (md.dev(), md.ino());
        let same = tree
            .dirs
            .values()
            .flat_map(|d| d.listing.entries())
            .chain(tree.root_listing().map(|l| l.entries()).unwrap_or_default())
            .filter_map(|e| e.stat().ok())
            .any(|s| (s.dev, s.ino) == id);
        if same {
            return Err(inside("another name (hard link) of a file of the tree"));
        }
    }
    Ok(())
}

/// Write `text` to `dest` through a temporary file beside it and a rename: the destination's
/// directory entry is replaced, never written through (a link that appeared since the check
/// keeps its target untouched).
pub fn write_manifest(dest: &Path, text: &str) -> Result<(), ManifestError> {
    use std::io::Write;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| ManifestError::Write {
        dest: dest.display().to_string(),
        cause: e.to_string(),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.persist(dest).map_err(|e| fail(e.error))?;
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
