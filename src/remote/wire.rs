//! The watch protocol: what `ckptscope watch DIR --wire` writes on a remote node and the local
//! side reads back into the same model a local watcher builds (one JSON object per line).
//!
//! Versioned and documented (README, "Jobs bigger than one machine") because two builds of
//! ckptscope talk through it. Its own types, not the model's JSON dump: every name and file
//! content travels as its exact bytes (a name that is not UTF-8 as base64), every number
//! exactly (a float as its bits), and a tree goes as one line per folder so that no line is
//! the whole tree (16,384 folders would be one 50 MB line).
//!
//! Remote → local: `hello`, then the first scan (`begin`, one `dir` per folder, verdicts as
//! `delta` lines, `started`), then batches of changes (`delta` lines closed by `flush`) and
//! `mode` / `rescan` / `failed` notes. Local → remote: `resync` and `verify` requests; the
//! end of its input stops the remote watcher.

use crate::model::{
    AppendValues, Delta, DirNode, Entries, Entry, FileId, FileKind, FileRead, Listing, Num, OsErr,
    RootState, ShardCheck, Stat, Tree, Verdict, Verified,
};
use crate::watch::Mode;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// The protocol's name in the `hello` line.
pub const PROTOCOL: &str = "ckptscope-watch";
/// Its version: a build reading another version refuses the stream, naming both.
pub const VERSION: u32 = 1;
/// The longest line read (one folder of 100,000 entries is ≈ 15 MB).
pub const LINE_LIMIT: usize = 256 << 20;

/// Bytes that are text as a JSON string, others as base64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bytes {
    Text(String),
    Binary { b64: String },
}

impl Bytes {
    pub fn of(b: &[u8]) -> Bytes {
        match std::str::from_utf8(b) {
            Ok(s) => Bytes::Text(s.to_owned()),
            Err(_) => Bytes::Binary {
                b64: base64::engine::general_purpose::STANDARD.encode(b),
            },
        }
    }

    fn into_vec(self) -> Result<Vec<u8>, String> {
        match self {
            Bytes::Text(s) => Ok(s.into_bytes()),
            Bytes::Binary { b64 } => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("bad base64 ({e})")),
        }
    }
}

/// The first line: who speaks, which version, and what it watches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: String,
    pub version: u32,
    /// The remote build (`CARGO_PKG_VERSION`), for messages.
    pub ckptscope: String,
    /// The folder as the remote was given it, and where it reads it.
    pub root: String,
    pub canonical: String,
    pub host: String,
}

impl Hello {
    pub fn new(root: &str, canonical: &str) -> Hello {
        Hello {
            protocol: PROTOCOL.into(),
            version: VERSION,
            ckptscope: env!("CARGO_PKG_VERSION").into(),
            root: root.into(),
            canonical: canonical.into(),
            host: hostname(),
        }
    }
}

/// This machine's name (`/proc/sys/kernel/hostname`), or `?`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().chars().filter(|c| !c.is_control()).collect())
        .unwrap_or_else(|_| "?".into())
}

/// One line from the remote watcher.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    Hello(Hello),
    /// A first scan begins (again, after a reconnect): the root, and how it is watched; its
    /// folders follow as `dir` lines, its verdicts as `delta` lines, then `started`.
    Begin {
        root: String,
        state: WRootState,
        root_files: Vec<(String, WFileRead)>,
        mode: Mode,
    },
    Dir {
        name: String,
        node: WDirNode,
    },
    Started {},
    Delta(WDelta),
    /// The deltas since the last `flush` are one batch (applied, then resolved, together).
    Flush {},
    Mode {
        mode: Mode,
        reason: String,
    },
    Rescan {
        reason: String,
    },
    Failed {
        why: String,
    },
}

