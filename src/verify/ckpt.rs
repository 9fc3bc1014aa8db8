//! Streaming walk of a MindSpore `.ckpt` (spec §9.1–§9.5): a concatenation of protobuf records,
//! `0a <len> Value{tag, TensorProto{dims, tensor_type, tensor_content}}`, optionally followed by
//! a 17-byte CRC trailer. Only record headers, tags, types and dims are read; tensor payloads
//! are skipped with a seek, except the few bytes of the append entries (`epoch_num`,
//! `step_num`, `global_step`, `loss_scale`, `global_batch_size`). Memory use is bounded whatever
//! the file size, and no declared length is ever allocated before it is checked.

use super::proto::{field, skip_scalar, Cursor, Field, WireError};
use crate::model::{AppendValues, Num};
use serde::Serialize;
use std::io::{Read, Seek};

/// Names of the append entries MindFormers stores at the end of every checkpoint.
pub const APPEND_KEYS: [&str; 5] = [
    "epoch_num",
    "step_num",
    "global_step",
    "loss_scale",
    "global_batch_size",
];

const TRAILER_LEN: u64 = 17;
const MAX_TAG: u64 = 64 * 1024;
const MAX_TYPE: u64 = 64;
/// More dims than numpy holds (32, or 64 since numpy 2): MindSpore cannot load the tensor, and
/// a hostile packed field of zero bytes must not become a list of millions of dims.
pub const MAX_DIMS: usize = 64;
/// Tensor issues kept in full (the rest are counted): one is enough for the verdict.
pub const MAX_ISSUES: usize = 16;

/// How the record stream ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamEnd {
    /// Every byte up to the end (or the CRC trailer) belongs to a complete record.
    Complete,
    Empty,
    /// A record starting at `record_offset` needs bytes past the end of the file.
    Truncated {
        record_offset: u64,
    },
    /// Bytes that are not a record (garbage, a wrong field) at `offset`.
    Malformed {
        offset: u64,
        why: String,
    },
    /// An encryption magic (`AES-GCM`, `AES-CBC`, `SM4-CBC`): not inspectable without the key.
    Encrypted {
        algorithm: String,
    },
    Io {
        error: String,
    },
}

/// One tensor whose content length disagrees with its dims and type (the loader zero-fills a
/// short one and ignores extra bytes), or whose type MindSpore does not know.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorIssue {
    pub tag: String,
    pub tensor_type: String,
    pub dims: Vec<u64>,
    pub expected_bytes: Option<u64>,
    pub content_bytes: u64,
}

/// The result of walking one file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CkptWalk {
    pub size: u64,
    pub records: u64,
    pub end: StreamEnd,
    /// The CRC value stored in a trailer, if there is one.
    pub crc_trailer: Option<u64>,
    pub append: AppendValues,
    /// Append-entry names in the order they appear.
    pub append_order: Vec<String>,
    pub tensor_issues: Vec<TensorIssue>,
    /// Issues found beyond the [`MAX_ISSUES`] kept.
    pub more_tensor_issues: u64,
    /// Every record's header facts, when asked for (see [`walk_detailed`]).
    pub record_list: Vec<RecordInfo>,
}

/// One record's place and header facts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordInfo {
    pub offset: u64,
    pub len: u64,
    pub tag: String,
    pub tensor_type: String,
    pub dims: Vec<u64>,
    pub content_len: u64,
}

struct Record {
    tag: String,
    tensor_type: String,
    dims: Vec<u64>,
    content_len: u64,
    content: Option<Vec<u8>>,
}

/// Walk a `.ckpt` of `len` bytes.
pub fn walk<R: Read + Seek>(src: R, len: u64) -> CkptWalk {
    walk_inner(src, len, false)
}

/// Walk and also list every record (offset, length, tag, type, dims, content length).
pub fn walk_detailed<R: Read + Seek>(src: R, len: u64) -> CkptWalk {
    walk_inner(src, len, true)
}

