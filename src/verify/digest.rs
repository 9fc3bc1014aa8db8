//! SHA-256 manifests in `sha256sum -c` format: `SHA256SUMS` in the root or a rank folder, and
//! `<file>.sha256` sidecars. Reading them is how a tree says what its shards should hash to;
//! writing one (always outside the tree) lets an operator check the same tree later.

use crate::fsys::Fs;
use crate::model::{FileRead, Tree};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
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
/// form for names holding a backslash, a newline or a carriage return) are unescaped. Names
/// are bytes (a Linux name need not be UTF-8). Malformed lines are skipped.
pub fn parse_sums(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    text.split(|b| *b == b'\n')
        .filter_map(|line| {
            let (escaped, line) = match line.strip_prefix(b"\\") {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let hex = line.get(..64)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let rest = &line[64..];
            let name = rest
                .strip_prefix(b" *")
                .or_else(|| rest.strip_prefix(b"  "))?;
            let name = if escaped {
                unescape(name)?
            } else {
                name.to_vec()
            };
            Some((String::from_utf8_lossy(hex).to_ascii_lowercase(), name))
        })
        .collect()
}

/// GNU's name escaping undone: `\\` `\n` `\r`; any other escape makes the line malformed.
fn unescape(name: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len());
    let mut it = name.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match it.next()? {
            b'\\' => b'\\',
            b'n' => b'\n',
            b'r' => b'\r',
            _ => return None,
        });
    }
    Some(out)
}

/// GNU's form of a name for a manifest line: names holding `\`, a newline or a carriage
/// return are escaped and the line starts with `\` (what `sha256sum` writes and `-c` reads).
fn escape(name: &[u8]) -> (bool, Vec<u8>) {
    if !name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r')) {
        return (false, name.to_vec());
    }
    let mut out = Vec::with_capacity(name.len() + 8);
    for &b in name {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    (true, out)
}

/// `a/./b/../c` as `a/c` (what `sha256sum -c` opens, unless a component is a symlink): a
/// manifest line naming a shard that way still names that shard.
fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The largest manifest read (a line per shard: 8,192 ranks × 100 files is about 80 MB).
pub const MANIFEST_LIMIT: u64 = 128 << 20;

/// Read `SHA256SUMS` from `root` (and from each further root of a tree of several) and from
/// each folder of `tree`, and the `*.sha256` sidecars
/// its listings show — through `fs`: regular files only, opened non-blocking, at most
/// [`MANIFEST_LIMIT`] bytes each. A manifest that cannot be used is named in `problems`.
pub fn read_manifests(fs: &dyn Fs, root: &Path, tree: &Tree) -> Manifest {
    let mut m = Manifest::default();
    let read = |path: &Path, m: &mut Manifest| -> Option<Vec<u8>> {
        match fs.read_small(path, MANIFEST_LIMIT) {
            FileRead::Bytes(b) => {
                m.sources.push(path.to_path_buf());
                Some(b)
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
                    "{}: {k}, not a regular file; never opened",
                    path.display()
                ));
                None
            }
        }
    };
    let sums = |dir: &Path, m: &mut Manifest| {
        if let Some(text) = read(&dir.join("SHA256SUMS"), m) {
            for (hex, name) in parse_sums(&text) {
                m.expected
                    .insert(lexical(&dir.join(OsStr::from_bytes(&name))), hex);
            }
        }
    };
    // the root's, and each further root's of a job given as several (each node's folder)
    let mut bases = vec![root.to_path_buf()];
    for r in tree.roots() {
        if !bases.contains(&r.base) {
            bases.push(r.base.clone());
        }
    }
    for b in &bases {
        sums(b, &mut m);
    }
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

/// Render a manifest with paths relative to `root` (`sha256sum -c` format, names as raw bytes,
/// escaped as GNU does), sorted by name.
pub fn render_sums(root: &Path, hashes: &[(PathBuf, String)]) -> Vec<u8> {
    let mut lines: Vec<(Vec<u8>, &str)> = hashes
        .iter()
        .map(|(p, h)| {
            (
                p.strip_prefix(root)
                    .unwrap_or(p)
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
                h.as_str(),
            )
        })
        .collect();
    lines.sort();
    let mut out = Vec::new();
    for (name, h) in lines {
        let (escaped, name) = escape(&name);
        if escaped {
            out.push(b'\\');
        }
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"  ");
        out.extend_from_slice(&name);
        out.push(b'\n');
    }
    out
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
    #[error("{dest} is {kind}, not a regular file: a manifest replaces its destination (a temporary file, then a rename) and never writes through a link or into a device; name a regular file outside the tree")]
    NotAFile { dest: String, kind: String },
    #[error("{dest}: cannot be written ({cause}); choose a file path in an existing folder you can write to")]
    Write { dest: String, cause: String },
}

