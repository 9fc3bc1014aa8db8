//! Full scan of a checkpoint root into a [`Tree`].
//!
//! Tolerant by design: a file that vanishes between `readdir` and `stat` is recorded with its
//! error, an unreadable folder is recorded per path, a non-regular file is recorded and never
//! opened, and symlinks are followed exactly one level per entry (a loop is just an `ELOOP`
//! error on that entry). Rank folders are scanned in parallel on all cores: on a tree of
//! thousands of ranks, `stat` latency, not CPU, is the cost.

use crate::fsys::{Fs, RawEntry};
use crate::model::{DirNode, Entry, FileKind, FileRead, Listing, OsErr, RootState, Tree};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Small control files larger than this are not read (a real `meta.json` is under 200 bytes).
pub const SMALL_FILE_LIMIT: u64 = 4 << 20;

/// `meta.json` files up to this size are read freely (a real one is under 200 bytes).
pub const META_FREE: u64 = 4 << 10;
/// Larger ones draw on this process-wide allowance: every rank folder of a hostile tree may
/// hold a 4 MiB `meta.json` (sparse on disk: nearly free to make), and 16,384 of them would
/// otherwise be 64 GiB in memory. Past it, a large `meta.json` is not read (the answer is
/// then "unknown", never a guess).
pub const META_BUDGET: u64 = 64 << 20;

static META_SPENT: AtomicU64 = AtomicU64::new(0);

/// Read a `meta.json` of `size` bytes (as listed) within the limits above.
fn read_meta(fs: &dyn Fs, path: &Path, size: u64) -> FileRead {
    read_budgeted(
        fs,
        path,
        size,
        META_FREE,
        SMALL_FILE_LIMIT,
        &META_SPENT,
        META_BUDGET,
    )
}

/// The new layout's control files (`common.json`, `metadata.json`, the tracker; a
/// `common.json` is under 200 bytes, a 2-rank `metadata.json` 23 KB, growing with parameters
/// × ranks) are read at most this large each (MindFormers reads them whole too) …
pub const CONTROL_LIMIT: u64 = 64 << 20;
/// … and all of them held at once within this allowance (a hostile tree may hold thousands of
/// sparse 64 MiB files): past it a file is not read and the answer that needs it is unknown.
pub const CONTROL_BUDGET: u64 = 256 << 20;

/// The control files held now, by path, with their sizes: re-reading a
/// changed file replaces its share (a days-long watch of a job rewriting a large
/// `metadata.json` does not use the allowance up), and files of deleted folders are let go
/// when the allowance runs short.
static CONTROL_HELD: std::sync::Mutex<Option<std::collections::HashMap<std::path::PathBuf, u64>>> =
    std::sync::Mutex::new(None);

/// Whether `size` more bytes for `path` fit the allowance (and, if so, they are counted).
fn hold_control(fs: &dyn Fs, path: &Path, size: u64) -> bool {
    let mut guard = CONTROL_HELD.lock().unwrap_or_else(|p| p.into_inner());
    let held = guard.get_or_insert_with(Default::default);
    let fits = |held: &std::collections::HashMap<std::path::PathBuf, u64>| {
        let others: u64 = held
            .iter()
            .filter(|(p, _)| p.as_path() != path)
            .map(|(_, n)| *n)
            .sum();
        others.saturating_add(size) <= CONTROL_BUDGET
    };
    if !fits(held) {
        // files that are gone no longer hold anything
        held.retain(|p, _| fs.stat(p).is_ok());
    }
    if !fits(held) {
        return false;
    }
    held.insert(path.to_path_buf(), size);
    true
}

/// The control files read whole in a new-format `iteration_*` folder.
pub const ITERATION_CONTROL: [&str; 2] = ["common.json", "metadata.json"];

/// Read a control file of `size` bytes (as listed, a regular file) within [`CONTROL_LIMIT`]
/// and the budget.
fn read_control(fs: &dyn Fs, path: &Path, size: u64) -> FileRead {
    if size > CONTROL_LIMIT || !hold_control(fs, path, size) {
        return FileRead::TooLarge(size);
    }
    fs.read_regular(path, CONTROL_LIMIT)
}

fn read_budgeted(
    fs: &dyn Fs,
    path: &Path,
    size: u64,
    free: u64,
    limit: u64,
    spent: &AtomicU64,
    budget: u64,
) -> FileRead {
    if size <= free {
        return fs.read_regular(path, limit);
    }
    if size > limit {
        return FileRead::TooLarge(size);
    }
    if spent.fetch_add(size, Ordering::Relaxed) + size > budget {
        return FileRead::TooLarge(size);
    }
    fs.read_regular(path, limit)
}

