//! A folder's entries in `readdir` order (MindFormers' answers depend on that order), stored
//! compactly: a 16,384-rank tree lists 344,064 entries, and as a `Vec<Entry>` (96 bytes each
//! plus a name index) they were 37 MB, half of `resolve`'s memory.
//!
//! The names of a rank folder share a long start (`llama3_1_8b_rank_16383-`), kept once as the
//! folder's *stem*; each entry keeps the rest of its name back to back with the others'
//! (`1000_2.ckpt`) and a 40-byte record of its `lstat`. The folder's device is kept once; what
//! few entries have (another device, a symlink's target, a name that is not UTF-8, a time that
//! does not fit, an error with its own text) is kept beside, by index. An [`Entry`] is built
//! on demand (no heap block for a name of up to 38 bytes): callers read values, not
//! references into the folder.
//!
//! Looking a name up is a hash probe in a folder of more than [`SMALL`] entries (a folder of
//! 100,000 checkpoints would otherwise make every per-file lookup quadratic) and a scan of
//! the records in a small one (an index would cost more than the records themselves).

use super::{Entry, EntryExtra, FileKind, Name, OsErr, Stat};
use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};
use serde::Serialize;
use std::hash::{BuildHasher, Hasher};

/// Folders of up to this many entries are searched record by record.
const SMALL: usize = 48;

#[derive(Clone, Default)]
pub struct Entries {
    /// The start most names share (the stem: empty when they share none), then each entry's
    /// name after the stem (the whole name when it does not start with the stem), back to
    /// back; record `i`'s ends at `recs[i].end`.
    text: Box<str>,
    recs: Box<[Rec]>,
    /// The device of the entries whose record does not say otherwise.
    dev: u64,
    /// The stem's length.
    stem: u32,
    /// What few folders need: kept out of line (a 16,384-rank tree has 16,384 listings).
    side: Option<Box<Side>>,
}

#[derive(Clone, Default)]
struct Side {
    /// What a record cannot hold, by entry index (ascending).
    rare: Vec<(u32, Rare)>,
    /// Indices by name (the first of a repeated name), only in a folder of over [`SMALL`].
    by_name: Option<HashTable<u32>>,
}

/// One entry's `lstat` (or its errno) and where its name ends: 40 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rec {
    /// The size, or the errno when `lstat` failed.
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    end: u32,
    mode: u16,
    /// Eight bits of the name's hash: a search through a small folder compares names only
    /// where these match (a 16,384-rank verification looks names up a million times).
    tag: u8,
    /// [`STEMMED`], [`FAILED`], [`RARE`], and the [`FileKind`] above [`KIND_SHIFT`].
    flags: u8,
}

/// The name is the stem followed by the record's text.
const STEMMED: u8 = 1;
/// `lstat` failed; `size` is the errno.
const FAILED: u8 = 2;
/// The entry has a [`Rare`] part.
const RARE: u8 = 4;
/// Where the file kind's code starts in `flags` (three bits).
const KIND_SHIFT: u8 = 5;

/// The parts of an entry its record cannot hold.
#[derive(Clone, Debug, PartialEq, Default)]
struct Rare {
    /// The whole `lstat`, when the record cannot hold it exactly (another device, a time
    /// beyond ±292 years, an error whose text is not its errno's).
    lstat: Option<Result<Stat, OsErr>>,
    extra: Option<Box<EntryExtra>>,
}

const KINDS: [FileKind; 8] = [
    FileKind::File,
    FileKind::Dir,
    FileKind::Symlink,
    FileKind::Fifo,
    FileKind::Socket,
    FileKind::CharDevice,
    FileKind::BlockDevice,
    FileKind::Other,
];

fn kind_code(k: FileKind) -> u8 {
    KINDS.iter().position(|&x| x == k).unwrap_or(7) as u8
}