/// Refuse a manifest destination that is, or leads, into the tree: inside it, a symlink into
/// it, or another name (hard link) of one of its files — or that is not a regular file.
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
    if canon_parent.starts_with(&canon_root) || aliases(root, tree, &canon_parent) {
        return Err(inside("inside the checkpoint tree"));
    }
    if let Ok(real) = std::fs::canonicalize(dest) {
        let in_tree = real.starts_with(&canon_root) || aliases(root, tree, &real);
        if in_tree && real.is_dir() {
            return Err(inside("the checkpoint tree itself, or one of its folders"));
        }
        if in_tree {
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
            .any(|e| e.stat().is_ok_and(|s| (s.dev, s.ino) == id));
        if same {
            return Err(inside("another name (hard link) of a file of the tree"));
        }
    }
    check_kind(dest)
}

/// Whether `dir` or one of its ancestors is a folder of the tree — the root or a rank folder —
/// under any name: a rank folder that is a symlink to elsewhere, a bind mount of the root or
/// of a rank folder. Folders are compared by device and inode, which no path trick changes.
fn aliases(root: &Path, tree: &Tree, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let mut folders: std::collections::HashSet<(u64, u64)> = tree
        .dirs
        .iter()
        .filter_map(|(name, node)| match &node.stat {
            Some(s) => Some((s.dev, s.ino)),
            None => id(&tree.path_of(root, name, None)),
        })
        .collect();
    folders.extend(id(root));
    dir.ancestors()
        .any(|a| id(a).is_some_and(|x| folders.contains(&x)))
}

/// Refuse a destination that exists and is not a regular file: the manifest replaces the
/// destination's directory entry (a temporary file and a rename), which would turn `/dev/null`
/// into a file, or replace a symlink with a file instead of writing where it points.
fn check_kind(dest: &Path) -> Result<(), ManifestError> {
    let Ok(md) = std::fs::symlink_metadata(dest) else {
        return Ok(());
    };
    let kind = crate::fsys::stat_of(&md).kind;
    if kind == crate::model::FileKind::File {
        return Ok(());
    }
    Err(ManifestError::NotAFile {
        dest: dest.display().to_string(),
        kind: kind.to_string(),
    })
}

/// The mode a new file gets from this process: 0666 less the umask (Linux shows the umask in
/// `/proc/self/status`; reading it does not change it, unlike `umask(2)`).
fn new_file_mode() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(l.split_whitespace().nth(1)?, 8).ok()
        })
        .map_or(0o644, |mask| 0o666 & !mask)
}

/// Write `bytes` to `dest` through a temporary file beside it and a rename: the destination's
/// directory entry is replaced, never written through (a link that appeared since the check
/// keeps its target untouched). The file gets the mode an existing destination had, or the
/// usual mode for a new file (not the temporary file's 0600).
pub fn write_manifest(
    root: &Path,
    tree: &Tree,
    dest: &Path,
    bytes: &[u8],
) -> Result<(), ManifestError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    // checked again now: the destination's folder may have been swapped for a link into the
    // tree while the shards were hashed
    check_target(root, tree, dest)?;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| ManifestError::Write {
        dest: dest.display().to_string(),
        cause: e.to_string(),
    };
    let mode = std::fs::symlink_metadata(dest)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or_else(|_| new_file_mode());
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    // and once more for the temporary file itself, which is what the rename publishes
    if let Err(e) = check_target(root, tree, tmp.path()) {
        let _ = tmp.close();
        return Err(e);
    }
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
        let text =
            format!("{h}  rank_0/x.ckpt\n{h} *y.ckpt\nbad line\n\\{h}  a\\nb.ckpt\n\\{h}  c\\q\n");
        let v = parse_sums(text.as_bytes());
        assert_eq!(v.len(), 3, "the unknown escape \\q is malformed");
        assert_eq!(v[0].1, b"rank_0/x.ckpt");
        assert_eq!(v[1].1, b"y.ckpt");
        assert_eq!(v[2].1, b"a\nb.ckpt");
    }

    /// What `render_sums` writes, `parse_sums` reads back: names with backslashes, newlines,
    /// carriage returns and non-UTF-8 bytes survive (GNU's escaping, as `sha256sum -c` reads).
    #[test]
    fn sums_round_trip() {
        use std::os::unix::ffi::OsStrExt;
        let root = Path::new("/r");
        let names: [&[u8]; 5] = [
            b"plain.ckpt",
            b"a\\b.ckpt",
            b"a\nb.ckpt",
            b"a\rb",
            b"\xff\\n",
        ];
        let hashes: Vec<(PathBuf, String)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (root.join(OsStr::from_bytes(n)), format!("{i:064x}")))
            .collect();
        let text = render_sums(root, &hashes);
        assert_eq!(text.split(|b| *b == b'\n').count(), names.len() + 1);
        let mut back = parse_sums(&text);
        back.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (h, n)) in back.iter().enumerate() {
            assert_eq!(h, &format!("{i:064x}"));
            assert_eq!(n.as_slice(), names[i]);
        }
    }
}
