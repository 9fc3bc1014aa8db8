//! The in-memory picture of a checkpoint tree: what a scan saw, nothing inferred.
//!
//! The resolvers read only this (plus configuration), never the disk, so they stay pure and
//! testable. A rank folder is one [`DirNode`]; later work (the watcher) replaces one node at a
//! time through [`Tree::apply`], which is why rank folders are kept by name in a map.

mod entries;
mod memo;
mod name;
pub(crate) mod roots;
mod shard;
mod tree_fs;
mod verdicts;
pub use memo::Memo;
pub use tree_fs::TreeFs;

pub use entries::Entries;
pub use name::Name;
pub use roots::{Conflict, MultiRoot, TreeRoot};
pub use shard::{
    intern, intern_text, AppendValues, Num, ShardCheck, ShardResult, Verdict, VerdictEntry,
    Verified,
};
pub use verdicts::{judge, lacks_tail_entries, run_key, Verdicts};

use crate::py::{py_repr, PyException};
use serde::Serialize;
use std::collections::BTreeMap;

/// What kind of filesystem object an entry is (as `lstat` or `stat` reported it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

/// In words, with the article: "a FIFO", "a character device" (what messages say).
impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::File => "a regular file",
            FileKind::Dir => "a folder",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Other => "an unknown kind of file",
        })
    }
}

/// The facts of one `stat` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stat {
    pub kind: FileKind,
    pub size: u64,
    pub mtime_sec: i64,
    /// 0 ≤ nanoseconds < 10⁹ (small fields: the stat of every listed entry is kept).
    pub mtime_nsec: u32,
    pub ino: u64,
    pub dev: u64,
    /// `st_mode` (type and permission bits: 16 bits on Linux).
    pub mode: u16,
    /// Status-change time (nanoseconds, saturated to i64: years 1678–2262): an in-place
    /// rewrite that restores size and mtime (`cp -p`, `rsync -t`, `touch -r`) still moves it.
    pub ctime_ns: i64,
}

impl Stat {
    /// CPython's `os.path.getmtime`: seconds + nanoseconds × 1e-9 as a float.
    pub fn mtime_f64(&self) -> f64 {
        (self.mtime_sec as f64) + (self.mtime_nsec as f64) * 1e-9
    }

    pub fn mtime_ns(&self) -> i128 {
        self.mtime_sec as i128 * 1_000_000_000 + self.mtime_nsec as i128
    }
}

/// An OS error as Python reports it: errno and `strerror`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OsErr {
    pub errno: i32,
    pub text: String,
}

impl OsErr {
    pub fn from_io(e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(errno) => OsErr::errno(errno),
            None => OsErr {
                errno: 0,
                text: e.to_string(),
            },
        }
    }

    pub fn errno(errno: i32) -> Self {
        let full = std::io::Error::from_raw_os_error(errno).to_string();
        let text = match full.rfind(" (os error") {
            Some(i) => full[..i].to_owned(),
            None => full,
        };
        OsErr { errno, text }
    }

    /// The Python exception this error raises when `path` was the argument.
    pub fn to_py(&self, path: &str) -> PyException {
        let class = match self.errno {
            2 => "FileNotFoundError",
            13 | 1 => "PermissionError",
            20 => "NotADirectoryError",
            21 => "IsADirectoryError",
            _ => "OSError",
        };
        PyException::new(
            class,
            format!("[Errno {}] {}: {}", self.errno, self.text, py_repr(path)),
        )
    }
}

/// One directory entry in `readdir` order, as a value: a folder keeps its entries compactly
/// ([`Entries`]) and builds one on demand (96 bytes, no heap block for a short name).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The name; a name that is not UTF-8 has its invalid bytes written `\xNN` (see
    /// [`Entry::raw`]).
    pub name: Name,
    /// `lstat` of the entry (a race can make it fail: the file vanished after listing).
    pub lstat: Result<Stat, OsErr>,
    /// What few entries have, boxed together (nearly every entry is a plain file with a UTF-8
    /// name, and pays one pointer for it).
    pub extra: Option<Box<EntryExtra>>,
}

