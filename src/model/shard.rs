//! What the verifier found out about one shard: the one type family every part of ckptscope
//! uses (the pool produces it, the model stores it per file version, the resolvers read it, the
//! reports print it).

use super::FileId;
use serde::Serialize;

/// What ckptscope found out about one shard.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Structure walked completely and the resume context entries are present.
    Ok,
    /// A `.tmp` save under way, or abandoned.
    InProgress,
    ZeroByte,
    /// The record stream (or safetensors data) is cut short.
    Truncated,
    /// Parses, but the resume context is missing: MindFormers would silently restart.
    Incomplete,
    /// A tensor whose content does not match its dims and type, an unknown type, or garbage
    /// inside the stream: MindSpore zero-fills, ignores, or fails.
    Corrupt,
    CrcMismatch,
    HashMismatch,
    /// Encryption magic: present, content not checkable without the key.
    Encrypted,
    NotACheckpoint,
    Unreadable,
    NotRegular,
    /// The file changed while it was read (or since it was listed): nothing can be said of
    /// it until it is checked again.
    Changed,
}

impl Verdict {
    /// A shard MindFormers cannot resume from correctly.
    pub fn is_damaged(self) -> bool {
        !matches!(self, Verdict::Ok | Verdict::InProgress | Verdict::Encrypted)
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::InProgress => "in_progress",
            Verdict::ZeroByte => "zero_byte",
            Verdict::Truncated => "truncated",
            Verdict::Incomplete => "incomplete",
            Verdict::Corrupt => "corrupt",
            Verdict::CrcMismatch => "crc_mismatch",
            Verdict::HashMismatch => "hash_mismatch",
            Verdict::Encrypted => "encrypted",
            Verdict::NotACheckpoint => "not_a_checkpoint",
            Verdict::Unreadable => "unreadable",
            Verdict::NotRegular => "not_regular",
            Verdict::Changed => "changed",
        }
    }
}

/// The result of checking one file: compact, since a 16,384-rank tree holds hundreds of
/// thousands of them (the append entries are shared between the files that carry the same
/// values — every rank of one save).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardCheck {
    pub verdict: Verdict,
    /// Whether the deep pass (CRC, SHA-256) ran.
    pub deep: bool,
    /// Shared (`Arc`): the model and a report's results hold the same check without copying
    /// its text.
    pub detail: std::sync::Arc<str>,
    pub size: u64,
    pub append: Option<std::sync::Arc<AppendValues>>,
    /// Hex SHA-256 when the deep pass computed it (a thin pointer: the record stays 48
    /// bytes, and most never have one).
    pub sha256: Option<std::sync::Arc<String>>,
}

impl ShardCheck {
    pub fn new(verdict: Verdict, detail: impl Into<std::sync::Arc<str>>, size: u64) -> Self {
        ShardCheck {
            verdict,
            detail: detail.into(),
            size,
            append: None,
            sha256: None,
            deep: false,
        }
    }
}

/// The one shared copy of `a`: the files of one save carry the same append entries on every
/// rank, so they share one allocation. At most [`INTERNED_MAX`] distinct values are kept (a
/// tree of hostile files with all-different values gets its own copies past that).
pub fn intern(a: AppendValues) -> std::sync::Arc<AppendValues> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Key = [(u8, u64); 5];
    static TABLE: OnceLock<Mutex<HashMap<Key, Arc<AppendValues>>>> = OnceLock::new();
    let bits = |n: Option<Num>| match n {
        None => (0, 0),
        Some(Num::Int(i)) => (1, i as u64),
        Some(Num::Float(f)) => (2, f.to_bits()),
    };
    let key = [
        bits(a.epoch_num),
        bits(a.step_num),
        bits(a.global_step),
        bits(a.loss_scale),
        bits(a.global_batch_size),
    ];
    let mut t = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(x) = t.get(&key) {
        return x.clone();
    }
    let x = Arc::new(a);
    if t.len() < INTERNED_MAX {
        t.insert(key, x.clone());
    }
    x
}

/// The one shared copy of a detail text that many healthy files have word for word ("43
/// records, append entries present"), at most [`INTERNED_MAX`] distinct texts.
pub fn intern_text(t: &str) -> std::sync::Arc<str> {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex, OnceLock};
    static TABLE: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let mut set = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(x) = set.get(t) {
        return x.clone();
    }
    let x: Arc<str> = Arc::from(t);
    if set.len() < INTERNED_MAX {
        set.insert(x.clone());
    }
    x
}

/// How many distinct append-entry values [`intern`] keeps.
pub const INTERNED_MAX: usize = 65_536;

/// A decoded scalar.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Num::Int(i) => Some(i),
            Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(f as i64),
            Num::Float(_) => None,
        }
    }
}

/// The append entries found, in file order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AppendValues {
    pub epoch_num: Option<Num>,
    pub step_num: Option<Num>,
    pub global_step: Option<Num>,
    pub loss_scale: Option<Num>,
    pub global_batch_size: Option<Num>,
}

impl AppendValues {
    pub(crate) fn set(&mut self, tag: &str, v: Num) {
        let slot = match tag {
            "epoch_num" => &mut self.epoch_num,
            "step_num" => &mut self.step_num,
            "global_step" => &mut self.global_step,
            "loss_scale" => &mut self.loss_scale,
            "global_batch_size" => &mut self.global_batch_size,
            _ => return,
        };
        *slot = Some(v);
    }
}

/// A verifier result for the file version it was computed on (stored in the model).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerdictEntry {
    pub id: FileId,
    pub check: ShardCheck,
}

/// A finished check of `dir/file`, as the pool sends it and [`super::Delta::Verdict`] applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub dir: String,
    pub file: String,
    pub id: FileId,
    pub check: ShardCheck,
}

/// One shard's result with where it is, for reports (`verify`, `resolve --json`'s `shards`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardResult {
    pub rank: Option<u64>,
    /// The folder (`rank_3`, `iteration_00000010`): new-format folders repeat file names.
    pub dir: String,
    pub file: String,
    #[serde(flatten)]
    pub check: ShardCheck,
}
