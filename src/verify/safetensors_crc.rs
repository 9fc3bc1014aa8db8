//! MindSpore's safetensors `crc_num`, computed in the deep pass's single sequential read.
//!
//! MindSpore 2.10 (`_exec_save` / `_load_into_param_dict`) chains `binascii.crc32` over the
//! tensors in Python `sorted()` name order: each name's UTF-8 bytes, then `bytes(array)`. The
//! data section is in safetensors' own order (dtype alignment first), so the file is read in
//! order, each tensor's bytes get their own CRC, and the chain is assembled afterwards with
//! CRC-32 combination (`crc32fast::Hasher::combine`) — no second read, no buffering.
//!
//! `bytes(array)` has a Python quirk that decides the number: a 0-d *integer* array implements
//! `__index__`, so `bytes(np.array(6))` is six zero bytes, not the eight bytes of the value
//! (`bytes(n)` makes `n` zero bytes). Float, bool and n-d arrays fall through to the buffer
//! protocol and give their raw bytes. The fixture `valid_crc.safetensors` (epoch_num 3,
//! step_num 6, global_batch_size 8 as I64 scalars) only matches with this rule. A negative
//! 0-d integer makes the loader raise `ValueError: negative count`.

use super::safetensors::Header;
use crate::py::int::PyInt;
use safetensors::Dtype;

/// One tensor's span in the data section (absolute file offsets) and what feeds its CRC.
struct Span {
    name: String,
    start: u64,
    end: u64,
    /// `Some(n)`: a 0-d integer tensor, hashed as `bytes(n)`; resolved after reading.
    index_value: Option<Dtype>,
}

/// Accumulates per-tensor CRCs while the file streams past in order.
pub struct SafetensorsCrc {
    stored: String,
    /// Sorted by start offset (file order).
    spans: Vec<Span>,
    /// Per span (same order): CRC-32 of its raw bytes, and the bytes of 0-d integers.
    crcs: Vec<crc32fast::Hasher>,
    raw: Vec<Vec<u8>>,
    next: usize,
}

impl SafetensorsCrc {
    /// `None` when the header carries no `crc_num` (the loader only warns then).
    pub fn new(h: &Header) -> Option<Self> {
        let stored = h.metadata.metadata().as_ref()?.get("crc_num")?.clone();
        let base = 8 + h.header_len;
        let mut spans: Vec<Span> = h
            .metadata
            .offset_keys()
            .into_iter()
            .filter_map(|name| {
                let t = h.metadata.info(&name)?;
                let index_value = (t.shape.is_empty() && is_integer(t.dtype)).then_some(t.dtype);
                Some(Span {
                    start: base + t.data_offsets.0 as u64,
                    end: base + t.data_offsets.1 as u64,
                    name,
                    index_value,
                })
            })
            .collect();
        spans.sort_by_key(|s| (s.start, s.end));
        let n = spans.len();
        Some(SafetensorsCrc {
            stored,
            spans,
            crcs: (0..n).map(|_| crc32fast::Hasher::new()).collect(),
            raw: vec![Vec::new(); n],
            next: 0,
        })
    }

    /// Feed the bytes at absolute file offset `pos` (called in file order, chunk by chunk).
    pub fn update(&mut self, mut pos: u64, mut chunk: &[u8]) {
        while !chunk.is_empty() && self.next < self.spans.len() {
            let s = &self.spans[self.next];
            if pos >= s.end {
                self.next += 1;
                continue;
            }
            if pos < s.start {
                let skip = ((s.start - pos) as usize).min(chunk.len());
                pos += skip as u64;
                chunk = &chunk[skip..];
                continue;
            }
            let take = ((s.end - pos) as usize).min(chunk.len());
            self.crcs[self.next].update(&chunk[..take]);
            if s.index_value.is_some() {
                self.raw[self.next].extend_from_slice(&chunk[..take]);
            }
            pos += take as u64;
            chunk = &chunk[take..];
        }
    }

