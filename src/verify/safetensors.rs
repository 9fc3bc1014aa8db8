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
    })
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