fn walk_inner<R: Read + Seek>(src: R, len: u64, detailed: bool) -> CkptWalk {
    let mut c = Cursor::new(src, len);
    let mut w = CkptWalk {
        size: len,
        records: 0,
        end: StreamEnd::Complete,
        crc_trailer: None,
        append: AppendValues::default(),
        append_order: Vec::new(),
        tensor_issues: Vec::new(),
        more_tensor_issues: 0,
        record_list: Vec::new(),
    };
    if len == 0 {
        w.end = StreamEnd::Empty;
        return w;
    }
    match head(&mut c) {
        Err(e) => {
            w.end = StreamEnd::Io {
                error: format!("{e:?}"),
            };
            return w;
        }
        Ok((Some(algo), _)) => {
            w.end = StreamEnd::Encrypted {
                algorithm: algo.into(),
            };
            return w;
        }
        Ok((None, crc)) => w.crc_trailer = crc,
    }
    let stream_end = if w.crc_trailer.is_some() {
        len - TRAILER_LEN
    } else {
        len
    };
    w.end = records(&mut c, stream_end, &mut w, detailed);
    w
}

/// Detect an encryption magic and read a CRC trailer; leaves the cursor at 0.
fn head<R: Read + Seek>(
    c: &mut Cursor<R>,
) -> Result<(Option<&'static str>, Option<u64>), WireError> {
    let magic = c.bytes(c.len.min(4))?;
    if magic.len() == 4 {
        let m = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
        let algo = match m {
            0x7F3A_5ED8 => Some("AES-GCM"),
            0x7F3A_5ED9 => Some("AES-CBC"),
            0x7F3A_5EDA => Some("SM4-CBC"),
            _ => None,
        };
        if algo.is_some() {
            return Ok((algo, None));
        }
    }
    let mut crc = None;
    if c.len >= TRAILER_LEN {
        c.seek_to(c.len - TRAILER_LEN)?;
        let t = c.bytes(TRAILER_LEN)?;
        if &t[..7] == b"crc_num" {
            crc = Some(t[7..].iter().fold(0u64, |acc, b| (acc << 8) | *b as u64));
        }
    }
    c.seek_to(0)?;
    Ok((None, crc))
}

fn records<R: Read + Seek>(
    c: &mut Cursor<R>,
    stream_end: u64,
    w: &mut CkptWalk,
    detailed: bool,
) -> StreamEnd {
    let mut run: Option<(Record, u64)> = None; // consecutive slices of one tag: first record + summed content
    while c.pos < stream_end {
        let start = c.pos;
        let rec = match record(c, stream_end) {
            Ok(r) => r,
            Err(WireError::Eof) => {
                return StreamEnd::Truncated {
                    record_offset: start,
                }
            }
            Err(WireError::Malformed(why)) => {
                return StreamEnd::Malformed {
                    offset: start,
                    why: why.into(),
                }
            }
            Err(WireError::Io(e)) => return StreamEnd::Io { error: e },
        };
        w.records += 1;
        if detailed {
            w.record_list.push(RecordInfo {
                offset: start,
                len: c.pos - start,
                tag: rec.tag.clone(),
                tensor_type: rec.tensor_type.clone(),
                dims: rec.dims.clone(),
                content_len: rec.content_len,
            });
        }
        if let Some(bytes) = &rec.content {
            if let Some(v) = decode_scalar(&rec.tensor_type, bytes) {
                w.append.set(&rec.tag, v);
                if !w.append_order.contains(&rec.tag) {
                    w.append_order.push(rec.tag.clone());
                }
            }
        }
        run = match run {
            Some((first, total)) if first.tag == rec.tag => Some((first, total + rec.content_len)),
            prev => {
                if let Some((first, total)) = prev {
                    check_size(&first, total, w);
                }
                let n = rec.content_len;
                Some((rec, n))
            }
        };
    }
    if let Some((first, total)) = run {
        check_size(&first, total, w);
    }
    StreamEnd::Complete
}

/// One record: `0a <len> Value`.
fn record<R: Read + Seek>(c: &mut Cursor<R>, stream_end: u64) -> Result<Record, WireError> {
    let f = field(c, stream_end)?;
    if f.number != 1 || f.wire != 2 {
        return Err(WireError::Malformed(
            "a record does not start with field 1 (Checkpoint.value)",
        ));
    }
    let end = c.pos + f.len;
    let mut rec = Record {
        tag: String::new(),
        tensor_type: String::new(),
        dims: Vec::new(),
        content_len: 0,
        content: None,
    };
    while c.pos < end {
        let f = field(c, end)?;
        match (f.number, f.wire) {
            (1, 2) => rec.tag = text(c, &f, MAX_TAG)?,
            (2, 2) => tensor(c, c.pos + f.len, &mut rec)?,
            _ => skip_scalar(c, &f, end)?,
        }
    }
    Ok(rec)
}

