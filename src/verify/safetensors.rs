//! Safetensors checks that read only the header (and a few scalar entries): the 8-byte length,
//! the JSON header parsed and validated by the `safetensors` crate's `Metadata` (offsets
//! contiguous, sizes matching dtype × shape), the file size it implies, MindSpore's
//! `__metadata__`, and the append entries MindSpore stores as ordinary scalar tensors.

use super::ckpt::APPEND_KEYS;
use crate::model::{AppendValues, Num};
use safetensors::tensor::Metadata;
use safetensors::Dtype;
use std::io::{Read, Seek, SeekFrom};

/// The safetensors format's own limit on the header size.
pub const MAX_HEADER: u64 = 100_000_000;

/// A parsed and validated header.
#[derive(Debug)]
pub struct Header {
    pub header_len: u64,
    pub metadata: Metadata,
    /// `8 + header_len + data length`: the size of a complete file.
    pub expected_size: u64,
    /// The share of the parse budget this header holds while it lives.
    _budget: HeaderBudget,
}

/// Why a header could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than the 8-byte length.
    TooShort(u64),
    /// The declared header length does not fit the file (or the format's 100 MB limit).
    HeaderLenTooLarge {
        declared: u64,
        file: u64,
    },
    /// The header is not valid JSON, or its offsets/sizes are inconsistent.
    Invalid(String),
    Io(String),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::TooShort(n) => {
                write!(f, "{n} bytes, shorter than the 8-byte header length")
            }
            HeaderError::HeaderLenTooLarge { declared, .. } if *declared > MAX_HEADER => {
                write!(
                    f,
                    "header length {declared} is over the format's {MAX_HEADER}-byte limit (the safetensors loader refuses it)"
                )
            }
            HeaderError::HeaderLenTooLarge { declared, file } => {
                write!(
                    f,
                    "header length {declared} does not fit the file ({file} bytes)"
                )
            }
            HeaderError::Invalid(e) => write!(f, "invalid header: {e}"),
            HeaderError::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

/// Read and validate the header of a file of `len` bytes; the cursor is left after it.
pub fn read_header<R: Read + Seek>(mut src: R, len: u64) -> Result<Header, HeaderError> {
    if len < 8 {
        return Err(HeaderError::TooShort(len));
    }
    let mut n = [0u8; 8];
    src.read_exact(&mut n)
        .map_err(|e| HeaderError::Io(e.to_string()))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > MAX_HEADER || header_len > len - 8 {
        return Err(HeaderError::HeaderLenTooLarge {
            declared: header_len,
            file: len,
        });
    }
    let budget = HeaderBudget::acquire(header_len);
    let mut buf = vec![0u8; header_len as usize];
    src.read_exact(&mut buf)
        .map_err(|e| HeaderError::Io(e.to_string()))?;
    let metadata: Metadata =
        serde_json::from_slice(&buf).map_err(|e| HeaderError::Invalid(e.to_string()))?;
    let expected_size = 8 + header_len + metadata.data_len() as u64;
    Ok(Header {
        header_len,
        metadata,
        expected_size,
        _budget: budget,
    })
}

/// The tensor names of the safetensors file at `path`, sorted (the order MindSpore's loader
/// returns them in); `None` when it cannot be opened or its header does not parse. Only the
/// header is read (bounded by [`MAX_HEADER`] and the shared budget).
pub fn tensor_names(fs: &dyn crate::fsys::Fs, path: &std::path::Path) -> Option<Vec<String>> {
    let (file, st) = fs.open(path).ok()?;
    let h = read_header(file, st.size).ok()?;
    let mut names: Vec<String> = h.metadata.tensors().into_keys().collect();
    names.sort();
    Some(names)
}

/// Header bytes that may be parsed at once by all workers together. A parsed header costs
/// about 15× its size (a name, a shape and an index entry per tensor: a 99 MB header of 1.7 M
/// empty tensors takes 1.4 GB), so without a shared budget N workers on N huge headers would
/// need N times that. Headers up to [`BUDGET_FREE`] skip the budget (their parse is a few
/// hundred KB even on 1,024 workers), so a worker stuck reading one huge header on a hung mount
/// never blocks the ordinary ones.
pub const HEADER_BUDGET: u64 = 32 << 20;
pub const BUDGET_FREE: u64 = 16 << 10;
/// Past this size a header's memory is handed back to the system when it is dropped.
const TRIM_ABOVE: u64 = 1 << 20;

