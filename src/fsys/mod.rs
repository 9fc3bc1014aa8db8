//! The filesystem seam: every read ckptscope makes of a user's tree goes through [`Fs`], so tests
//! can inject errors that root cannot produce with `chmod` (permission denied, vanishing files).
//! The real implementation only ever opens files read-only and never opens non-regular files.

pub mod elsewhere;
mod listdir;

use crate::model::{FileKind, FileRead, OsErr, Stat};
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// One listed name with its `lstat` result.
pub struct RawEntry {
    pub name: OsString,
    pub lstat: io::Result<Stat>,
}

/// A file opened for reading (seekable: the `.ckpt` walker skips tensor payloads).
pub trait ReadSeek: io::Read + io::Seek + Send {
    /// `fstat` of the open file, when it has a descriptor: whether the very file that was read
    /// changed meanwhile, without walking its path again (a third of the system calls of a
    /// cheap check on a tree of small files). `None`: ask the filesystem by path.
    fn restat(&self) -> Option<io::Result<Stat>> {
        None
    }
}

impl ReadSeek for fs::File {
    fn restat(&self) -> Option<io::Result<Stat>> {
        Some(self.metadata().map(|m| stat_of(&m)))
    }
}

impl<T: AsRef<[u8]> + Send> ReadSeek for io::Cursor<T> {}

/// Where `/proc/self/mounts` is: the mount table every job context reads.
pub const MOUNT_TABLE: &str = "/proc/self/mounts";

/// Read-only filesystem access.
pub trait Fs: Sync + Send {
    /// `stat`, following symlinks.
    fn stat(&self, path: &Path) -> io::Result<Stat>;
    /// `lstat`: the link itself (seams without symlinks may use `stat`).
    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        self.stat(path)
    }
    /// List a directory in `readdir` order, with each entry's `lstat`.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<RawEntry>>;
    /// Read a small regular file whole, refusing files over `limit` bytes and non-regular files.
    fn read_small(&self, path: &Path, limit: u64) -> FileRead;
    /// [`Fs::read_small`] of a file that a listing has just shown to be regular: the real
    /// filesystem skips the path `stat` before opening (the type is still checked on the open
    /// file, and a FIFO swapped in meanwhile is opened non-blocking) — one system call less
    /// for each of 16,384 `meta.json` files.
    fn read_regular(&self, path: &Path, limit: u64) -> FileRead {
        self.read_small(path, limit)
    }
    /// Open a regular file read-only (never blocking on a FIFO), with its `fstat`.
    fn open(&self, path: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)>;
    /// Resolve symlinks and `..` (the path must exist).
    fn canonicalize(&self, path: &Path) -> io::Result<std::path::PathBuf>;
    /// Make what this seam answers about `root` current: a store without change events (object
    /// storage) lists the root again here, at each poll of a watch. The line says what that
    /// cost, or why it failed (the last listing is then kept). `None`: nothing to refresh —
    /// a filesystem is asked afresh on every call.
    fn refresh(&self, _root: &Path) -> Option<Result<String, String>> {
        None
    }
    /// How many reads to keep in flight when many files are read (`None`: one per core). A
    /// store across a network answers each request after its own latency, not a core's work:
    /// object storage wants many more.
    fn concurrency(&self) -> Option<usize> {
        None
    }
    /// What reading cost where it is not free (requests to object storage), one line per
    /// store: a one-shot command ends with it on its error output.
    fn costs(&self) -> Vec<String> {
        Vec::new()
    }
    /// The text of the mount table (`/proc/self/mounts`), or `None` when it cannot be read.
    fn mount_table(&self) -> Option<String> {
        match self.read_small(Path::new(MOUNT_TABLE), 16 << 20) {
            FileRead::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        }
    }
}

