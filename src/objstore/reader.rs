//! An object read as a seekable file through ranged `GET`s: a seek costs nothing, a read
//! fetches the next window from where it is. The `.ckpt` walker skips tensor payloads by
//! seeking, so a cheap check reads the records' headers (a window each) and not the tensors; a
//! small file is read whole in one request (the checker reads files under 256 KiB at once).

use super::store::Client;
use crate::fsys::ReadSeek;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// Bytes fetched per request when the caller asks for less (the walker reads a record header
/// a few bytes at a time; the window keeps that to one request per record).
const WINDOW: u64 = 64 * 1024;

pub struct RangedReader {
    client: Arc<Client>,
    key: String,
    size: u64,
    pos: u64,
    /// The window fetched last and where it starts.
    buf: Vec<u8>,
    buf_at: u64,
    /// A read found the object gone or shorter than listed: it changed in the bucket while
    /// it was read ([`ReadSeek::restat`] says so, and the check is "changed", not "damaged").
    gone: bool,
}

impl RangedReader {
    pub fn new(client: Arc<Client>, key: String, size: u64) -> RangedReader {
        RangedReader {
            client,
            key,
            size,
            pos: 0,
            buf: Vec::new(),
            buf_at: 0,
            gone: false,
        }
    }
}

impl Read for RangedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let in_buf = self.pos >= self.buf_at && self.pos < self.buf_at + self.buf.len() as u64;
        if !in_buf {
            let want = (out.len() as u64).max(WINDOW).min(self.size - self.pos);
            self.buf = match self.client.range(&self.key, self.pos, want) {
                Ok(b) => b,
                Err(e) => {
                    use io::ErrorKind::{NotFound, UnexpectedEof};
                    self.gone = matches!(e.kind(), NotFound | UnexpectedEof);
                    return Err(e);
                }
            };
            self.buf_at = self.pos;
            if self.buf.is_empty() {
                // the object is shorter than listed (rewritten meanwhile): an end, as a
                // truncated file's
                return Ok(0);
            }
        }
        let from = (self.pos - self.buf_at) as usize;
        let n = out.len().min(self.buf.len() - from);
        out[..n].copy_from_slice(&self.buf[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let next = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

impl ReadSeek for RangedReader {
    /// Only what the reads themselves showed: the object gone or cut short. Otherwise the
    /// listing's version stands (a rewrite of the same size within the reads is not seen: the
    /// reads are not conditional; the next listing gives the new version its own check).
    fn restat(&self) -> Option<io::Result<crate::model::Stat>> {
        self.gone.then(|| {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                "gone from the bucket or shorter than listed",
            ))
        })
    }
}