/// The rare parts of an [`Entry`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EntryExtra {
    /// The name's bytes when they are shown escaped: every path to the file is built from them.
    pub raw: Option<Box<std::ffi::OsStr>>,
    /// `stat` through the link, only for symlinks.
    pub target: Option<Result<Stat, OsErr>>,
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Entry", 3)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("lstat", &self.lstat)?;
        st.serialize_field("target", &self.target())?;
        st.end()
    }
}

impl Entry {
    /// The entry for a name as listed: UTF-8 names as they are, others escaped with `raw`
    /// kept.
    pub fn named(
        name: &std::ffi::OsStr,
        lstat: Result<Stat, OsErr>,
        target: Option<Result<Stat, OsErr>>,
    ) -> Entry {
        let (shown, raw) = match name.to_str().map(shown_name) {
            Some(std::borrow::Cow::Borrowed(s)) => (Name::new(s), None),
            _ => (Name::new(&name_of(name)), Some(Box::from(name))),
        };
        let name = shown;
        let extra =
            (raw.is_some() || target.is_some()).then(|| Box::new(EntryExtra { raw, target }));
        Entry { name, lstat, extra }
    }

    /// The name's bytes on disk, when the name is shown escaped.
    pub fn raw(&self) -> Option<&std::ffi::OsStr> {
        self.extra.as_ref()?.raw.as_deref()
    }

    /// `stat` through the link, for a symlink.
    pub fn target(&self) -> Option<&Result<Stat, OsErr>> {
        self.extra.as_ref()?.target.as_ref()
    }

    /// The name on disk is not UTF-8.
    pub fn non_utf8(&self) -> bool {
        self.raw().is_some_and(|r| r.to_str().is_none())
    }

    /// The name on disk is UTF-8 but holds control characters (a newline, ESC …) or a
    /// backslash: it is shown and matched escaped (see [`escape_bytes`]).
    pub fn shown_escaped(&self) -> bool {
        self.raw().is_some_and(|r| r.to_str().is_some())
    }

    /// The name as the filesystem knows it.
    pub fn os_name(&self) -> &std::ffi::OsStr {
        self.raw()
            .unwrap_or_else(|| std::ffi::OsStr::new(&*self.name))
    }

    /// `stat` following symlinks (what `os.path.exists`, `isdir` and `getmtime` see).
    pub fn stat(&self) -> Result<&Stat, &OsErr> {
        match (self.target(), &self.lstat) {
            (Some(t), _) => t.as_ref(),
            (None, l) => l.as_ref(),
        }
    }

    pub fn exists(&self) -> bool {
        self.stat().is_ok()
    }

    /// The version of the file as listed (following a symlink), when it can be examined.
    pub fn file_id(&self) -> Option<FileId> {
        self.stat().ok().map(FileId::from)
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.stat(), Ok(s) if s.kind == FileKind::Dir)
    }

    pub fn is_file(&self) -> bool {
        matches!(self.stat(), Ok(s) if s.kind == FileKind::File)
    }
}

/// The model's form of a name as the filesystem gives it: itself when it is plain UTF-8,
/// else escaped ([`escape_bytes`]). Everything that names an entry — a listing, a watcher's
/// event path — goes through here, so one entry has one name.
pub fn name_of(os: &std::ffi::OsStr) -> String {
    match os.to_str() {
        Some(s)
            if !s
                .chars()
                .any(|c| c == '\\' || crate::report::terminal::dangerous(c)) =>
        {
            s.to_owned()
        }
        _ => escape_bytes(os),
    }
}

