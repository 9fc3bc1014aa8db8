//! Safetensors header reading: the 8-byte length, the JSON header, and the few scalar append
//! entries MindSpore stores as ordinary tensors. Only the header and those scalars are read.

use super::ckpt::{AppendValues, Num, APPEND_KEYS};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

/// The safetensors format's own limit on the header size.
pub const MAX_HEADER: u64 = 100_000_000;

#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub dtype: String,
    pub shape: Vec<u64>,
    pub data_offsets: (u64, u64),
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub header_len: u64,
    pub tensors: BTreeMap<String, TensorInfo>,
    pub metadata: BTreeMap<String, String>,
    /// `8 + header_len + max(end offset)`: the size of a complete file.
    pub expected_size: u64,
}

/// Why a header could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderError {
    TooShort(u64),
    HeaderLenTooLarge(u64),
    Json(String),
    Io(String),
}

pub fn read_header<R: Read + Seek>(mut src: R, len: u64) -> Result<Header, HeaderError> {
    if len < 8 {
        return Err(HeaderError::TooShort(len));
    }
    let mut n = [0u8; 8];
    src.read_exact(&mut n)
        .map_err(|e| HeaderError::Io(e.to_string()))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > MAX_HEADER || header_len > len - 8 {
        return Err(HeaderError::HeaderLenTooLarge(header_len));
    }
    let mut buf = vec![0u8; header_len as usize];
    src.read_exact(&mut buf)
        .map_err(|e| HeaderError::Io(e.to_string()))?;
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&buf).map_err(|e| HeaderError::Json(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    for (k, v) in raw {
        if k == "__metadata__" {
            metadata = serde_json::from_value(v).map_err(|e| HeaderError::Json(e.to_string()))?;
        } else {
            let t: TensorInfo =
                serde_json::from_value(v).map_err(|e| HeaderError::Json(format!("{k}: {e}")))?;
            tensors.insert(k, t);
        }
    }
    let data_end = tensors
        .values()
        .map(|t| t.data_offsets.1)
        .max()
        .unwrap_or(0);
    Ok(Header {
        header_len,
        tensors,
        metadata,
        expected_size: 8 + header_len + data_end,
    })
}

/// The append entries stored as scalar tensors.
pub fn append_values<R: Read + Seek>(mut src: R, h: &Header, len: u64) -> AppendValues {
    let mut out = AppendValues::default();
    let base = 8 + h.header_len;
    for key in APPEND_KEYS {
        let Some(t) = h.tensors.get(key) else {
            continue;
        };
        let (start, end) = t.data_offsets;
        let n = end.saturating_sub(start);
        if n > 8 || base + end > len {
            continue;
        }
        let mut b = vec![0u8; n as usize];
        if src.seek(SeekFrom::Start(base + start)).is_err() || src.read_exact(&mut b).is_err() {
            continue;
        }
        let v = match (t.dtype.as_str(), b.len()) {
            ("I64", 8) => Num::Int(i64::from_le_bytes(b[..8].try_into().unwrap_or_default())),
            ("I32", 4) => {
                Num::Int(i32::from_le_bytes(b[..4].try_into().unwrap_or_default()) as i64)
            }
            ("F32", 4) => {
                Num::Float(f32::from_le_bytes(b[..4].try_into().unwrap_or_default()) as f64)
            }
            ("F64", 8) => Num::Float(f64::from_le_bytes(b[..8].try_into().unwrap_or_default())),
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