/// An entry's content as a control file: never opened unless its listing shows a regular file
/// (`read` is only ever given such a file).
fn read_entry(
    fs: &dyn Fs,
    path: &Path,
    e: &Entry,
    read: fn(&dyn Fs, &Path, u64) -> FileRead,
) -> FileRead {
    match e.stat() {
        Ok(st) if st.kind == FileKind::Dir => FileRead::Error(OsErr::errno(21)),
        Ok(st) if st.kind != FileKind::File => FileRead::NotRegular(st.kind),
        Ok(st) => read(fs, path, st.size),
        Err(_) => fs.read_small(path, SMALL_FILE_LIMIT),
    }
}

/// The root's control files (the new layout's tracker), when the root lists them.
pub fn root_files(
    fs: &dyn Fs,
    root: &Path,
    listing: Option<&Listing>,
) -> BTreeMap<String, FileRead> {
    let name = crate::layout::mindformers_new::tracker::TRACKER;
    listing
        .and_then(|l| l.find(name))
        .filter(|e| e.exists())
        .map(|e| {
            (
                name.to_owned(),
                read_entry(fs, &root.join(e.os_name()), &e, read_control),
            )
        })
        .into_iter()
        .collect()
}

/// Whether a root entry is a sub-folder the scan descends into: a legacy `rank_*` folder or a
/// new-format `iteration_*` folder.
pub fn is_layout_dir(name: &str) -> bool {
    name.starts_with("rank_") || name.starts_with("iteration_")
}

/// Scan `root` (as given on the command line, read as given) into a tree.
pub fn scan(fs: &dyn Fs, root: &str) -> Tree {
    let path = Path::new(if root.is_empty() { "." } else { root });
    scan_at(fs, path, root)
}

/// Scan the folder at `path` into a tree labelled `label` (the root as the user gave it:
/// MindFormers' messages quote it, while the canonical path is what is read).
pub fn scan_at(fs: &dyn Fs, path: &Path, label: &str) -> Tree {
    let state = scan_root(fs, path);
    let mut tree = Tree {
        root: label.to_owned(),
        state,
        dirs: BTreeMap::new(),
        root_files: BTreeMap::new(),
        verdicts: Default::default(),
        multi: None,
        host_paths: None,
    };
    tree.root_files = root_files(fs, path, tree.root_listing());
    let names: Vec<SubDir> = tree
        .root_listing()
        .map(|l| {
            l.entries()
                .iter()
                .filter(|e| is_layout_dir(&e.name) && e.is_dir())
                .map(|e| SubDir {
                    name: e.name.to_string(),
                    os: e.os_name().to_owned(),
                    stat: e.stat().ok().cloned(),
                })
                .collect()
        })
        .unwrap_or_default();
    for (name, node) in scan_dirs(fs, path, &names) {
        tree.dirs.insert(name, node.into());
    }
    tree
}

/// The root's own state (missing, a file, a listed directory …).
pub fn scan_root(fs: &dyn Fs, path: &Path) -> RootState {
    match fs.stat(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RootState::Missing,
        Err(e) => RootState::Error(OsErr::from_io(&e)),
        Ok(st) => match st.kind {
            FileKind::Dir => RootState::Dir(list(fs, path)),
            FileKind::File => RootState::File(st),
            other => RootState::Other(other),
        },
    }
}

/// A sub-folder of the root as its listing showed it.
pub struct SubDir {
    /// The name as shown.
    pub name: String,
    /// The name as on disk.
    pub os: std::ffi::OsString,
    /// Its `stat` (following a symlink) from the root's listing: taken before the folder is
    /// listed, as [`DirNode::stat`] must be, so the folder is not `stat`-ed a second time
    /// (4,096 path walks on a 4,096-rank tree).
    pub stat: Option<crate::model::Stat>,
}

/// Scan the named sub-folders of `root` in parallel.
pub fn scan_dirs(fs: &dyn Fs, root: &Path, names: &[SubDir]) -> Vec<(String, DirNode)> {
    let workers = crate::fsys::readers(fs).min(names.len().max(1));
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(names.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sub) = names.get(i) else {
                        break;
                    };
                    let dir = root.join(&sub.os);
                    let node = scan_listed(fs, &dir, sub.stat.clone(), None);
                    local.push((sub.name.clone(), node));
                }
                out.lock().unwrap_or_else(|p| p.into_inner()).extend(local);
            });
        }
    });
    out.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// List one folder and read its `meta.json`.
pub fn scan_dir(fs: &dyn Fs, dir: &Path) -> DirNode {
    rescan_dir(fs, dir, None)
}

/// [`scan_dir`], reusing `prev`'s `meta.json` content when that file is the same version
/// (same device, inode, size and mtime): a reconcile poll then costs no file reads.
pub fn rescan_dir(fs: &dyn Fs, dir: &Path, prev: Option<&DirNode>) -> DirNode {
    scan_listed(fs, dir, fs.stat(dir).ok(), prev)
}