/// How many files to read at once through `fs` ([`Fs::concurrency`], else one per core).
pub fn readers(fs: &dyn Fs) -> usize {
    fs.concurrency()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The real filesystem.
#[derive(Clone, Copy, Default)]
pub struct RealFs;

/// The kind of file an `st_mode` says (one mapping for `std`'s metadata and raw `fstatat`).
pub(crate) fn kind_of_mode(mode: u32) -> FileKind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::File,
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        libc::S_IFIFO => FileKind::Fifo,
        libc::S_IFSOCK => FileKind::Socket,
        libc::S_IFCHR => FileKind::CharDevice,
        libc::S_IFBLK => FileKind::BlockDevice,
        _ => FileKind::Other,
    }
}

pub fn stat_of(md: &fs::Metadata) -> Stat {
    let kind = kind_of_mode(md.mode());
    Stat {
        kind,
        size: md.size(),
        mtime_sec: md.mtime(),
        mtime_nsec: md.mtime_nsec().clamp(0, 999_999_999) as u32,
        ino: md.ino(),
        dev: md.dev(),
        mode: (md.mode() & 0xffff) as u16,
        ctime_ns: crate::model::saturate(
            md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
        ),
    }
}

/// Open for reading without following a FIFO into a blocking open, and check after opening that
/// the object really is a regular file (it may have been replaced since the `stat`).
pub fn open_regular(path: &Path) -> io::Result<fs::File> {
    open_regular_stat(path).map(|(f, _)| f)
}

/// [`open_regular`], with the file's metadata (one `fstat`, used for the type check too).
pub fn open_regular_stat(path: &Path) -> io::Result<(fs::File, fs::Metadata)> {
    let f = fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer;
        // O_NOCTTY: a terminal swapped in never becomes the controlling one
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok((f, md))
}

/// Folders with at least this many entries are `lstat`-ed on every core.
const PARALLEL_STAT: usize = 4_096;

