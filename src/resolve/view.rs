//! `os.path` and `os.listdir` as MindFormers' resolver calls them, answered from a scanned
//! [`Tree`] instead of the disk. Paths are always `join(D, "rank_<r>"[, name])`, so they are
//! addressed by rank-folder name and entry name.

use crate::model::{Entries, Entry, FileKind, FileRead, Listing, OsErr, Tree};
use crate::py::text::join;
use crate::py::PyException;

pub struct View<'a> {
    pub tree: &'a Tree,
}

impl<'a> View<'a> {
    pub fn new(tree: &'a Tree) -> Self {
        View { tree }
    }

    /// A root entry by name (a hash probe: the resolver looks up `rank_<r>` for every rank).
    fn root_entry(&self, name: &str) -> Option<Entry> {
        self.tree.root_entry(name)
    }

    pub fn d(&self) -> &str {
        &self.tree.root
    }

    /// `join(D, dir)`, with `D` the root that holds `dir` (of a tree merged from several
    /// roots, the node's own path, as MindFormers on that node prints it).
    pub fn dir_path(&self, dir: &str) -> String {
        join(self.tree.label_of(dir), dir)
    }

    /// `os.listdir(D)`.
    pub fn listdir_root(&self) -> Result<&'a Entries, PyException> {
        match self.tree.root_listing() {
            Some(Listing::Entries(e)) => Ok(e),
            Some(Listing::Error(err)) => Err(err.to_py(self.d())),
            None => Err(OsErr::errno(if self.tree_root_exists() { 20 } else { 2 }).to_py(self.d())),
        }
    }

    fn tree_root_exists(&self) -> bool {
        !matches!(self.tree.state, crate::model::RootState::Missing)
    }

    /// `os.path.exists(join(D, dir))`.
    pub fn exists(&self, dir: &str) -> bool {
        self.root_stat(dir).is_some_and(|s| s.is_ok())
    }

    /// The root entry `name`'s `stat` (following a symlink), if listed.
    fn root_stat(&self, name: &str) -> Option<Result<crate::model::Stat, OsErr>> {
        self.tree.root_listing()?.entries().stat_of(name)
    }

    /// `os.path.isdir(join(D, dir))`.
    pub fn isdir(&self, dir: &str) -> bool {
        matches!(self.root_stat(dir), Some(Ok(s)) if s.kind == FileKind::Dir)
    }

    /// `os.listdir(join(D, dir))`.
    pub fn listdir(&self, dir: &str) -> Result<&'a Entries, PyException> {
        let path = self.dir_path(dir);
        match self.root_entry(dir) {
            None => Err(OsErr::errno(2).to_py(&path)),
            Some(e) => match e.stat() {
                Err(err) => Err(err.to_py(&path)),
                Ok(st) if st.kind != FileKind::Dir => Err(OsErr::errno(20).to_py(&path)),
                Ok(_) => match self.tree.dirs.get(dir).map(|n| &n.listing) {
                    Some(Listing::Entries(entries)) => Ok(entries),
                    Some(Listing::Error(err)) => Err(err.to_py(&path)),
                    None => Err(OsErr::errno(2).to_py(&path)),
                },
            },
        }
    }

    /// An entry of a sub-folder: from its listing, or, for a folder that can be searched but
    /// not listed, from a direct `stat` (what `os.path.exists` does).
    pub fn entry(&self, dir: &str, name: &str) -> Option<Entry> {
        if !self.isdir(dir) {
            return None;
        }
        let node = self.tree.dirs.get(dir)?;
        node.listing
            .find(name)
            .or_else(|| node.probed.iter().find(|e| &*e.name == name).cloned())
    }

    /// `os.path.exists(join(D, dir, name))`.
    pub fn exists_in(&self, dir: &str, name: &str) -> bool {
        if !self.isdir(dir) {
            return false;
        }
        let Some(node) = self.tree.dirs.get(dir) else {
            return false;
        };
        match node.listing.entries().stat_of(name) {
            Some(s) => s.is_ok(),
            None => node
                .probed
                .iter()
                .find(|e| &*e.name == name)
                .is_some_and(|e| e.exists()),
        }
    }

    /// `os.path.getmtime(join(D, dir, entry.name))`.
    pub fn getmtime(&self, dir: &str, entry: &Entry) -> Result<f64, PyException> {
        entry
            .stat()
            .map(|s| s.mtime_f64())
            .map_err(|e| e.to_py(&join(&self.dir_path(dir), &entry.name)))
    }

    /// The content of `join(D, dir, "meta.json")` if it exists.
    pub fn meta(&self, dir: &str) -> Option<&'a FileRead> {
        if !self.exists_in(dir, "meta.json") {
            return None;
        }
        self.tree.dirs.get(dir).and_then(|n| n.meta.as_ref())
    }
}

/// Not a Python exception: ckptscope refused to read a file MindFormers would read (too large,
/// or a FIFO or device that could block forever), so it cannot know the answer. The resolver
/// stops there and every rank's result becomes unknown — never presented as MindFormers'.
pub const CANNOT_READ: &str = "ckptscope.CannotRead";

/// The exception a small-file read failure raises in Python (`open()` of `path`), or
/// [`CANNOT_READ`] when ckptscope did not read the file.
pub fn read_failure(read: &FileRead, path: &str) -> Option<PyException> {
    match read {
        FileRead::Bytes(_) => None,
        FileRead::Error(e) => Some(e.to_py(path)),
        FileRead::TooLarge(n) => Some(PyException::new(
            CANNOT_READ,
            format!("{path} is {n} bytes: ckptscope reads at most {} bytes of a control file, and meta.json files over {} bytes only up to {} MiB in all (a real meta.json is under 200 bytes), so it cannot tell what MindFormers would make of it; check the file", crate::scan::SMALL_FILE_LIMIT, crate::scan::META_FREE, crate::scan::META_BUDGET >> 20),
        )),
        FileRead::NotRegular(kind) => Some(PyException::new(
            CANNOT_READ,
            format!("{path} is {kind}, not a regular file: ckptscope never opens it; MindFormers would block (a FIFO) or fail opening it; replace it with the real file"),
        )),
    }
}