/// One random hasher per process: names come from the tree, and a tree can be made to
/// collide under a fixed seed.
fn hasher() -> &'static DefaultHashBuilder {
    static H: std::sync::OnceLock<DefaultHashBuilder> = std::sync::OnceLock::new();
    H.get_or_init(DefaultHashBuilder::default)
}

/// The hash of a name given as its two parts (stem and rest): stored names and looked-up
/// names are split the same way (at the stem when they start with it), so equal names hash
/// alike.
fn hash_parts(a: &[u8], b: &[u8]) -> u64 {
    let mut h = hasher().build_hasher();
    h.write(a);
    h.write(b);
    h.write_u8(0xff);
    h.finish()
}

/// A name as (stem, rest) when it starts with a non-empty `stem`, else ("", name): how names
/// are stored and hashed.
fn split<'n>(stem: &'n str, name: &'n str) -> (&'n str, &'n str) {
    match name.strip_prefix(stem) {
        Some(rest) if !stem.is_empty() => (stem, rest),
        _ => ("", name),
    }
}

/// A record's eight bits of a name's hash.
fn tag(h: u64) -> u8 {
    (h >> 56) as u8
}

/// The stem of a listing: the first name with a `-`, up to its last `-` (the step part of a
/// checkpoint name follows it), else the first name with a `_`, up to its last `_`.
fn stem_of<'a>(names: impl Iterator<Item = &'a str> + Clone) -> &'a str {
    for sep in ['-', '_'] {
        if let Some((n, i)) = names.clone().find_map(|n| n.rfind(sep).map(|i| (n, i))) {
            return &n[..=i];
        }
    }
    ""
}

/// A record's stat part, or `None` when only [`Rare`] can hold it exactly.
fn pack(st: &Stat, dev: u64) -> Option<(u64, i64, i64, u64, u16, u8)> {
    let ns = st.mtime_sec.checked_mul(1_000_000_000)?;
    let ns = ns.checked_add(st.mtime_nsec as i64)?;
    (st.dev == dev && st.mtime_nsec < 1_000_000_000).then_some((
        st.size,
        ns,
        st.ctime_ns,
        st.ino,
        st.mode,
        kind_code(st.kind),
    ))
}

/// The record of an entry's `lstat` (its name's end and [`STEMMED`] not set yet), and what
/// the record cannot hold.
fn record(
    lstat: &Result<Stat, OsErr>,
    extra: Option<Box<EntryExtra>>,
    dev: u64,
) -> (Rec, Option<Rare>) {
    let mut r = Rec {
        size: 0,
        mtime_ns: 0,
        ctime_ns: 0,
        ino: 0,
        end: 0,
        mode: 0,
        tag: 0,
        flags: 0,
    };
    let mut odd = Rare { lstat: None, extra };
    match lstat {
        Ok(st) => match pack(st, dev) {
            Some((size, m, c, ino, mode, kind)) => {
                (r.size, r.mtime_ns, r.ctime_ns, r.ino, r.mode) = (size, m, c, ino, mode);
                r.flags |= kind << KIND_SHIFT;
            }
            None => odd.lstat = Some(lstat.clone()),
        },
        Err(err) => {
            r.flags |= FAILED;
            r.size = err.errno as u32 as u64;
            if OsErr::errno(err.errno) != *err {
                odd.lstat = Some(lstat.clone());
            }
        }
    }
    match odd == Rare::default() {
        true => (r, None),
        false => {
            r.flags |= RARE;
            (r, Some(odd))
        }
    }
}