/// A name read from a file or a flag (`meta.json`'s `last_ckpt_file`, `resume_training`) in
/// the form the tree's own names take ([`escape_bytes`]): so `a\b_rank_0-20_2.ckpt` from a
/// `meta.json` finds the file listed as `a\x5cb_rank_0-20_2.ckpt`.
pub fn shown_name(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars()
        .any(|c| c == '\\' || crate::report::terminal::dangerous(c))
    {
        std::borrow::Cow::Owned(escape_bytes(std::ffi::OsStr::new(s)))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A name as shown and matched when it is not plain: invalid UTF-8 bytes, control characters
/// (a newline would forge a report line, ESC a terminal sequence) and backslashes written
/// `\xNN` (or `\u{NNNN}`). Escaping the backslash too keeps the mapping one-to-one: every
/// backslash in the result starts an escape, so two different names never look alike.
pub fn escape_bytes(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(&crate::report::terminal::safe(
            &chunk.valid().replace('\\', "\\x5c"),
        ));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The result of listing a directory.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    Entries(Entries),
    Error(OsErr),
}

impl Listing {
    pub fn entries(&self) -> &Entries {
        match self {
            Listing::Entries(e) => e,
            Listing::Error(_) => Entries::empty(),
        }
    }

    /// The entry called `name`.
    pub fn find(&self, name: &str) -> Option<Entry> {
        match self {
            Listing::Entries(e) => e.find(name),
            Listing::Error(_) => None,
        }
    }
}

/// The content of a small file read whole (`meta.json`, `health_ckpts.json`, the resume record).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRead {
    Bytes(Vec<u8>),
    Error(OsErr),
    /// Larger than ckptscope reads into memory for a small control file.
    TooLarge(u64),
    /// A FIFO, socket or device: never opened (reading it could block forever).
    NotRegular(FileKind),
}

/// One sub-folder of the root (normally `rank_R/`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DirNode {
    /// The folder's own `stat`, taken *before* listing it: if its mtime later differs, the
    /// listing may be stale (the watcher's cheap reconcile relists exactly those folders).
    pub stat: Option<Stat>,
    pub listing: Listing,
    /// `meta.json`'s content when the listing has a `meta.json` that `stat` can follow.
    pub meta: Option<FileRead>,
    /// When the folder cannot be listed (no read permission) but can be searched (execute
    /// permission, e.g. mode 0711), the well-known names found by a direct `stat` —
    /// `meta.json` — because Python's `os.path.exists` and `open` work there too.
    pub probed: Vec<Entry>,
    /// Small control files of the folder read whole, by name: a new-format `iteration_*`
    /// folder's `common.json` and `metadata.json` (the resolvers read them from the model, not
    /// the disk, so a simulated edit or a watcher's rescan is seen like everything else).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub control: Vec<(String, FileRead)>,
    /// What the resolvers derive from this listing (cleared by anything that edits it).
    #[serde(skip)]
    pub memo: Memo,
    /// Which root of a job given as several the folder is under ([`Tree::roots`]; 0: the
    /// first, or the only one).
    #[serde(skip_serializing_if = "is_zero")]
    pub origin: u16,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

/// What `stat(root)` says, following symlinks.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RootState {
    #[default]
    Missing,
    Error(OsErr),
    File(Stat),
    Dir(Listing),
    Other(FileKind),
}

/// One version of one file: a verdict is valid only while these stay the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl From<&Stat> for FileId {
    fn from(s: &Stat) -> Self {
        FileId {
            dev: s.dev,
            ino: s.ino,
            size: s.size,
            mtime_ns: saturate(s.mtime_ns()),
            ctime_ns: s.ctime_ns,
        }
    }
}

/// Nanoseconds since the epoch as i64, saturated (a hostile timestamp stays a timestamp).
pub fn saturate(ns: i128) -> i64 {
    ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// A scanned checkpoint tree.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct Tree {
    /// The root exactly as given (MindFormers' `load_checkpoint`, not normalised).
    pub root: String,
    pub state: RootState,
    /// Sub-folders of the root whose name starts with `rank_` (legacy layout) or `iteration_`
    /// (new layout), by name.
    pub dirs: BTreeMap<String, std::sync::Arc<DirNode>>,
    /// Small control files at the root read whole, by name: the new layout's tracker
    /// `latest_checkpointed_iteration.txt`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub root_files: BTreeMap<String, FileRead>,
    /// Verifier results by `(rank folder, file name)`, each for the file version it checked.
    #[serde(skip)]
    pub verdicts: Verdicts,
    /// The roots this tree was merged from, when there were several ([`Tree::merge_roots`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi: Option<Box<MultiRoot>>,
    /// The job's path facts as the host of its first root sees them, when that root is on
    /// another host (its `hello`): they replace the context's, which this machine could not
    /// gather ([`crate::session::Session::from_tree`]).
    #[serde(skip)]
    pub host_paths: Option<Box<crate::resolve::config::PathFacts>>,
}