/// `TensorProto` fields inside `[c.pos, end)`.
fn tensor<R: Read + Seek>(c: &mut Cursor<R>, end: u64, rec: &mut Record) -> Result<(), WireError> {
    while c.pos < end {
        let f = field(c, end)?;
        match (f.number, f.wire) {
            (1, 0) => push_dim(rec, c.varint(end)?)?,
            (1, 2) => {
                let stop = c.pos + f.len;
                while c.pos < stop {
                    push_dim(rec, c.varint(stop)?)?;
                }
            }
            (2, 2) => rec.tensor_type = text(c, &f, MAX_TYPE)?,
            (3, 2) => {
                rec.content_len = f.len;
                if APPEND_KEYS.contains(&rec.tag.as_str()) && f.len <= 16 {
                    rec.content = Some(c.bytes(f.len)?);
                } else {
                    c.skip(f.len)?;
                }
            }
            _ => skip_scalar(c, &f, end)?,
        }
    }
    Ok(())
}

fn push_dim(rec: &mut Record, d: u64) -> Result<(), WireError> {
    if rec.dims.len() >= MAX_DIMS {
        return Err(WireError::Malformed(
            "a tensor with more than 64 dims (numpy, and so MindSpore, cannot hold it)",
        ));
    }
    rec.dims.push(d);
    Ok(())
}

/// A short string field; longer ones are skipped and shown truncated.
fn text<R: Read + Seek>(c: &mut Cursor<R>, f: &Field, max: u64) -> Result<String, WireError> {
    if f.len > max {
        c.skip(f.len)?;
        return Ok(format!("<{} bytes>", f.len));
    }
    Ok(String::from_utf8_lossy(&c.bytes(f.len)?).into_owned())
}

fn decode_scalar(ty: &str, b: &[u8]) -> Option<Num> {
    Some(match (ty, b.len()) {
        ("Int64", 8) => Num::Int(i64::from_le_bytes(b.try_into().ok()?)),
        ("Int32", 4) => Num::Int(i32::from_le_bytes(b.try_into().ok()?) as i64),
        ("UInt64", 8) => Num::Int(u64::from_le_bytes(b.try_into().ok()?) as i64),
        ("Float32", 4) => Num::Float(f32::from_le_bytes(b.try_into().ok()?) as f64),
        ("Float64", 8) => Num::Float(f64::from_le_bytes(b.try_into().ok()?)),
        _ => return None,
    })
}

/// Element size of a MindSpore tensor type (`None` for unknown types; `Some(0)` for types
/// whose size is not checkable: packed `Int4` and `str`).
pub fn element_size(ty: &str) -> Option<u64> {
    Some(match ty {
        "Float32" | "Int32" | "UInt32" => 4,
        "Float16" | "BFloat16" | "Int16" | "UInt16" => 2,
        "Float64" | "Int64" | "UInt64" => 8,
        "Int8" | "UInt8" | "Bool" => 1,
        "Int4" | "str" => 0,
        _ => return None,
    })
}

fn check_size(first: &Record, total: u64, w: &mut CkptWalk) {
    let expected = match element_size(&first.tensor_type) {
        Some(0) => return,
        Some(es) => first.dims.iter().try_fold(es, |acc, d| acc.checked_mul(*d)),
        None => None,
    };
    if expected != Some(total) {
        if w.tensor_issues.len() >= MAX_ISSUES {
            w.more_tensor_issues += 1;
            return;
        }
        w.tensor_issues.push(TensorIssue {
            tag: first.tag.clone(),
            tensor_type: first.tensor_type.clone(),
            dims: first.dims.clone(),
            expected_bytes: expected,
            content_bytes: total,
        });
    }
}

/// Walk a file on disk (opened read-only; non-regular files are refused).
pub fn walk_path(path: &std::path::Path) -> std::io::Result<CkptWalk> {
    let f = crate::fsys::open_regular(path)?;
    let len = f.metadata()?.len();
    Ok(walk(std::io::BufReader::with_capacity(64 * 1024, f), len))
}
