//! An in-memory filesystem behind the `Fs` seam: tests drive the watcher (and the whole
//! session) through it deterministically — change the "disk", ask for a resync, wait for the
//! deltas — without sleeping and without touching real files.

use ckptscope::fsys::{Fs, RawEntry, ReadSeek};
use ckptscope::model::{FileKind, FileRead, OsErr, Stat};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Clone)]
enum Node {
    Dir,
    File(Vec<u8>),
}

#[derive(Clone)]
struct Entry {
    node: Node,
    ino: u64,
    mtime: i64,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<PathBuf, Entry>,
    next_ino: u64,
    clock: i64,
}

/// Absolute paths only; parents are created as needed. Every change ticks a clock used as the
/// mtime of the changed node and of its folder (as a real filesystem does).
#[derive(Default)]
pub struct MemFs {
    state: Mutex<State>,
}

impl State {
    fn touch(&mut self, p: &Path, node: Node) {
        self.clock += 1;
        let (clock, ino) = (self.clock, self.next_ino + 1);
        self.next_ino += 1;
        if let Some(parent) = p.parent() {
            if !self.nodes.contains_key(parent) && parent != p {
                self.touch(parent, Node::Dir);
            }
            if let Some(e) = self.nodes.get_mut(parent) {
                e.mtime = clock;
            }
        }
        let ino = self.nodes.get(p).map_or(ino, |e| e.ino);
        self.nodes.insert(
            p.to_path_buf(),
            Entry {
                node,
                ino,
                mtime: clock,
            },
        );
    }
}

impl MemFs {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn mkdir(&self, p: &Path) {
        self.lock().touch(p, Node::Dir);
    }

    /// Write (or overwrite in place: same inode) a file.
    pub fn write(&self, p: &Path, bytes: &[u8]) {
        self.lock().touch(p, Node::File(bytes.to_vec()));
    }

    /// Remove a file or a folder and everything under it.
    pub fn remove(&self, p: &Path) {
        let mut s = self.lock();
        s.nodes.retain(|k, _| !k.starts_with(p));
        s.clock += 1;
        let clock = s.clock;
        if let Some(e) = p.parent().and_then(|d| s.nodes.get_mut(d)) {
            e.mtime = clock;
        }
    }

    fn get(&self, p: &Path) -> io::Result<Entry> {
        self.lock()
            .nodes
            .get(p)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(2))
    }
}

fn stat(e: &Entry) -> Stat {
    let (kind, size) = match &e.node {
        Node::Dir => (FileKind::Dir, 4096),
        Node::File(b) => (FileKind::File, b.len() as u64),
    };
    Stat {
        kind,
        size,
        mtime_sec: e.mtime,
        mtime_nsec: 0,
        ino: e.ino,
        dev: 7,
        mode: 0o640,
        ctime_ns: e.mtime * 1_000_000_000,
    }
}

impl Fs for MemFs {
    fn stat(&self, p: &Path) -> io::Result<Stat> {
        self.get(p).map(|e| stat(&e))
    }

    fn read_dir(&self, p: &Path) -> io::Result<Vec<RawEntry>> {
        match self.get(p)?.node {
            Node::Dir => {}
            Node::File(_) => return Err(io::Error::from_raw_os_error(20)),
        }
        let s = self.lock();
        Ok(s.nodes
            .range(p.to_path_buf()..)
            .take_while(|(k, _)| k.starts_with(p))
            .filter(|(k, _)| k.parent() == Some(p))
            .map(|(k, e)| RawEntry {
                name: k.file_name().unwrap().to_owned(),
                lstat: Ok(stat(e)),
            })
            .collect())
    }

    fn read_small(&self, p: &Path, limit: u64) -> FileRead {
        match self.get(p) {
            Ok(Entry {
                node: Node::File(b),
                ..
            }) if b.len() as u64 > limit => FileRead::TooLarge(b.len() as u64),
            Ok(Entry {
                node: Node::File(b),
                ..
            }) => FileRead::Bytes(b),
            Ok(_) => FileRead::Error(OsErr::errno(21)),
            Err(e) => FileRead::Error(OsErr::from_io(&e)),
        }
    }

    fn open(&self, p: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)> {
        let e = self.get(p)?;
        match &e.node {
            Node::File(b) => Ok((Box::new(io::Cursor::new(b.clone())), stat(&e))),
            Node::Dir => Err(io::Error::from_raw_os_error(21)),
        }
    }

    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
        self.get(p).map(|_| p.to_path_buf())
    }

    fn mount_table(&self) -> Option<String> {
        Some("mem / memfs rw 0 0\n".into())
    }
}