/// A change to one part of the tree, as a rescan of that part (or the verifier) found it.
#[derive(Clone, Debug, PartialEq)]
pub enum Delta {
    Root(RootState),
    /// One entry of the root listing as it is now (a rank folder's own times change with
    /// every file written in it; relisting the whole root for that would cost a `stat` per
    /// rank).
    RootEntry(Entry),
    Dir(String, Option<std::sync::Arc<DirNode>>),
    /// A control file at the root as read now (`None`: gone), e.g. the tracker.
    RootFile(String, Option<FileRead>),
    /// A verifier result, for the file version it was computed on.
    Verdict(Verified),
    /// The roots of a job given as several, as they are now (their own listings, the folders
    /// under more than one): a root's listing changed.
    Roots(Box<MultiRoot>),
}

impl Tree {
    pub fn root_listing(&self) -> Option<&Listing> {
        match &self.state {
            RootState::Dir(l) => Some(l),
            _ => None,
        }
    }

    /// How many root entries are named `rank_*` — what MindFormers counts as the rank count,
    /// and the world size we assume when the user gives none.
    pub fn rank_entry_count(&self) -> usize {
        self.root_listing().map_or(0, |l| {
            l.entries()
                .iter()
                .filter(|e| e.name.starts_with("rank_"))
                .count()
        })
    }

    /// The path of folder `dir` (and of `file` in it) under `base`, built from the names'
    /// bytes as listed (a name that is not UTF-8 is shown escaped but read as it is).
    pub fn path_of(
        &self,
        base: &std::path::Path,
        dir: &str,
        file: Option<&str>,
    ) -> std::path::PathBuf {
        let d = self.root_entry(dir);
        let base = self.base_of(base, dir);
        let p = base.join(d.as_ref().map_or(std::ffi::OsStr::new(dir), Entry::os_name));
        match file {
            None => p,
            Some(f) => {
                let listed = self.dirs.get(dir).and_then(|n| {
                    n.listing
                        .find(f)
                        .or_else(|| n.probed.iter().find(|e| &*e.name == f).cloned())
                });
                p.join(
                    listed
                        .as_ref()
                        .map_or(std::ffi::OsStr::new(f), Entry::os_name),
                )
            }
        }
    }

    /// The root entry called `name` (e.g. `rank_3`).
    pub fn root_entry(&self, name: &str) -> Option<Entry> {
        self.root_listing().and_then(|l| l.find(name))
    }

    /// Apply a change. Verdicts follow the files: a rescan that finds a file changed (or gone)
    /// drops its verdict, and a verdict computed on an older version is ignored.
    pub fn apply(&mut self, delta: Delta) {
        match delta {
            Delta::Root(state) => self.state = state,
            Delta::Roots(m) => self.multi = Some(m),
            Delta::RootEntry(e) => {
                // a job given as several roots: the folder's own root listing moves too
                let origin = self.dirs.get(&*e.name).map(|n| usize::from(n.origin));
                if let (Some(m), Some(k)) = (self.multi.as_mut(), origin) {
                    if let Some(RootState::Dir(Listing::Entries(es))) =
                        m.roots.get_mut(k).map(|r| &mut r.state)
                    {
                        es.replace(e.clone());
                    }
                }
                if let RootState::Dir(Listing::Entries(entries)) = &mut self.state {
                    entries.replace(e);
                }
            }
            Delta::RootFile(name, read) => match read {
                Some(r) => {
                    self.root_files.insert(name, r);
                }
                None => {
                    self.root_files.remove(&name);
                }
            },
            Delta::Dir(name, node) => {
                match node {
                    Some(node) => self.dirs.insert(name.clone(), node),
                    None => self.dirs.remove(&name),
                };
                let dirs = &self.dirs;
                self.verdicts
                    .retain_in(&name, |f, v| current_id(dirs, &name, f) == Some(v.id));
            }
            Delta::Verdict(v) => {
                if self.current_id(&v.dir, &v.file) == Some(v.id) {
                    let entry = VerdictEntry {
                        id: v.id,
                        check: v.check,
                    };
                    self.verdicts.insert(v.dir, v.file, entry);
                }
            }
        }
    }