/// [`rescan_dir`] with the folder's `stat` already taken (see [`DirNode::stat`]).
fn scan_listed(
    fs: &dyn Fs,
    dir: &Path,
    stat: Option<crate::model::Stat>,
    prev: Option<&DirNode>,
) -> DirNode {
    let listing = list(fs, dir);
    let meta_id = |l: &Listing| l.entries().file_id("meta.json");
    let reuse = prev
        .filter(|p| meta_id(&p.listing).is_some() && meta_id(&p.listing) == meta_id(&listing))
        .and_then(|p| p.meta.clone());
    let probed = match &listing {
        Listing::Error(_) => probe(fs, dir, "meta.json").into_iter().collect(),
        Listing::Entries(_) => Vec::new(),
    };
    let meta = reuse.or_else(|| {
        listing
            .find("meta.json")
            .or_else(|| probed.first().cloned())
            .filter(|e| e.exists())
            .map(|e| read_entry(fs, &dir.join("meta.json"), &e, read_meta))
    });
    let control = control_files(fs, dir, &listing, prev);
    DirNode {
        stat,
        listing,
        meta,
        probed,
        control,
        memo: Default::default(),
        origin: 0,
    }
}

/// A new-format folder's control files ([`ITERATION_CONTROL`]) as listed, each reused from
/// `prev` when it is the same version. Only `iteration_*` folders have them.
fn control_files(
    fs: &dyn Fs,
    dir: &Path,
    listing: &Listing,
    prev: Option<&DirNode>,
) -> Vec<(String, FileRead)> {
    let is_iteration = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("iteration_"));
    if !is_iteration {
        return Vec::new();
    }
    let id = |l: &Listing, name: &str| l.entries().file_id(name);
    ITERATION_CONTROL
        .iter()
        .filter_map(|&name| {
            let e = listing.find(name).filter(|e| e.exists())?;
            let reused = prev
                .filter(|p| {
                    id(&p.listing, name).is_some() && id(&p.listing, name) == id(listing, name)
                })
                .and_then(|p| p.control.iter().find(|(n, _)| n == name))
                .map(|(_, r)| r.clone());
            let read =
                reused.unwrap_or_else(|| read_entry(fs, &dir.join(e.os_name()), &e, read_control));
            Some((name.to_owned(), read))
        })
        .collect()
}

/// `dir/name` by a direct `stat`, as an entry (`None` when it does not exist).
fn probe(fs: &dyn Fs, dir: &Path, name: &str) -> Option<Entry> {
    let p = dir.join(name);
    let lstat = fs.stat(&p).ok()?;
    Some(Entry::named(std::ffi::OsStr::new(name), Ok(lstat), None))
}

fn list(fs: &dyn Fs, dir: &Path) -> Listing {
    match fs.read_dir(dir) {
        Ok(raw) => Listing::Entries(raw.into_iter().map(|r| entry(fs, dir, r)).collect()),
        Err(e) => Listing::Error(OsErr::from_io(&e)),
    }
}

/// The root's entry `name` as a fresh listing would show it (one `lstat`, and a `stat` when
/// it is a symlink), or `None` when it is gone.
pub fn root_entry(fs: &dyn Fs, root: &Path, name: &std::ffi::OsStr) -> Option<Entry> {
    let lstat = fs.lstat(&root.join(name)).ok()?;
    Some(entry(
        fs,
        root,
        RawEntry {
            name: name.into(),
            lstat: Ok(lstat),
        },
    ))
}

fn entry(fs: &dyn Fs, dir: &Path, raw: RawEntry) -> Entry {
    let lstat = raw.lstat.map_err(|e| OsErr::from_io(&e));
    let target = match &lstat {
        Ok(st) if st.kind == FileKind::Symlink => {
            let p: PathBuf = dir.join(&raw.name);
            Some(fs.stat(&p).map_err(|e| OsErr::from_io(&e)))
        }
        _ => None,
    };
    Entry::named(&raw.name, lstat, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The control-file allowance counts what is held now: a file read again replaces its own
    /// share (a long watch does not use it up), and files that are gone are let go.
    #[test]
    fn the_control_allowance_counts_what_is_held() {
        let fs = crate::fsys::RealFs;
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a.json"), tmp.path().join("b.json"));
        std::fs::write(&a, b"{}").unwrap();
        std::fs::write(&b, b"{}").unwrap();
        let big = 200 << 20;
        assert!(hold_control(&fs, &a, big));
        assert!(
            hold_control(&fs, &a, big),
            "the same file again: its share replaced"
        );
        assert!(
            !hold_control(&fs, &b, 100 << 20),
            "over the allowance with a held"
        );
        std::fs::remove_file(&a).unwrap();
        assert!(
            hold_control(&fs, &b, 100 << 20),
            "a's share let go once it is gone"
        );
        std::fs::remove_file(&b).unwrap();
        assert!(hold_control(&fs, &a, 1), "b let go too");
    }
}