static IN_FLIGHT: std::sync::Mutex<u64> = std::sync::Mutex::new(0);
static RELEASED: std::sync::Condvar = std::sync::Condvar::new();

/// A share of [`HEADER_BUDGET`], returned on drop. One header larger than the whole budget
/// still runs — alone.
#[derive(Debug)]
struct HeaderBudget(u64);

impl HeaderBudget {
    fn acquire(n: u64) -> HeaderBudget {
        if n <= BUDGET_FREE {
            return HeaderBudget(0);
        }
        let mut used = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        while *used > 0 && *used + n > HEADER_BUDGET {
            used = RELEASED.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += n;
        HeaderBudget(n)
    }
}

impl Drop for HeaderBudget {
    fn drop(&mut self) {
        if self.0 == 0 {
            return;
        }
        // the parsed header (dropped just before this share) was millions of small
        // allocations in this worker's malloc arena, which glibc keeps unless asked: without
        // this, each worker that parsed a huge header keeps its peak resident
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if self.0 > TRIM_ABOVE {
            // SAFETY: malloc_trim only releases free memory; it has no preconditions
            unsafe {
                libc::malloc_trim(0);
            }
        }
        let mut used = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        *used -= self.0;
        RELEASED.notify_all();
    }
}

/// The append entries stored as scalar tensors.
pub fn append_values<R: Read + Seek>(mut src: R, h: &Header, len: u64) -> AppendValues {
    let mut out = AppendValues::default();
    let base = 8 + h.header_len;
    for key in APPEND_KEYS {
        let Some(t) = h.metadata.info(key) else {
            continue;
        };
        let (start, end) = (t.data_offsets.0 as u64, t.data_offsets.1 as u64);
        let n = end.saturating_sub(start);
        if n > 8 || base + end > len {
            continue;
        }
        let mut b = [0u8; 8];
        if src.seek(SeekFrom::Start(base + start)).is_err()
            || src.read_exact(&mut b[..n as usize]).is_err()
        {
            continue;
        }
        let v = match (t.dtype, n) {
            (Dtype::I64, 8) => Num::Int(i64::from_le_bytes(b)),
            (Dtype::I32, 4) => Num::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64),
            (Dtype::F32, 4) => Num::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            (Dtype::F64, 8) => Num::Float(f64::from_le_bytes(b)),
            _ => continue,
        };
        match key {
            "epoch_num" => out.epoch_num = Some(v),
            "step_num" => out.step_num = Some(v),
            "global_step" => out.global_step = Some(v),
            "loss_scale" => out.loss_scale = Some(v),
            _ => out.global_batch_size = Some(v),
        }
    }
    out
}

/// Read the append entries of a safetensors file on disk.
pub fn append_values_path(path: &std::path::Path) -> Option<AppendValues> {
    let f = crate::fsys::open_regular(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut r = std::io::BufReader::new(f);
    let h = read_header(&mut r, len).ok()?;
    Some(append_values(&mut r, &h, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over the format's limit is said as such, not as "does not fit the file".
    #[test]
    fn header_length_errors_name_the_real_cause() {
        let mut f = (MAX_HEADER + 1).to_le_bytes().to_vec();
        f.resize(8 + 16, b' ');
        let big = 200_000_000;
        let e = read_header(std::io::Cursor::new(&f), big).unwrap_err();
        assert!(
            e.to_string()
                .contains("over the format's 100000000-byte limit"),
            "{e}"
        );
        let mut f = 1000u64.to_le_bytes().to_vec();
        f.resize(8 + 16, b' ');
        let e = read_header(std::io::Cursor::new(&f), 24).unwrap_err();
        assert_eq!(
            e.to_string(),
            "header length 1000 does not fit the file (24 bytes)"
        );
    }
}