    /// After the whole file was fed: `None` when MindSpore's check passes, else why it fails.
    pub fn problem(self) -> Option<String> {
        let mut order: Vec<usize> = (0..self.spans.len()).collect();
        // Python compares str by code point; UTF-8 byte order is the same order.
        order.sort_by(|a, b| self.spans[*a].name.cmp(&self.spans[*b].name));
        let mut chain = crc32fast::Hasher::new();
        for i in order {
            let s = &self.spans[i];
            chain.update(s.name.as_bytes());
            match s.index_value {
                None => chain.combine(&self.crcs[i]),
                Some(dtype) => match index_value(dtype, &self.raw[i]) {
                    Some(v) if v < 0 => return Some(format!("{} is the 0-d integer {v}: MindSpore's crc_check computes bytes({v}) and raises 'ValueError: negative count'", s.name)),
                    Some(v) if v > i64::MAX as i128 => return Some(format!("{} is the 0-d integer {v}: MindSpore's crc_check computes bytes({v}) and raises OverflowError", s.name)),
                    Some(v) => append_zeros(&mut chain, v as u64),
                    None => return Some(format!("{} could not be read for the CRC", s.name)),
                },
            }
        }
        let actual = chain.finalize();
        let text = crate::py::text::py_strip(&self.stored);
        match py_int(text) {
            None => Some(format!("__metadata__ crc_num {:?} is not an integer: MindSpore's crc_check raises ValueError", self.stored)),
            Some(stored) if stored == PyInt::from_i64(actual as i64) => None,
            Some(stored) => Some(format!("__metadata__ crc_num {stored}, the tensors give {actual}: the data changed after it was written (MindSpore loads it silently unless crc_check is on)")),
        }
    }
}

fn is_integer(d: Dtype) -> bool {
    matches!(
        d,
        Dtype::I8
            | Dtype::I16
            | Dtype::I32
            | Dtype::I64
            | Dtype::U8
            | Dtype::U16
            | Dtype::U32
            | Dtype::U64
    )
}

/// The little-endian value of a 0-d integer tensor's bytes.
fn index_value(d: Dtype, b: &[u8]) -> Option<i128> {
    let mut le = [0u8; 8];
    le.get_mut(..b.len())?.copy_from_slice(b);
    let u = u64::from_le_bytes(le);
    let signed = |bits: u32| -> i128 {
        let shift = 64 - bits;
        (((u << shift) as i64) >> shift) as i128
    };
    Some(match (d, b.len()) {
        (Dtype::I8, 1) => signed(8),
        (Dtype::I16, 2) => signed(16),
        (Dtype::I32, 4) => signed(32),
        (Dtype::I64, 8) => signed(64),
        (Dtype::U8, 1) | (Dtype::U16, 2) | (Dtype::U32, 4) | (Dtype::U64, 8) => u as i128,
        _ => return None,
    })
}

/// Append `n` zero bytes to `h` in O(log n) combinations (a corrupted step_num may be 2^62).
fn append_zeros(h: &mut crc32fast::Hasher, mut n: u64) {
    const DIRECT: u64 = 1 << 16;
    if n <= DIRECT {
        let zeros = [0u8; 4096];
        while n > 0 {
            let k = n.min(zeros.len() as u64) as usize;
            h.update(&zeros[..k]);
            n -= k as u64;
        }
        return;
    }
    // `block` is the CRC of 2^i zero bytes, doubled at each bit of n.
    let mut block = crc32fast::Hasher::new();
    block.update(&[0u8]);
    while n > 0 {
        if n & 1 == 1 {
            h.combine(&block);
        }
        let copy = block.clone();
        block.combine(&copy);
        n >>= 1;
    }
}

/// Python's `int(text)` for an already-stripped `str`: optional sign, digits with single
/// underscores between them (any Unicode decimal digit counts, as in Python).
fn py_int(text: &str) -> Option<PyInt> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let digits: String = body.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !digits.chars().all(crate::py::int::is_unicode_digit) {
        return None;
    }
    let signed = if neg { format!("-{digits}") } else { digits };
    PyInt::parse_digits(&signed).map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_by_combination_equal_zeros_by_bytes() {
        for n in [0u64, 1, 7, 4096, 65_536, 65_537, 200_001, 1 << 20] {
            let mut a = crc32fast::Hasher::new();
            a.update(b"step_num");
            append_zeros(&mut a, n);
            let mut b = crc32fast::Hasher::new();
            b.update(b"step_num");
            b.update(&vec![0u8; n as usize]);
            assert_eq!(a.finalize(), b.finalize(), "n = {n}");
        }
    }

    #[test]
    fn python_int_literals() {
        let p = |s: &str| py_int(s).map(|v| v.to_string());
        assert_eq!(p("3503682224").as_deref(), Some("3503682224"));
        assert_eq!(p("+1_000").as_deref(), Some("1000"));
        assert_eq!(p("-0").as_deref(), Some("0"));
        assert_eq!(p("\u{0663}").as_deref(), Some("3"));
        for bad in ["", "_1", "1_", "1__0", "0x10", "1.0", "+", "1 2"] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn index_values_are_sign_extended() {
        assert_eq!(index_value(Dtype::I8, &[0xff]), Some(-1));
        assert_eq!(index_value(Dtype::U8, &[0xff]), Some(255));
        assert_eq!(index_value(Dtype::I64, &6i64.to_le_bytes()), Some(6));
        assert_eq!(index_value(Dtype::I32, &[1, 2]), None);
    }
}
