//! The model seen through the [`Fs`] seam: a resolver written against paths (the new layout's
//! `get_checkpoint_path`, which stats, lists and reads control files the way MindFormers does)
//! reads the scanned tree — never the disk — so it stays pure, sees simulated edits and the
//! watcher's latest rescan, and gives the same answer in every view.
//!
//! Only what a scan records can be answered: the root, its entries, the sub-folders it
//! descended into and the control files it read. Anything else (a path outside the root, a
//! shard's bytes, a folder the scan did not list) is recorded as *not in the model*: the
//! caller turns that into an "unknown" answer instead of guessing.

use super::{Entry, FileKind, FileRead, Listing, OsErr, RootState, Stat, Tree};
use crate::fsys::{Fs, RawEntry, ReadSeek};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// A read-only filesystem over `tree`, whose root is at `base`.
pub struct TreeFs<'a> {
    tree: &'a Tree,
    base: PathBuf,
    /// The first path asked for that the model does not hold.
    missing: Mutex<Option<String>>,
}

/// Where a path lies in the model.
enum Place<'a> {
    Root,
    Top(&'a str),
    Inside(&'a str, &'a str),
}

impl<'a> TreeFs<'a> {
    pub fn new(tree: &'a Tree, base: &Path) -> TreeFs<'a> {
        TreeFs {
            tree,
            base: base.to_path_buf(),
            missing: Mutex::new(None),
        }
    }

    /// The first path a caller asked for that the scan did not record, with why.
    pub fn not_in_model(&self) -> Option<String> {
        self.missing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn unknown(&self, path: &Path, why: &str) -> io::Error {
        let mut m = self.missing.lock().unwrap_or_else(|p| p.into_inner());
        if m.is_none() {
            let fix = match why.contains("could not list") {
                true => "run ckptscope as a user who can list it",
                false => "point ckptscope at the checkpoint folder that holds it",
            };
            *m = Some(format!(
                "{}: {why}, so what MindFormers does is unknown ({fix})",
                path.display()
            ));
        }
        io::Error::other(format!("{}: {why}", path.display()))
    }

    fn place<'p>(&self, path: &'p Path) -> Option<Place<'p>> {
        let rel = path.strip_prefix(&self.base).ok()?;
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => parts.push(n.to_str()?),
                Component::CurDir => {}
                _ => return None,
            }
        }
        match parts.as_slice() {
            [] => Some(Place::Root),
            [a] => Some(Place::Top(a)),
            [a, b] => Some(Place::Inside(a, b)),
            _ => None,
        }
    }

    fn entry(&self, path: &Path) -> io::Result<Option<Entry>> {
        match self.place(path) {
            Some(Place::Top(n)) => Ok(self.tree.root_entry(n)),
            Some(Place::Inside(d, n)) => match self.tree.dirs.get(d) {
                // a folder that could not be listed: MindFormers may still open its files by
                // name (a searchable folder); only a probed name is known
                Some(node) if matches!(node.listing, Listing::Error(_)) => {
                    match node.probed.iter().find(|e| &*e.name == n) {
                        Some(e) => Ok(Some(e.clone())),
                        None => Err(self.unknown(path, "in a folder ckptscope could not list")),
                    }
                }
                Some(node) => Ok(node
                    .listing
                    .find(n)
                    .or_else(|| node.probed.iter().find(|e| &*e.name == n).cloned())),
                None => match self.tree.root_entry(d) {
                    None => Ok(None),
                    Some(e) if !e.is_dir() => Err(io::Error::from_raw_os_error(20)),
                    Some(_) => Err(self.unknown(path, "a folder ckptscope did not list")),
                },
            },
            _ => Err(self.unknown(path, "outside the scanned checkpoint root")),
        }
    }
}

fn io_err(e: &OsErr) -> io::Error {
    match e.errno {
        0 => io::Error::other(e.text.clone()),
        n => io::Error::from_raw_os_error(n),
    }
}

fn dir_stat() -> Stat {
    Stat {
        kind: FileKind::Dir,
        size: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
        ino: 0,
        dev: 0,
        mode: 0o040755,
        ctime_ns: 0,
    }
}

impl Fs for TreeFs<'_> {
    fn stat(&self, path: &Path) -> io::Result<Stat> {
        if let Some(Place::Root) = self.place(path) {
            return match &self.tree.state {
                RootState::Missing => Err(io::Error::from_raw_os_error(2)),
                RootState::Error(e) => Err(io_err(e)),
                RootState::File(st) => Ok(st.clone()),
                RootState::Dir(_) => Ok(dir_stat()),
                RootState::Other(k) => Ok(Stat {
                    kind: *k,
                    ..dir_stat()
                }),
            };
        }
        match self.entry(path)? {
            None => Err(io::Error::from_raw_os_error(2)),
            Some(e) => e.stat().cloned().map_err(io_err),
        }
    }

    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        match self.entry(path)? {
            None => self.stat(path),
            Some(e) => e.lstat.clone().map_err(|e| io_err(&e)),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<RawEntry>> {
        let listing = match self.place(path) {
            Some(Place::Root) => match &self.tree.state {
                RootState::Dir(l) => l,
                _ => {
                    self.stat(path)?;
                    return Err(io::Error::from_raw_os_error(20));
                }
            },
            Some(Place::Top(d)) => match self.tree.dirs.get(d) {
                Some(node) if matches!(node.listing, Listing::Error(_)) => {
                    // MindFormers may still open its files by name: what it finds is unknown
                    return Err(self.unknown(path, "a folder ckptscope could not list"));
                }
                Some(node) => &node.listing,
                None => {
                    self.stat(path)?;
                    return Err(self.unknown(path, "a folder ckptscope did not list"));
                }
            },
            Some(Place::Inside(..)) => {
                self.stat(path)?;
                return Err(self.unknown(path, "a folder ckptscope did not list"));
            }
            None => return Err(self.unknown(path, "outside the scanned checkpoint root")),
        };
        match listing {
            Listing::Error(e) => Err(io_err(e)),
            Listing::Entries(es) => Ok(es
                .iter()
                .map(|e| RawEntry {
                    name: e.os_name().to_owned(),
                    lstat: e.lstat.clone().map_err(|e| io_err(&e)),
                })
                .collect()),
        }
    }

    fn read_small(&self, path: &Path, _limit: u64) -> FileRead {
        let recorded = match self.place(path) {
            Some(Place::Top(n)) => self.tree.root_files.get(n),
            Some(Place::Inside(d, n)) => self.tree.dirs.get(d).and_then(|node| match n {
                "meta.json" => node.meta.as_ref(),
                _ => node.control.iter().find(|(c, _)| c == n).map(|(_, r)| r),
            }),
            _ => None,
        };
        if let Some(r) = recorded {
            return r.clone();
        }
        match self.stat(path) {
            Err(e) => FileRead::Error(OsErr::from_io(&e)),
            Ok(st) if st.kind == FileKind::Dir => FileRead::Error(OsErr::errno(21)),
            Ok(st) if st.kind != FileKind::File => FileRead::NotRegular(st.kind),
            Ok(_) => FileRead::Error(OsErr::from_io(
                &self.unknown(path, "a file whose content ckptscope did not read"),
            )),
        }
    }

    fn open(&self, path: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)> {
        Err(self.unknown(path, "shard bytes are not part of the model"))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(path.to_path_buf())
    }

    fn mount_table(&self) -> Option<String> {
        None
    }
}