impl Entries {
    pub fn new(list: Vec<Entry>) -> Entries {
        let stem = stem_of(list.iter().map(|e| &*e.name)).to_owned();
        let dev = list
            .iter()
            .find_map(|e| e.lstat.as_ref().ok().map(|s| s.dev))
            .unwrap_or(0);
        let mut text = String::with_capacity(
            stem.len() + list.iter().map(|e| e.name.len()).sum::<usize>()
                - stem.len() * list.iter().filter(|e| e.name.starts_with(&*stem)).count(),
        );
        text.push_str(&stem);
        let mut recs = Vec::with_capacity(list.len());
        let mut rare = Vec::new();
        for (i, e) in list.into_iter().enumerate() {
            let (a, b) = split(&stem, &e.name);
            text.push_str(b);
            let stemmed = !a.is_empty();
            let (mut r, odd) = record(&e.lstat, e.extra, dev);
            r.tag = tag(hash_parts(a.as_bytes(), b.as_bytes()));
            r.end = u32::try_from(text.len()).unwrap_or(u32::MAX);
            if stemmed {
                r.flags |= STEMMED;
            }
            if let Some(odd) = odd {
                rare.push((i as u32, odd));
            }
            recs.push(r);
        }
        let mut out = Entries {
            text: text.into_boxed_str(),
            recs: recs.into_boxed_slice(),
            dev,
            stem: stem.len() as u32,
            side: None,
        };
        let by_name = out.index();
        if by_name.is_some() || !rare.is_empty() {
            out.side = Some(Box::new(Side { rare, by_name }));
        }
        out
    }

    fn stem(&self) -> &str {
        self.text.get(..self.stem as usize).unwrap_or("")
    }

    /// The name index of a large folder.
    fn index(&self) -> Option<HashTable<u32>> {
        if self.recs.len() <= SMALL {
            return None;
        }
        let mut t = HashTable::with_capacity(self.recs.len());
        for i in 0..self.recs.len() {
            let (a, b) = self.parts(i);
            let h = hash_parts(a.as_bytes(), b.as_bytes());
            if let Slot::Vacant(v) = t.entry(
                h,
                |&j: &u32| self.parts(j as usize) == (a, b),
                |&j| {
                    let (a, b) = self.parts(j as usize);
                    hash_parts(a.as_bytes(), b.as_bytes())
                },
            ) {
                v.insert(i as u32);
            }
        }
        Some(t)
    }

    /// Entry `i`'s name as (stem or "", rest).
    fn parts(&self, i: usize) -> (&str, &str) {
        let r = &self.recs[i];
        let start = match i {
            0 => self.stem as usize,
            _ => self.recs[i - 1].end as usize,
        };
        let rest = self.text.get(start..r.end as usize).unwrap_or("");
        match r.flags & STEMMED {
            0 => ("", rest),
            _ => (self.stem(), rest),
        }
    }

    fn rare(&self, i: usize) -> Option<&Rare> {
        if self.recs[i].flags & RARE == 0 {
            return None;
        }
        let rare = &self.side.as_ref()?.rare;
        let k = rare.binary_search_by_key(&(i as u32), |r| r.0).ok()?;
        Some(&rare[k].1)
    }

    /// A listing of nothing (what a folder that cannot be listed shows).
    pub fn empty() -> &'static Entries {
        static EMPTY: std::sync::OnceLock<Entries> = std::sync::OnceLock::new();
        EMPTY.get_or_init(Entries::default)
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Entry `i`'s name.
    pub fn name(&self, i: usize) -> Name {
        let (a, b) = self.parts(i);
        Name::concat(a, b)
    }

    /// Whether entry `i` is called `name`.
    fn is_named(&self, i: usize, name: &str) -> bool {
        let (a, b) = self.parts(i);
        name.len() == a.len() + b.len()
            && name.as_bytes()[..a.len()] == *a.as_bytes()
            && name.as_bytes()[a.len()..] == *b.as_bytes()
    }

    /// Entry `i`'s `lstat`.
    pub fn lstat(&self, i: usize) -> Result<Stat, OsErr> {
        if let Some(Rare { lstat: Some(l), .. }) = self.rare(i) {
            return l.clone();
        }
        let r = &self.recs[i];
        if r.flags & FAILED != 0 {
            return Err(OsErr::errno(r.size as i32));
        }
        Ok(Stat {
            kind: KINDS[(r.flags >> KIND_SHIFT) as usize & 7],
            size: r.size,
            mtime_sec: r.mtime_ns.div_euclid(1_000_000_000),
            mtime_nsec: r.mtime_ns.rem_euclid(1_000_000_000) as u32,
            ino: r.ino,
            dev: self.dev,
            mode: r.mode,
            ctime_ns: r.ctime_ns,
        })
    }