    /// The verdict of `dir/name` as the verifier found it, if computed on the file as it is
    /// now (not yet read in the context of its run: see [`Tree::verdict`]).
    pub fn raw_verdict(&self, dir: &str, name: &str) -> Option<&ShardCheck> {
        let v = self.verdicts.get(dir, name)?;
        (self.current_id(dir, name) == Some(v.id)).then_some(&v.check)
    }

    /// The version of `dir/name` as listed; `("", "")` is the root itself when the root is a
    /// single weights file (every rank loads it).
    pub fn current_id(&self, dir: &str, name: &str) -> Option<FileId> {
        match (&self.state, dir, name) {
            (RootState::File(st), "", "") => Some(FileId::from(st)),
            _ => current_id(&self.dirs, dir, name),
        }
    }

    /// The verdict of `dir/name` if it was computed on the file as it is now, read in the
    /// context of the file's run (see [`Verdicts::judged`]).
    pub fn verdict(&self, dir: &str, name: &str) -> Option<std::borrow::Cow<'_, ShardCheck>> {
        let e = self.dirs.get(dir).and_then(|d| d.listing.find(name));
        let in_dir = self.verdicts.in_dir(dir);
        match e {
            Some(e) => self.verdict_of(in_dir, &e),
            None => None,
        }
    }

    /// [`Tree::verdict`] of entry `e` of a folder whose verdicts are `in_dir`
    /// ([`Verdicts::in_dir`]): for a pass over a folder's entries, without looking the folder
    /// and each name up again.
    pub fn verdict_of<'a>(
        &'a self,
        in_dir: Option<&'a verdicts::InDir>,
        e: &Entry,
    ) -> Option<std::borrow::Cow<'a, ShardCheck>> {
        let name: &str = &e.name;
        // a listed shard that cannot be stat-ed (a dangling link, a link loop, a race) is
        // unreadable as listed: no verifier result is needed, and every view says the same
        {
            if let Err(err) = e.stat() {
                if crate::layout::mindformers::classify::classify(name).is_weights() {
                    let link = matches!(&e.lstat, Ok(s) if s.kind == FileKind::Symlink);
                    let detail = if link {
                        format!("a symbolic link whose target cannot be reached ({}): MindSpore cannot open it either", err.text)
                    } else {
                        format!("cannot be examined: {}", err.text)
                    };
                    return Some(std::borrow::Cow::Owned(ShardCheck::new(
                        Verdict::Unreadable,
                        detail,
                        0,
                    )));
                }
            }
        }
        let v = in_dir?.get(name)?;
        let id = e.stat().ok().map(FileId::from);
        (id == Some(v.id)).then(|| self.verdicts.judged(name, &v.check))
    }
}

fn current_id(
    dirs: &BTreeMap<String, std::sync::Arc<DirNode>>,
    dir: &str,
    name: &str,
) -> Option<FileId> {
    dirs.get(dir)?.listing.entries().file_id(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records a 16,384-rank tree holds by the hundred thousand stay this small (the
    /// scale benchmark's memory figures depend on it).
    #[test]
    fn per_shard_records_stay_small() {
        use std::mem::size_of;
        assert_eq!(size_of::<Stat>(), 48);
        assert_eq!(size_of::<Result<Stat, OsErr>>(), 48);
        assert_eq!(size_of::<Entry>(), 96);
        assert_eq!(size_of::<ShardCheck>(), 48);
        assert_eq!(size_of::<VerdictEntry>(), 88);
    }
}
