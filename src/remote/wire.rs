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
use crate::resolve::config::PathFacts;
use crate::watch::Mode;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// The protocol's name in the `hello` line.
pub const PROTOCOL: &str = "ckptscope-watch";
/// Its version: a build reading another version refuses the stream, naming both.
pub const VERSION: u32 = 2;
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

/// The first line: who speaks, which version, and what it watches. Everything but the
/// protocol and its version may be absent when read (another version's hello must still be
/// read far enough to be refused by its version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: String,
    pub version: u32,
    /// The remote build (`CARGO_PKG_VERSION`), for messages.
    #[serde(default)]
    pub ckptscope: String,
    /// The folder as the remote was given it, and where it reads it.
    #[serde(default)]
    pub root: String,
    #[serde(default)]
    pub canonical: String,
    #[serde(default)]
    pub host: String,
    /// The job's path facts as this host sees them (realpaths, the files MindFormers reads
    /// under `output_dir`), for the `--output-dir` and `--shared-paths` it was given.
    #[serde(default)]
    pub paths: Option<WPathFacts>,
}

impl Hello {
    pub fn new(root: &str, canonical: &str, paths: &PathFacts) -> Hello {
        Hello {
            protocol: PROTOCOL.into(),
            version: VERSION,
            ckptscope: env!("CARGO_PKG_VERSION").into(),
            root: root.into(),
            canonical: canonical.into(),
            host: hostname(),
            paths: Some(paths.into()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WPathFacts {
    pub abspath: String,
    pub realpath: String,
    pub shared_realpaths: Vec<(String, String)>,
    pub health_json: Option<WFileRead>,
    pub existing_record: Option<WFileRead>,
    pub record_path: String,
}

impl From<&PathFacts> for WPathFacts {
    fn from(p: &PathFacts) -> WPathFacts {
        WPathFacts {
            abspath: p.abspath.clone(),
            realpath: p.realpath.clone(),
            shared_realpaths: p.shared_realpaths.clone(),
            health_json: p.health_json.as_ref().map(Into::into),
            existing_record: p.existing_record.as_ref().map(Into::into),
            record_path: p.record_path.clone(),
        }
    }
}

/// A host's path facts (the paths are that host's: shown in messages — escaped as names are
/// —, never read here).
pub fn path_facts(w: WPathFacts) -> Result<PathFacts, WireError> {
    let esc = |s: String| crate::model::shown_name(&s).into_owned();
    Ok(PathFacts {
        abspath: esc(w.abspath),
        realpath: esc(w.realpath),
        shared_realpaths: w
            .shared_realpaths
            .into_iter()
            .map(|(a, b)| (esc(a), esc(b)))
            .collect(),
        health_json: w.health_json.map(file_read).transpose()?,
        existing_record: w.existing_record.map(file_read).transpose()?,
        record_path: esc(w.record_path),
    })
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
    /// Check these whole: CRC trailer, SHA-256 against the host's `SHA256SUMS` (version 2).
    Hash {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OsErr, VerdictEntry};
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = FileKind> {
        prop::sample::select(vec![
            FileKind::File,
            FileKind::Dir,
            FileKind::Symlink,
            FileKind::Fifo,
            FileKind::Other,
        ])
    }

    fn stat() -> impl Strategy<Value = Stat> {
        (
            kind(),
            any::<u64>(),
            any::<i64>(),
            0u32..1_000_000_000,
            any::<u64>(),
            any::<u64>(),
            any::<u16>(),
            any::<i64>(),
        )
            .prop_map(
                |(kind, size, mtime_sec, mtime_nsec, ino, dev, mode, ctime_ns)| Stat {
                    kind,
                    size,
                    mtime_sec,
                    mtime_nsec,
                    ino,
                    dev,
                    mode,
                    ctime_ns,
                },
            )
    }

    fn stat_or_err() -> impl Strategy<Value = Result<Stat, OsErr>> {
        prop_oneof![
            stat().prop_map(Ok),
            (1i32..140).prop_map(|e| Err(OsErr::errno(e))),
        ]
    }

    /// Any bytes but `/` and NUL: what a directory entry can be called.
    fn name() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            any::<u8>().prop_filter("a name", |b| *b != b'/' && *b != 0),
            1..24,
        )
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (name(), stat_or_err(), prop::option::of(stat_or_err()))
            .prop_map(|(n, l, t)| Entry::named(std::ffi::OsStr::from_bytes(&n), l, t))
    }

    fn file_read_s() -> impl Strategy<Value = FileRead> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64).prop_map(FileRead::Bytes),
            (1i32..140).prop_map(|e| FileRead::Error(OsErr::errno(e))),
            any::<u64>().prop_map(FileRead::TooLarge),
            kind().prop_map(FileRead::NotRegular),
        ]
    }

    fn dir_node_s() -> impl Strategy<Value = DirNode> {
        (
            prop::option::of(stat()),
            prop_oneof![
                prop::collection::vec(entry(), 0..6).prop_map(|v| Listing::Entries(v.into())),
                (1i32..140).prop_map(|e| Listing::Error(OsErr::errno(e))),
            ],
            prop::option::of(file_read_s()),
            prop::collection::vec(entry(), 0..2),
            prop::collection::vec(("[a-z_.]{1,12}", file_read_s()), 0..2),
        )
            .prop_map(|(stat, listing, meta, probed, control)| DirNode {
                stat,
                listing,
                meta,
                probed,
                control,
                memo: Default::default(),
                origin: 0,
            })
    }

    fn num() -> impl Strategy<Value = Option<Num>> {
        prop_oneof![
            Just(None),
            any::<i64>().prop_map(|i| Some(Num::Int(i))),
            any::<u64>().prop_map(|b| Some(Num::Float(f64::from_bits(b)))),
        ]
    }

    fn check_s() -> impl Strategy<Value = ShardCheck> {
        (
            prop::sample::select(vec![Verdict::Ok, Verdict::Truncated, Verdict::Changed]),
            any::<bool>(),
            ".{0,20}",
            any::<u64>(),
            prop::option::of((num(), num(), num(), num(), num())),
            prop::option::of("[0-9a-f]{64}"),
        )
            .prop_map(|(verdict, deep, detail, size, append, sha)| ShardCheck {
                verdict,
                deep,
                detail: detail.into(),
                size,
                append: append.map(|(a, b, c, d, e)| {
                    Arc::new(AppendValues {
                        epoch_num: a,
                        step_num: b,
                        global_step: c,
                        loss_scale: d,
                        global_batch_size: e,
                    })
                }),
                sha256: sha.map(Arc::new),
            })
    }

    /// Through JSON text and back, as the other end reads it.
    fn through<T: Serialize + for<'de> Deserialize<'de>>(x: &T) -> T {
        serde_json::from_str(&encode(x)).unwrap()
    }

    /// Checks compare by their wire form: a NaN float equals itself only bit for bit.
    fn same_check(a: &ShardCheck, b: &ShardCheck) -> bool {
        WCheck::from(a) == WCheck::from(b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every folder — any name bytes, times, errors, symlink targets, control files —
        /// reads back exactly as it was sent.
        #[test]
        fn a_folder_reads_back_as_sent(node in dir_node_s(), root in prop::collection::vec(entry(), 0..5)) {
            let back = dir_node(through(&WDirNode::from(&node))).unwrap();
            prop_assert_eq!(&back, &node);
            // entry by entry too (`DirNode`'s memo compares equal whatever it holds)
            prop_assert_eq!(back.listing.entries().iter().collect::<Vec<_>>(), node.listing.entries().iter().collect::<Vec<_>>());
            let state = RootState::Dir(Listing::Entries(root.into()));
            prop_assert_eq!(root_state(through(&WRootState::from(&state))).unwrap(), state);
        }

        /// A verdict, floats bit for bit (NaN and infinities included), reads back as sent.
        #[test]
        fn a_verdict_reads_back_as_sent(c in check_s(), id in (any::<u64>(), any::<u64>(), any::<u64>(), any::<i64>(), any::<i64>())) {
            let v = Verified {
                dir: "rank_3".into(),
                file: "llama_rank_3-20_2.ckpt".into(),
                id: FileId { dev: id.0, ino: id.1, size: id.2, mtime_ns: id.3, ctime_ns: id.4 },
                check: c,
            };
            let back = verified(through(&WVerified::from(&v))).unwrap();
            prop_assert_eq!((&back.dir, &back.file, back.id), (&v.dir, &v.file, v.id));
            prop_assert!(same_check(&back.check, &v.check));
        }
    }

    /// A first scan goes as one line per folder and is put back together as the tree it was.
    #[test]
    fn a_first_scan_is_one_line_per_folder_and_reads_back_whole() {
        let e = |n: &str| Entry::named(std::ffi::OsStr::new(n), Err(OsErr::errno(2)), None);
        let mut tree = Tree {
            root: "/out/checkpoint".into(),
            state: RootState::Dir(Listing::Entries(vec![e("rank_0"), e("rank_1")].into())),
            ..Tree::default()
        };
        // (a verdict is kept for the file version the listing shows)
        let st = Stat {
            kind: FileKind::File,
            size: 3,
            mtime_sec: 0,
            mtime_nsec: 4,
            ino: 2,
            dev: 1,
            mode: 0o100644,
            ctime_ns: 5,
        };
        let shard = Entry::named(std::ffi::OsStr::new("a-1_1.ckpt"), Ok(st.clone()), None);
        for r in ["rank_0", "rank_1"] {
            let node = DirNode {
                stat: None,
                listing: Listing::Entries(vec![shard.clone(), e("meta.json")].into()),
                meta: Some(FileRead::Bytes(b"{\"last_epoch\": 1}".to_vec())),
                probed: Vec::new(),
                control: Vec::new(),
                memo: Default::default(),
                origin: 0,
            };
            tree.dirs.insert(r.into(), Arc::new(node));
        }
        tree.root_files.insert(
            "latest_checkpointed_iteration.txt".into(),
            FileRead::Bytes(b"7".to_vec()),
        );
        tree.verdicts.insert(
            "rank_1".into(),
            "a-1_1.ckpt".into(),
            VerdictEntry {
                id: FileId {
                    dev: 1,
                    ino: 2,
                    size: 3,
                    mtime_ns: 4,
                    ctime_ns: 5,
                },
                check: ShardCheck::new(Verdict::Truncated, "cut", 3),
            },
        );
        let mode = Mode::Inotify { poll_secs: 30.0 };
        let text: Vec<String> = scan_lines(&tree, &mode).map(|l| encode(&l)).collect();
        assert_eq!(
            text.len(),
            1 + 2 + 1 + 1,
            "begin, a line per folder, the verdict, started"
        );
        assert!(text.iter().all(|l| !l.contains('\n')));
        let mut back = Tree {
            root: tree.root.clone(),
            ..Tree::default()
        };
        for l in &text {
            match serde_json::from_str::<Line>(l).unwrap() {
                Line::Begin {
                    state,
                    root_files,
                    mode: m,
                    ..
                } => {
                    assert_eq!(m, mode);
                    back.state = root_state(state).unwrap();
                    for (n, r) in root_files {
                        back.root_files
                            .insert(shown(n).unwrap(), file_read(r).unwrap());
                    }
                }
                Line::Dir { name, node } => {
                    back.dirs
                        .insert(shown(name).unwrap(), Arc::new(dir_node(node).unwrap()));
                }
                Line::Delta(d) => back.apply(delta(d).unwrap()),
                Line::Started {} => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(back, tree);
    }

    /// A line over the limit is refused, not read whole; the last line needs no newline.
    #[test]
    fn lines_are_bounded() {
        let mut r = std::io::Cursor::new(b"{}\nlast".to_vec());
        assert_eq!(read_line(&mut r).unwrap().unwrap(), b"{}");
        assert_eq!(read_line(&mut r).unwrap().unwrap(), b"last");
        assert!(read_line(&mut r).unwrap().is_none());
        let endless = std::io::Read::take(std::io::repeat(b'x'), LINE_LIMIT as u64 + 10);
        let mut r = std::io::BufReader::new(endless);
        assert!(read_line(&mut r).is_err());
    }

    /// A host's path facts read back as sent; their paths are escaped like names (they only
    /// ever reach messages).
    #[test]
    fn a_hosts_path_facts_read_back_and_are_escaped() {
        let p = PathFacts {
            abspath: "/out/checkpoint".into(),
            realpath: "/data/out/checkpoint".into(),
            shared_realpaths: vec![("/out".into(), "/data/out".into())],
            health_json: None,
            existing_record: Some(FileRead::Bytes(vec![0xff, b'\n'])),
            record_path: "/out/resume_record/latest_checkpointed_iteration.txt".into(),
        };
        let hello: Hello = through(&Hello::new("/out/checkpoint", "/data/out/checkpoint", &p));
        assert_eq!(path_facts(hello.paths.unwrap()).unwrap(), p);
        let mut w = WPathFacts::from(&p);
        w.realpath = "/x\u{1b}[2J".into();
        assert!(!path_facts(w).unwrap().realpath.contains('\u{1b}'));
    }

    /// Names the model keys by must be in their shown form: nothing raw reaches a terminal.
    #[test]
    fn a_key_with_control_characters_is_refused() {
        assert!(shown("rank_0\u{1b}[2J".into()).is_err());
        assert!(shown("rank_0".into()).is_ok());
    }
}
