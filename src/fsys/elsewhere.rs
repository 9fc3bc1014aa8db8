//! A filesystem seam for a job whose checkpoint folder is on another host (an `ssh://` root):
//! the job context is gathered as that host would see it from what the command line says
//! (paths taken lexically, no mount table), never from whatever this machine happens to hold
//! at the same path. Only the files named here (the `--config` YAML) are read, locally.

use super::{Fs, RawEntry, ReadSeek};
use crate::model::{FileRead, OsErr, Stat};
use std::io;
use std::path::{Path, PathBuf};

pub struct Elsewhere<'a> {
    pub inner: &'a dyn Fs,
    /// The local files that may be read.
    pub local: Vec<PathBuf>,
}

fn elsewhere(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} is on the remote host", path.display()),
    )
}

impl Elsewhere<'_> {
    fn is_local(&self, path: &Path) -> bool {
        self.local.iter().any(|p| p == path)
    }
}

impl Fs for Elsewhere<'_> {
    fn stat(&self, path: &Path) -> io::Result<Stat> {
        match self.is_local(path) {
            true => self.inner.stat(path),
            false => Err(elsewhere(path)),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<RawEntry>> {
        Err(elsewhere(path))
    }

    fn read_small(&self, path: &Path, limit: u64) -> FileRead {
        match self.is_local(path) {
            true => self.inner.read_small(path, limit),
            false => FileRead::Error(OsErr::errno(libc::ENOENT)),
        }
    }

    fn open(&self, path: &Path) -> io::Result<(Box<dyn ReadSeek>, Stat)> {
        match self.is_local(path) {
            true => self.inner.open(path),
            false => Err(elsewhere(path)),
        }
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Err(elsewhere(path))
    }

    fn mount_table(&self) -> Option<String> {
        None
    }
}