    /// Entry `i`, built from its parts.
    pub fn get(&self, i: usize) -> Entry {
        Entry {
            name: self.name(i),
            lstat: self.lstat(i),
            extra: self.rare(i).and_then(|r| r.extra.clone()),
        }
    }

    /// The names in `readdir` order, without the rest of each entry (what a pass that reads
    /// only names needs: a folder of 100,000 checkpoints is read that way several times).
    pub fn names(&self) -> impl ExactSizeIterator<Item = Name> + '_ {
        (0..self.recs.len()).map(|i| self.name(i))
    }

    /// The entries in `readdir` order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            of: self,
            range: 0..self.recs.len(),
        }
    }

    /// The index of the entry called `name` (the first in `readdir` order if a name repeats).
    pub fn position(&self, name: &str) -> Option<usize> {
        let (a, b) = split(self.stem(), name);
        let h = hash_parts(a.as_bytes(), b.as_bytes());
        let Some(t) = self.side.as_ref().and_then(|s| s.by_name.as_ref()) else {
            let t = tag(h);
            return (0..self.recs.len()).find(|&i| self.recs[i].tag == t && self.is_named(i, name));
        };
        t.find(h, |&j| self.is_named(j as usize, name))
            .map(|&j| j as usize)
    }

    /// The entry called `name` (the first in `readdir` order if a name repeats).
    pub fn find(&self, name: &str) -> Option<Entry> {
        self.position(name).map(|i| self.get(i))
    }

    /// Entry `i`'s `stat` following a symlink ([`Entry::stat`]), without building the entry.
    pub fn followed(&self, i: usize) -> Result<Stat, OsErr> {
        match self.rare(i).and_then(|r| r.extra.as_ref()?.target.as_ref()) {
            Some(t) => t.clone(),
            None => self.lstat(i),
        }
    }

    /// The `stat` (following a symlink) of the entry called `name`, if listed: the lookups of
    /// the resolvers and the verifier need only that (no name is built).
    pub fn stat_of(&self, name: &str) -> Option<Result<Stat, OsErr>> {
        self.position(name).map(|i| self.followed(i))
    }

    /// Whether the entry called `name` is listed and can be examined (`os.path.exists`).
    pub fn exists(&self, name: &str) -> bool {
        self.stat_of(name).is_some_and(|s| s.is_ok())
    }

    /// The version of the file called `name` (following a symlink), if listed and examinable.
    pub fn file_id(&self, name: &str) -> Option<super::FileId> {
        self.stat_of(name)?.ok().map(|s| super::FileId::from(&s))
    }

    /// Keep the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        *self = self.iter().filter(|e| keep(e)).collect();
    }

    /// Replace the entry with `e`'s name (nothing when there is none), in place: the watcher
    /// replaces a root entry each time a rank folder's own times change, and rebuilding a
    /// 16,384-entry root listing for each would be quadratic over a save.
    pub fn replace(&mut self, e: Entry) {
        let Some(i) = self.position(&e.name) else {
            return;
        };
        let (mut r, odd) = record(&e.lstat, e.extra, self.dev);
        r.end = self.recs[i].end;
        r.flags |= self.recs[i].flags & STEMMED;
        r.tag = self.recs[i].tag;
        self.recs[i] = r;
        let side = self.side.get_or_insert_with(Default::default);
        let at = side.rare.binary_search_by_key(&(i as u32), |x| x.0);
        match (at, odd) {
            (Ok(k), Some(o)) => side.rare[k].1 = o,
            (Ok(k), None) => {
                side.rare.remove(k);
            }
            (Err(k), Some(o)) => side.rare.insert(k, (i as u32, o)),
            (Err(_), None) => {}
        }
        if side.rare.is_empty() && side.by_name.is_none() {
            self.side = None;
        }
    }

    /// Bytes this listing holds on the heap (what `a_rank_folder_is_compact` bounds).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.text.len()
            + std::mem::size_of_val(&*self.recs)
            + self.side.as_ref().map_or(0, |s| {
                std::mem::size_of::<Side>()
                    + s.rare.capacity() * std::mem::size_of::<(u32, Rare)>()
                    + s.by_name.as_ref().map_or(0, |t| t.capacity() * 5)
            })
    }
}

