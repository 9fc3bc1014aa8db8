//! Full scan of a checkpoint root into a [`Tree`].
//!
//! Tolerant by design: a file that vanishes between `readdir` and `stat` is recorded with its
//! error, an unreadable folder is recorded per path, a non-regular file is recorded and never
//! opened, and symlinks are followed exactly one level per entry (a loop is just an `ELOOP`
//! error on that entry). Rank folders are scanned in parallel on all cores: on a tree of
//! thousands of ranks, `stat` latency, not CPU, is the cost.

use crate::fsys::{Fs, RawEntry};
use crate::model::{DirNode, Entry, FileId, FileKind, FileRead, Listing, OsErr, RootState, Tree};
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
    if size <= META_FREE {
        return fs.read_small(path, SMALL_FILE_LIMIT);
    }
    if size > SMALL_FILE_LIMIT {
        return FileRead::TooLarge(size);
    }
    let spent = META_SPENT.fetch_add(size, Ordering::Relaxed);
    if spent + size > META_BUDGET {
        return FileRead::TooLarge(size);
    }
    fs.read_small(path, SMALL_FILE_LIMIT)
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
        verdicts: Default::default(),
    };
    let names: Vec<(String, std::ffi::OsString)> = tree
        .root_listing()
        .map(|l| {
            l.entries()
                .iter()
                .filter(|e| e.name.starts_with("rank_") && e.is_dir())
                .map(|e| (e.name.to_string(), e.os_name().to_owned()))
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

/// Scan the named sub-folders of `root` in parallel.
/// `names` are `(name as shown, name as on disk)`.
pub fn scan_dirs(
    fs: &dyn Fs,
    root: &Path,
    names: &[(String, std::ffi::OsString)],
) -> Vec<(String, DirNode)> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(names.len().max(1));
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(names.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, os)) = names.get(i) else {
                        break;
                    };
                    let dir = root.join(os);
                    local.push((name.clone(), scan_dir(fs, &dir)));
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
    let stat = fs.stat(dir).ok();
    let listing = list(fs, dir);
    let meta_id = |l: &Listing| {
        l.find("meta.json")
            .and_then(|e| e.stat().ok())
            .map(FileId::from)
    };
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
            .or(probed.first())
            .filter(|e| e.exists())
            .map(|e| match e.stat() {
                Ok(st) if st.kind == FileKind::Dir => FileRead::Error(OsErr::errno(21)),
                Ok(st) if st.kind != FileKind::File => FileRead::NotRegular(st.kind),
                Ok(st) => read_meta(fs, &dir.join("meta.json"), st.size),
                Err(_) => fs.read_small(&dir.join("meta.json"), SMALL_FILE_LIMIT),
            })
    });
    DirNode {
        stat,
        listing,
        meta,
        probed,
        memo: Default::default(),
    }
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