/// One request to the remote watcher.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    Resync {},
    /// Check these `(folder, file)` first.
    Verify {
        files: Vec<(String, String)>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WEntry {
    /// The name's bytes on disk.
    pub name: Bytes,
    pub lstat: Result<Stat, OsErr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Result<Stat, OsErr>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WListing {
    Entries(Vec<WEntry>),
    Error(OsErr),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WRootState {
    Missing,
    Error(OsErr),
    File(Stat),
    Dir(WListing),
    Other(FileKind),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WFileRead {
    Bytes(Bytes),
    Error(OsErr),
    TooLarge(u64),
    NotRegular(FileKind),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WDirNode {
    pub stat: Option<Stat>,
    pub listing: WListing,
    pub meta: Option<WFileRead>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probed: Vec<WEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control: Vec<(String, WFileRead)>,
}

/// A number exactly: an integer, or a float's bits (JSON has no NaN or infinity).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WNum {
    Int(i64),
    FloatBits(u64),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WAppend {
    pub epoch_num: Option<WNum>,
    pub step_num: Option<WNum>,
    pub global_step: Option<WNum>,
    pub loss_scale: Option<WNum>,
    pub global_batch_size: Option<WNum>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WCheck {
    pub verdict: Verdict,
    pub deep: bool,
    pub detail: String,
    pub size: u64,
    pub append: Option<WAppend>,
    pub sha256: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WVerified {
    pub dir: String,
    pub file: String,
    pub id: FileId,
    pub check: WCheck,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WDelta {
    Root(WRootState),
    RootEntry(WEntry),
    Dir {
        name: String,
        node: Option<WDirNode>,
    },
    RootFile {
        name: String,
        read: Option<WFileRead>,
    },
    Verdict(WVerified),
}

// ---- model → wire ----

impl From<&Entry> for WEntry {
    fn from(e: &Entry) -> WEntry {
        WEntry {
            name: Bytes::of(e.os_name().as_bytes()),
            lstat: e.lstat.clone(),
            target: e.target().cloned(),
        }
    }
}

impl From<&Listing> for WListing {
    fn from(l: &Listing) -> WListing {
        match l {
            Listing::Entries(es) => WListing::Entries(es.iter().map(|e| (&e).into()).collect()),
            Listing::Error(e) => WListing::Error(e.clone()),
        }
    }
}

impl From<&RootState> for WRootState {
    fn from(s: &RootState) -> WRootState {
        match s {
            RootState::Missing => WRootState::Missing,
            RootState::Error(e) => WRootState::Error(e.clone()),
            RootState::File(st) => WRootState::File(st.clone()),
            RootState::Dir(l) => WRootState::Dir(l.into()),
            RootState::Other(k) => WRootState::Other(*k),
        }
    }
}

impl From<&FileRead> for WFileRead {
    fn from(r: &FileRead) -> WFileRead {
        match r {
            FileRead::Bytes(b) => WFileRead::Bytes(Bytes::of(b)),
            FileRead::Error(e) => WFileRead::Error(e.clone()),
            FileRead::TooLarge(n) => WFileRead::TooLarge(*n),
            FileRead::NotRegular(k) => WFileRead::NotRegular(*k),
        }
    }
}

impl From<&DirNode> for WDirNode {
    fn from(d: &DirNode) -> WDirNode {
        WDirNode {
            stat: d.stat.clone(),
            listing: (&d.listing).into(),
            meta: d.meta.as_ref().map(Into::into),
            probed: d.probed.iter().map(Into::into).collect(),
            control: d
                .control
                .iter()
                .map(|(n, r)| (n.clone(), r.into()))
                .collect(),
        }
    }
}

fn wnum(n: Option<Num>) -> Option<WNum> {
    n.map(|n| match n {
        Num::Int(i) => WNum::Int(i),
        Num::Float(f) => WNum::FloatBits(f.to_bits()),
    })
}

impl From<&ShardCheck> for WCheck {
    fn from(c: &ShardCheck) -> WCheck {
        WCheck {
            verdict: c.verdict,
            deep: c.deep,
            detail: c.detail.to_string(),
            size: c.size,
            append: c.append.as_ref().map(|a| WAppend {
                epoch_num: wnum(a.epoch_num),
                step_num: wnum(a.step_num),
                global_step: wnum(a.global_step),
                loss_scale: wnum(a.loss_scale),
                global_batch_size: wnum(a.global_batch_size),
            }),
            sha256: c.sha256.as_ref().map(|s| s.to_string()),
        }
    }
}

impl From<&Verified> for WVerified {
    fn from(v: &Verified) -> WVerified {
        WVerified {
            dir: v.dir.clone(),
            file: v.file.clone(),
            id: v.id,
            check: (&v.check).into(),
        }
    }
}

/// A delta on the wire; `None` for what one watcher of one root never sends (the roots of a
/// merged job).
pub fn wire_delta(d: &Delta) -> Option<WDelta> {
    Some(match d {
        Delta::Root(s) => WDelta::Root(s.into()),
        Delta::RootEntry(e) => WDelta::RootEntry(e.into()),
        Delta::Dir(name, node) => WDelta::Dir {
            name: name.clone(),
            node: node.as_deref().map(Into::into),
        },
        Delta::RootFile(name, read) => WDelta::RootFile {
            name: name.clone(),
            read: read.as_ref().map(Into::into),
        },
        Delta::Verdict(v) => WDelta::Verdict(v.into()),
        Delta::Roots(_) => return None,
    })
}

/// The lines of a first scan: `begin`, a `dir` per folder, its verdicts, `started`.
pub fn scan_lines<'a>(tree: &'a Tree, mode: &Mode) -> impl Iterator<Item = Line> + 'a {
    let begin = Line::Begin {
        root: tree.root.clone(),
        state: (&tree.state).into(),
        root_files: tree
            .root_files
            .iter()
            .map(|(n, r)| (n.clone(), r.into()))
            .collect(),
        mode: mode.clone(),
    };
    let dirs = tree.dirs.iter().map(|(name, node)| Line::Dir {
        name: name.clone(),
        node: (&**node).into(),
    });
    let verdicts = tree.verdicts.iter().map(|((dir, file), e)| {
        Line::Delta(WDelta::Verdict(WVerified {
            dir: dir.to_owned(),
            file: file.to_owned(),
            id: e.id,
            check: (&e.check).into(),
        }))
    });
    std::iter::once(begin)
        .chain(dirs)
        .chain(verdicts)
        .chain(std::iter::once(Line::Started {}))
}

// ---- wire → model (the remote is another machine: every name is checked) ----

/// Why a line could not be read back into the model.
pub type WireError = String;

fn entry(w: WEntry) -> Result<Entry, WireError> {
    let bytes = w.name.into_vec()?;
    Ok(Entry::named(
        std::ffi::OsStr::from_bytes(&bytes),
        w.lstat,
        w.target,
    ))
}

fn listing(w: WListing) -> Result<Listing, WireError> {
    Ok(match w {
        WListing::Entries(es) => Listing::Entries(Entries::new(
            es.into_iter().map(entry).collect::<Result<_, _>>()?,
        )),
        WListing::Error(e) => Listing::Error(e),
    })
}

pub fn root_state(w: WRootState) -> Result<RootState, WireError> {
    Ok(match w {
        WRootState::Missing => RootState::Missing,
        WRootState::Error(e) => RootState::Error(e),
        WRootState::File(s) => RootState::File(s),
        WRootState::Dir(l) => RootState::Dir(listing(l)?),
        WRootState::Other(k) => RootState::Other(k),
    })
}

pub fn file_read(w: WFileRead) -> Result<FileRead, WireError> {
    Ok(match w {
        WFileRead::Bytes(b) => FileRead::Bytes(b.into_vec()?),
        WFileRead::Error(e) => FileRead::Error(e),
        WFileRead::TooLarge(n) => FileRead::TooLarge(n),
        WFileRead::NotRegular(k) => FileRead::NotRegular(k),
    })
}

/// A name the model keeps as a key (a folder, a file in a verdict, a control file): it must be
/// in the form the model shows names (escaped), so that nothing raw reaches a terminal.
pub fn shown(name: String) -> Result<String, WireError> {
    match crate::model::shown_name(&name) {
        std::borrow::Cow::Borrowed(_) => Ok(name),
        std::borrow::Cow::Owned(s) => Err(format!(
            "the name {s} holds characters a listed name never shows unescaped"
        )),
    }
}

pub fn dir_node(w: WDirNode) -> Result<DirNode, WireError> {
    Ok(DirNode {
        stat: w.stat,
        listing: listing(w.listing)?,
        meta: w.meta.map(file_read).transpose()?,
        probed: w.probed.into_iter().map(entry).collect::<Result<_, _>>()?,
        control: w
            .control
            .into_iter()
            .map(|(n, r)| Ok((shown(n)?, file_read(r)?)))
            .collect::<Result<_, WireError>>()?,
        memo: Default::default(),
        origin: 0,
    })
}

fn num(n: Option<WNum>) -> Option<Num> {
    n.map(|n| match n {
        WNum::Int(i) => Num::Int(i),
        WNum::FloatBits(b) => Num::Float(f64::from_bits(b)),
    })
}

fn check(w: WCheck) -> ShardCheck {
    ShardCheck {
        verdict: w.verdict,
        deep: w.deep,
        detail: crate::model::intern_text(&w.detail),
        size: w.size,
        append: w.append.map(|a| {
            crate::model::intern(AppendValues {
                epoch_num: num(a.epoch_num),
                step_num: num(a.step_num),
                global_step: num(a.global_step),
                loss_scale: num(a.loss_scale),
                global_batch_size: num(a.global_batch_size),
            })
        }),
        sha256: w.sha256.map(Arc::new),
    }
}

pub fn verified(w: WVerified) -> Result<Verified, WireError> {
    Ok(Verified {
        dir: shown(w.dir)?,
        file: shown(w.file)?,
        id: w.id,
        check: check(w.check),
    })
}

pub fn delta(w: WDelta) -> Result<Delta, WireError> {
    Ok(match w {
        WDelta::Root(s) => Delta::Root(root_state(s)?),
        WDelta::RootEntry(e) => Delta::RootEntry(entry(e)?),
        WDelta::Dir { name, node } => {
            Delta::Dir(shown(name)?, node.map(dir_node).transpose()?.map(Arc::new))
        }
        WDelta::RootFile { name, read } => {
            Delta::RootFile(shown(name)?, read.map(file_read).transpose()?)
        }
        WDelta::Verdict(v) => Delta::Verdict(verified(v)?),
    })
}

/// One line as JSON (no newline).
pub fn encode<T: Serialize>(line: &T) -> String {
    // (these types hold no map with non-string keys and no non-finite float: cannot fail)
    serde_json::to_string(line).unwrap_or_else(|e| {
        serde_json::to_string(&Line::Failed {
            why: format!("cannot encode a line of the watch protocol: {e}"),
        })
        .unwrap_or_default()
    })
}

/// Read one line of at most [`LINE_LIMIT`] bytes (`None` at the end of the stream).
pub fn read_line(r: &mut impl std::io::BufRead) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::{BufRead, Read};
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(LINE_LIMIT as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && buf.len() > LINE_LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line longer than {} MiB", LINE_LIMIT >> 20),
        ));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(Some(buf))
}