/// The entries of an [`Entries`], built one at a time.
#[derive(Clone)]
pub struct Iter<'a> {
    of: &'a Entries,
    range: std::ops::Range<usize>,
}

impl Iterator for Iter<'_> {
    type Item = Entry;
    fn next(&mut self) -> Option<Entry> {
        self.range.next().map(|i| self.of.get(i))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
    fn nth(&mut self, n: usize) -> Option<Entry> {
        self.range.nth(n).map(|i| self.of.get(i))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Entry> {
        self.range.next_back().map(|i| self.of.get(i))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Entries {
    type Item = Entry;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl Default for &Entries {
    fn default() -> Self {
        Entries::empty()
    }
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<Entry> for Entries {
    fn from_iter<I: IntoIterator<Item = Entry>>(it: I) -> Entries {
        Entries::new(it.into_iter().collect())
    }
}

impl From<Vec<Entry>> for Entries {
    fn from(list: Vec<Entry>) -> Entries {
        Entries::new(list)
    }
}

impl PartialEq for Entries {
    fn eq(&self, o: &Entries) -> bool {
        self.len() == o.len() && self.iter().eq(o.iter())
    }
}

impl Serialize for Entries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn e(n: &str) -> Entry {
        Entry::named(OsStr::new(n), Err(OsErr::errno(2)), None)
    }

    fn st(kind: FileKind, size: u64, dev: u64, sec: i64, nsec: u32) -> Stat {
        Stat {
            kind,
            size,
            mtime_sec: sec,
            mtime_nsec: nsec,
            ino: size * 7 + 1,
            dev,
            mode: 0o100644,
            ctime_ns: sec.wrapping_mul(3).wrapping_sub(11),
        }
    }

    #[test]
    fn finds_by_name_keeps_order() {
        let mut x = Entries::new(vec![e("b"), e("a"), e("c"), e("a")]);
        assert_eq!(
            x.iter().map(|e| e.name.to_string()).collect::<String>(),
            "baca"
        );
        assert!(x.find("a").is_some() && x.find("c").is_some() && x.find("d").is_none());
        // a repeated name finds its first occurrence in readdir order
        let y = Entries::new(vec![
            Entry::named(OsStr::new("a"), Err(OsErr::errno(2)), None),
            Entry::named(OsStr::new("a"), Err(OsErr::errno(13)), None),
        ]);
        assert_eq!(y.find("a").unwrap().lstat, Err(OsErr::errno(2)));
        x.retain(|e| &*e.name != "a");
        assert_eq!(x.len(), 2);
        assert!(x.find("a").is_none() && x.find("b").is_some());
    }

    /// Every entry reads back exactly as it was given, whatever its parts: names with and
    /// without the stem, long and non-UTF-8 names, symlinks, other devices, times beyond
    /// the records' range, errors with their own text — in small and indexed folders.
    #[test]
    fn every_entry_reads_back_exactly() {
        let mut list = vec![
            Entry::named(
                OsStr::new("llama_rank_3-20_2.ckpt"),
                Ok(st(FileKind::File, 8000, 9, 1_700_000_000, 5)),
                None,
            ),
            Entry::named(
                OsStr::new("meta.json"),
                Ok(st(FileKind::File, 120, 9, -5, 999_999_999)),
                None,
            ),
            Entry::named(
                OsStr::new("llama_rank_3-"),
                Ok(st(FileKind::Dir, 0, 10, 1, 0)),
                None,
            ),
            Entry::named(
                OsStr::new("llama_rank_3-25_2.ckpt"),
                Ok(st(FileKind::Symlink, 3, 9, i64::MAX, 1)),
                Some(Ok(st(FileKind::File, 44, 9, i64::MIN, 0))),
            ),
            Entry::named(
                OsStr::new(&"x".repeat(300)),
                Err(OsErr {
                    errno: 0,
                    text: "odd".into(),
                }),
                None,
            ),
            Entry::named(OsStr::new("q"), Err(OsErr::errno(13)), None),
        ];
        {
            use std::os::unix::ffi::OsStrExt;
            list.push(Entry::named(
                OsStr::from_bytes(b"llama_rank_3-\xff\n.ckpt"),
                Ok(st(FileKind::Fifo, 0, 9, 2, 3)),
                None,
            ));
        }
        for n in [0, 60] {
            let mut all = list.clone();
            for k in 0..n {
                let name = format!("llama_rank_3-{k}_9.ckpt");
                all.push(Entry::named(
                    OsStr::new(&name),
                    Ok(st(FileKind::File, k, 9, k as i64, 0)),
                    None,
                ));
            }
            let x = Entries::new(all.clone());
            let indexed = x.side.as_ref().is_some_and(|s| s.by_name.is_some());
            assert_eq!(indexed, all.len() > SMALL);
            assert_eq!(x.len(), all.len());
            for (i, want) in all.iter().enumerate() {
                assert_eq!(x.get(i), *want, "entry {i}");
                assert_eq!(x.find(&want.name).as_ref(), Some(want));
                // the lookups that build no entry say what the entry says
                let st = want.stat().cloned().map_err(Clone::clone);
                assert_eq!(x.followed(i), st, "entry {i}");
                assert_eq!(x.stat_of(&want.name), Some(st));
                assert_eq!(x.exists(&want.name), want.exists());
                assert_eq!(x.file_id(&want.name), want.file_id());
            }
            assert_eq!(x.iter().collect::<Vec<_>>(), all);
            assert!(x.find("llama_rank_3-20_2.ckp").is_none());
            assert!(x.find("llama_rank_3-20_2.ckptt").is_none());
            assert!(x.find("").is_none());
            assert!(x.stat_of("nothing").is_none() && !x.exists("nothing"));
        }
    }

    /// A replaced entry keeps its place and name, and its new facts read back exactly, also
    /// when they need the rare part (another device, a symlink) or stop needing it.
    #[test]
    fn a_replaced_entry_keeps_its_place() {
        for n in [10, 100] {
            let mk = |n: &str, size, dev| {
                Entry::named(OsStr::new(n), Ok(st(FileKind::Dir, size, dev, 1, 1)), None)
            };
            let mut x: Entries = (0..n).map(|r| mk(&format!("rank_{r}"), 1, 1)).collect();
            let mut want: Vec<Entry> = x.iter().collect();
            let link = Entry::named(
                OsStr::new("rank_3"),
                Ok(st(FileKind::Symlink, 5, 1, 2, 2)),
                Some(Err(OsErr::errno(2))),
            );
            for e in [
                mk("rank_7", 99, 1),
                mk("rank_5", 3, 2),
                link,
                mk("rank_5", 4, 1),
            ] {
                let i = want.iter().position(|w| w.name == e.name).unwrap();
                want[i] = e.clone();
                x.replace(e);
                assert_eq!(x.iter().collect::<Vec<_>>(), want);
            }
            x.replace(mk("rank_700", 99, 1));
            assert_eq!(x.iter().collect::<Vec<_>>(), want);
            assert_eq!(x.find("rank_3"), Some(want[3].clone()));
        }
    }

    /// The point of the type: a rank folder's entries cost about half an `Entry` each.
    #[test]
    fn a_rank_folder_is_compact() {
        let x: Entries = (0..20)
            .map(|s| format!("llama3_1_8b_rank_16383-{}_2.ckpt", s * 50))
            .chain(["meta.json".to_owned()])
            .map(|n| Entry::named(OsStr::new(&n), Ok(st(FileKind::File, 1, 1, 1, 1)), None))
            .collect();
        assert_eq!(std::mem::size_of::<Rec>(), 40);
        assert_eq!(std::mem::size_of::<Entries>(), 56);
        assert!(x.heap_bytes() < 21 * 52, "{}", x.heap_bytes());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;

        /// Names as trees hold them: checkpoint names sharing a stem, `meta.json`, and any
        /// bytes (not UTF-8, control characters, backslashes, separators, long).
        fn name() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                (0u32..3, 0u32..300)
                    .prop_map(|(r, e)| format!("llama_rank_{r}-{e}_2.ckpt").into_bytes()),
                Just(b"meta.json".to_vec()),
                prop::collection::vec(
                    prop_oneof![
                        Just(b'-'),
                        Just(b'_'),
                        Just(b'a'),
                        Just(0xff),
                        Just(b'\n'),
                        Just(b'\\'),
                        any::<u8>()
                    ],
                    0..60
                ),
            ]
        }

        fn lstat() -> impl Strategy<Value = Result<Stat, OsErr>> {
            let stat = (
                0usize..8,
                any::<u64>(),
                prop_oneof![any::<i64>(), -10i64..2_000_000_000],
                prop_oneof![0u32..1_000_000_000, any::<u32>()],
                any::<u64>(),
                1u64..3,
                any::<u16>(),
                any::<i64>(),
            )
                .prop_map(|(k, size, sec, nsec, ino, dev, mode, ctime_ns)| Stat {
                    kind: KINDS[k],
                    size,
                    mtime_sec: sec,
                    mtime_nsec: nsec,
                    ino,
                    dev,
                    mode,
                    ctime_ns,
                });
            prop_oneof![
                4 => stat.prop_map(Ok),
                1 => (0i32..200).prop_map(|e| Err(OsErr::errno(e))),
                1 => Just(Err(OsErr { errno: 0, text: "odd".into() })),
            ]
        }

        proptest! {
            /// Whatever a folder lists, its compact form gives back exactly that: the entries in
            /// order, each name found (the first of a repeated one), the lookups that build no
            /// entry agreeing with the entry, and a replaced entry read back in its place.
            #[test]
            fn a_listing_reads_back_as_given(
                raw in prop::collection::vec((name(), lstat(), prop::option::of(lstat())), 0..120),
                at in any::<prop::sample::Index>(),
                new in lstat(),
            ) {
                let list: Vec<Entry> = raw
                    .into_iter()
                    .map(|(n, l, t)| Entry::named(OsStr::from_bytes(&n), l, t))
                    .collect();
                let mut x = Entries::new(list.clone());
                prop_assert_eq!(x.iter().collect::<Vec<_>>(), list.clone());
                for e in &list {
                    let first = list.iter().find(|o| o.name == e.name).unwrap();
                    let found = x.find(&e.name);
                    prop_assert_eq!(found.as_ref(), Some(first));
                    let st = first.stat().cloned().map_err(Clone::clone);
                    prop_assert_eq!(x.stat_of(&e.name), Some(st));
                    prop_assert_eq!(x.file_id(&e.name), first.file_id());
                }
                if !list.is_empty() {
                    let i = at.index(list.len());
                    let first = list.iter().position(|o| o.name == list[i].name).unwrap();
                    let e = Entry::named(list[i].os_name(), new, None);
                    let mut want = list.clone();
                    want[first] = e.clone();
                    x.replace(e);
                    prop_assert_eq!(x.iter().collect::<Vec<_>>(), want.clone());
                    prop_assert_eq!(x.find(&want[first].name), Some(want[first].clone()));
                }
            }
        }
    }
}