impl Fs for RealFs {
    fn stat(&self, path: &Path) -> io::Result<Stat> {
        fs::metadata(path).map(|m| stat_of(&m))
    }

    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        fs::symlink_metadata(path).map(|m| stat_of(&m))
    }

    fn open(&self, path: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)> {
        let (f, md) = open_regular_stat(path)?;
        Ok((Box::new(f), stat_of(&md)))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<std::path::PathBuf> {
        fs::canonicalize(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<RawEntry>> {
        let dir = listdir::open_dir(path)?;
        let listed = listdir::names(&dir)?;
        let raw = |name: std::ffi::OsString| RawEntry {
            lstat: listdir::lstat_at(&dir, name.as_os_str()),
            name,
        };
        if listed.len() < PARALLEL_STAT {
            return Ok(listed.into_iter().map(raw).collect());
        }
        // one huge folder (100,000 checkpoints): its `lstat` calls on every core, in order
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = listed.len().div_ceil(cores);
        let mut listed = listed.into_iter();
        Ok(std::thread::scope(|s| {
            let parts: Vec<_> = (0..cores)
                .map(|_| {
                    let c: Vec<_> = listed.by_ref().take(chunk).collect();
                    let raw = &raw;
                    s.spawn(move || c.into_iter().map(raw).collect::<Vec<_>>())
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        }))
    }

    fn read_small(&self, path: &Path, limit: u64) -> FileRead {
        let md = match fs::metadata(path) {
            Ok(m) => stat_of(&m),
            Err(e) => return FileRead::Error(OsErr::from_io(&e)),
        };
        match md.kind {
            FileKind::File => {}
            FileKind::Dir => return FileRead::Error(OsErr::errno(21)),
            other => return FileRead::NotRegular(other),
        }
        if md.size > limit {
            return FileRead::TooLarge(md.size);
        }
        read_open(path, limit)
    }

    fn read_regular(&self, path: &Path, limit: u64) -> FileRead {
        read_open(path, limit)
    }
}

/// Open `path` (non-blocking), check on the open file that it is regular and within `limit`,
/// and read it whole.
fn read_open(path: &Path, limit: u64) -> FileRead {
    let (f, md) = match open_regular_stat(path) {
        Ok(x) => x,
        Err(e) if e.raw_os_error().is_none() => {
            // not a regular file: say what it is
            return match fs::metadata(path) {
                Ok(m) if m.is_dir() => FileRead::Error(OsErr::errno(21)),
                Ok(m) => FileRead::NotRegular(stat_of(&m).kind),
                Err(e) => FileRead::Error(OsErr::from_io(&e)),
            };
        }
        Err(e) => return FileRead::Error(OsErr::from_io(&e)),
    };
    if md.len() > limit {
        return FileRead::TooLarge(md.len());
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    match f.take(limit + 1).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > limit => FileRead::TooLarge(buf.len() as u64),
        Ok(_) => FileRead::Bytes(buf),
        Err(e) => FileRead::Error(OsErr::from_io(&e)),
    }
}

/// A test seam: the real filesystem, except that chosen paths fail with chosen errno values
/// (`read_dir`, `read_small` and `open` of that path), chosen entries vanish between `readdir`
/// and their `stat` (listed, but `lstat` fails with ENOENT), as in a race with a writer, and
/// the mount table can be replaced (to put a folder on NFS or Lustre).
#[derive(Default)]
pub struct FaultyFs {
    pub faults: Vec<(std::path::PathBuf, i32)>,
    pub vanish: Vec<std::path::PathBuf>,
    pub mount_table: Option<String>,
}

impl FaultyFs {
    fn fault(&self, path: &Path) -> Option<io::Error> {
        self.faults
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, errno)| io::Error::from_raw_os_error(*errno))
    }
}

impl Fs for FaultyFs {
    fn stat(&self, path: &Path) -> io::Result<Stat> {
        RealFs.stat(path)
    }

    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        RealFs.lstat(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<RawEntry>> {
        let mut entries = match self.fault(path) {
            Some(e) => return Err(e),
            None => RealFs.read_dir(path)?,
        };
        for e in entries.iter_mut() {
            if self.vanish.contains(&path.join(&e.name)) {
                e.lstat = Err(io::Error::from_raw_os_error(2));
            }
        }
        Ok(entries)
    }

    fn read_small(&self, path: &Path, limit: u64) -> FileRead {
        match self.fault(path) {
            Some(e) => FileRead::Error(OsErr::from_io(&e)),
            None => RealFs.read_small(path, limit),
        }
    }

    fn open(&self, path: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)> {
        match self.fault(path) {
            Some(e) => Err(e),
            None => RealFs.open(path),
        }
    }

    fn canonicalize(&self, path: &Path) -> io::Result<std::path::PathBuf> {
        RealFs.canonicalize(path)
    }

    fn mount_table(&self) -> Option<String> {
        self.mount_table.clone().or_else(|| RealFs.mount_table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_regular` skips the `stat` before opening, so what the open finds decides: a FIFO
    /// swapped in after the listing is opened without blocking and refused as a FIFO, a folder
    /// as EISDIR, a file over the limit as too large, a missing one as ENOENT.
    #[test]
    fn read_regular_refuses_what_is_not_a_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("meta.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "mkfifo is needed for this test"
        );
        // no writer: a blocking open would hang here
        assert_eq!(
            RealFs.read_regular(&fifo, 100),
            FileRead::NotRegular(FileKind::Fifo)
        );
        assert_eq!(
            RealFs.read_regular(tmp.path(), 100),
            FileRead::Error(OsErr::errno(21))
        );
        let big = tmp.path().join("big.json");
        std::fs::write(&big, vec![b' '; 101]).unwrap();
        assert_eq!(RealFs.read_regular(&big, 100), FileRead::TooLarge(101));
        assert_eq!(
            RealFs.read_regular(&big, 101),
            FileRead::Bytes(vec![b' '; 101])
        );
        let gone = tmp.path().join("gone.json");
        assert_eq!(
            RealFs.read_regular(&gone, 100),
            FileRead::Error(OsErr::errno(2))
        );
    }
}
