//! Minimal protobuf wire-format reading over a seekable byte source, bounded by explicit limits.
//!
//! Why by hand: prost and protobuf-rs decode whole messages into memory, and a MindSpore record
//! holds a tensor of up to 512 MiB. Checking a shard's structure must read only the few bytes of
//! each header and *seek past* the payloads, so the walker drives the wire format itself. Every
//! length is checked against the end of its enclosing message before anything is read or
//! allocated.

use std::io::{self, Read, Seek, SeekFrom};

/// Why a walk stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The data ends before a declared length or varint is complete.
    Eof,
    /// The bytes do not follow the wire format (bad wire type, over-long varint, a length that
    /// leaves its enclosing message).
    Malformed(&'static str),
    Io(String),
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            WireError::Eof
        } else {
            WireError::Io(e.to_string())
        }
    }
}

/// Skips up to this many bytes by reading through the buffer instead of seeking.
const SHORT_SKIP: u64 = 16 * 1024;

/// A reader that knows its position and the length of the whole source.
pub struct Cursor<R> {
    inner: R,
    pub pos: u64,
    pub len: u64,
}

impl<R: Read + Seek> Cursor<R> {
    pub fn new(inner: R, len: u64) -> Self {
        Cursor { inner, pos: 0, len }
    }

    pub fn byte(&mut self) -> Result<u8, WireError> {
        if self.pos >= self.len {
            return Err(WireError::Eof);
        }
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b)?;
        self.pos += 1;
        Ok(b[0])
    }

    /// A varint that must end before `limit`.
    pub fn varint(&mut self, limit: u64) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            if self.pos >= limit {
                return Err(if limit >= self.len {
                    WireError::Eof
                } else {
                    WireError::Malformed("varint runs past its message")
                });
            }
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Malformed("varint longer than 10 bytes"))
    }

    /// Read `n` bytes (the caller bounds `n`).
    pub fn bytes(&mut self, n: u64) -> Result<Vec<u8>, WireError> {
        if self.pos + n > self.len {
            return Err(WireError::Eof);
        }
        let mut buf = vec![0u8; n as usize];
        self.inner.read_exact(&mut buf)?;
        self.pos += n;
        Ok(buf)
    }

    /// Move forward by `n` bytes. Short distances are read and dropped (a seek would throw away
    /// a `BufReader`'s buffer and cost a system call per small tensor); long ones are seeked.
    pub fn skip(&mut self, n: u64) -> Result<(), WireError> {
        if self.pos + n > self.len {
            return Err(WireError::Eof);
        }
        if n <= SHORT_SKIP {
            let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())?;
            if copied != n {
                return Err(WireError::Eof);
            }
        } else {
            self.inner.seek(SeekFrom::Current(n as i64))?;
        }
        self.pos += n;
        Ok(())
    }

    pub fn seek_to(&mut self, pos: u64) -> Result<(), WireError> {
        self.inner.seek(SeekFrom::Start(pos))?;
        self.pos = pos;
        Ok(())
    }
}

/// One field key and, for length-delimited fields, the checked payload length.
pub struct Field {
    pub number: u64,
    pub wire: u8,
    pub len: u64,
}

/// Read a field key inside a message ending at `end`; for wire type 2, also its length,
/// checked against `end`. Wire types 0, 1 and 5 are left for the caller to read or skip.
pub fn field<R: Read + Seek>(c: &mut Cursor<R>, end: u64) -> Result<Field, WireError> {
    let key = c.varint(end)?;
    let wire = (key & 7) as u8;
    let number = key >> 3;
    let len = match wire {
        2 => {
            let n = c.varint(end)?;
            if c.pos.saturating_add(n) > end {
                return Err(if end >= c.len && c.pos.saturating_add(n) > c.len {
                    WireError::Eof
                } else {
                    WireError::Malformed("a length runs past its message")
                });
            }
            n
        }
        0 | 1 | 5 => 0,
        _ => return Err(WireError::Malformed("unsupported wire type")),
    };
    Ok(Field { number, wire, len })
}

/// Skip the value of a non-length-delimited field.
pub fn skip_scalar<R: Read + Seek>(
    c: &mut Cursor<R>,
    f: &Field,
    end: u64,
) -> Result<(), WireError> {
    match f.wire {
        0 => c.varint(end).map(|_| ()),
        1 => bounded_skip(c, 8, end),
        5 => bounded_skip(c, 4, end),
        _ => c.skip(f.len),
    }
}

fn bounded_skip<R: Read + Seek>(c: &mut Cursor<R>, n: u64, end: u64) -> Result<(), WireError> {
    if c.pos + n > end {
        return Err(if end >= c.len {
            WireError::Eof
        } else {
            WireError::Malformed("a field runs past its message")
        });
    }
    c.skip(n)
}
