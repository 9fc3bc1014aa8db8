//! A bucket prefix's listing seen as a folder tree: object storage has keys, not folders, so
//! `rank_0/` exists exactly when a key starts with `rank_0/` (or a zero-byte folder marker
//! `rank_0/` is there, as consoles create for an empty folder). Pure: built from listing pages,
//! asked by the [`super::store::S3Store`] seam; no request is made here.

use crate::model::{FileKind, Stat};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// One object as the listing showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obj {
    pub size: u64,
    /// `LastModified` in nanoseconds since the epoch (S3 gives milliseconds).
    pub mtime_ns: i128,
    /// The listing's `ETag`, when the store gives one: a rewrite changes it even within the
    /// same millisecond and size.
    pub etag: Option<String>,
}

/// Every key under one prefix, relative to it (`rank_0/x.ckpt`), in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Objects {
    map: BTreeMap<String, Obj>,
    /// The prefix itself is an object (the root given names a file, not a folder).
    pub root_file: Option<Obj>,
    /// The prefix's own folder marker (`prefix/`, zero bytes) is there.
    pub root_marker: bool,
    /// Keys that are not paths (an empty, `.` or `..` segment, as `a//b` or `a/../b`): a
    /// folder cannot hold them, so they are left out and counted (the poll line says how many).
    pub skipped: usize,
    /// Distinguishes files of different buckets or stores in [`Stat::dev`].
    pub dev: u64,
}

/// The most objects one root's listing holds (about 150 bytes each in memory): a bucket prefix
/// with more is not a checkpoint folder, and is refused rather than read into memory.
pub const MAX_OBJECTS: usize = 1 << 20;

/// Parse a listing's `LastModified` (RFC 3339, `2026-11-30T18:30:29.322Z`).
pub fn parse_time(s: &str) -> Option<i128> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos())
}

fn hash_of(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish() | 1
}

impl Objects {
    pub fn new(dev_of: &str) -> Objects {
        Objects {
            dev: hash_of(&[dev_of]),
            ..Objects::default()
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Add the object whose key is `rel` under the prefix (`""`: the prefix's own marker).
    pub fn insert(&mut self, rel: &str, obj: Obj) {
        if rel.is_empty() {
            self.root_marker = true;
            return;
        }
        let body = rel.strip_suffix('/').unwrap_or(rel);
        if body
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            self.skipped += 1;
            return;
        }
        self.map.insert(rel.to_owned(), obj);
    }

    /// The stat of `rel` (`""`: the root), or `None` when no key makes it exist. A name that is
    /// both an object and a key prefix is the folder (a zero-byte object `rank_0` beside
    /// `rank_0/…` is a folder marker written without its slash).
    pub fn stat(&self, rel: &str) -> Option<Stat> {
        if rel.is_empty() {
            if !self.map.is_empty() || self.root_marker {
                return Some(self.dir_stat(""));
            }
            return self.root_file.as_ref().map(|o| self.file_stat("", o));
        }
        if self.has_children(rel) {
            return Some(self.dir_stat(rel));
        }
        self.map.get(rel).map(|o| self.file_stat(rel, o))
    }

    fn has_children(&self, rel: &str) -> bool {
        let p = format!("{rel}/");
        self.map
            .range(p.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&p))
    }

    fn file_stat(&self, rel: &str, o: &Obj) -> Stat {
        let (sec, nsec) = split_ns(o.mtime_ns);
        Stat {
            kind: FileKind::File,
            size: o.size,
            mtime_sec: sec,
            mtime_nsec: nsec,
            ino: hash_of(&[rel, o.etag.as_deref().unwrap_or("")]),
            dev: self.dev,
            mode: 0o100_444,
            ctime_ns: crate::model::saturate(o.mtime_ns),
        }
    }

    /// A folder's times are its newest object's (a local folder's move with what is written
    /// into it); its identity is its name.
    fn dir_stat(&self, rel: &str) -> Stat {
        let newest = self.under(rel).map(|(_, o)| o.mtime_ns).max().unwrap_or(0);
        let (sec, nsec) = split_ns(newest);
        Stat {
            kind: FileKind::Dir,
            size: 0,
            mtime_sec: sec,
            mtime_nsec: nsec,
            ino: hash_of(&[rel, "/"]),
            dev: self.dev,
            mode: 0o040_555,
            ctime_ns: crate::model::saturate(newest),
        }
    }

    /// The keys under folder `rel` (`""`: all), folder markers included.
    fn under<'a>(&'a self, rel: &str) -> impl Iterator<Item = (&'a String, &'a Obj)> + 'a {
        let p = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        self.map
            .range(p.clone()..)
            .take_while(move |(k, _)| k.starts_with(&p))
    }

    /// The names directly in folder `rel` with their stats, in key order (`None`: no such
    /// folder). A sub-folder is listed once however many keys it holds.
    pub fn children(&self, rel: &str) -> Option<Vec<(String, Stat)>> {
        if self.stat(rel)?.kind != FileKind::Dir {
            return None;
        }
        let skip = if rel.is_empty() { 0 } else { rel.len() + 1 };
        let mut out: Vec<(String, Stat)> = Vec::new();
        let mut dirs = std::collections::BTreeSet::new();
        for (k, o) in self.under(rel) {
            let rest = &k[skip..];
            if rest.is_empty() {
                // the folder's own marker
                continue;
            }
            match rest.split_once('/') {
                Some((first, _)) => {
                    dirs.insert(first.to_owned());
                }
                None if !dirs.contains(rest) && !self.has_children(k) => {
                    out.push((rest.to_owned(), self.file_stat(k, o)));
                }
                None => {}
            }
        }
        let join = |d: &str| match rel.is_empty() {
            true => d.to_owned(),
            false => format!("{rel}/{d}"),
        };
        out.retain(|(n, _)| !dirs.contains(n));
        out.extend(dirs.iter().map(|d| (d.clone(), self.dir_stat(&join(d)))));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }
}

fn split_ns(ns: i128) -> (i64, u32) {
    let sec = ns.div_euclid(1_000_000_000);
    let nsec = ns.rem_euclid(1_000_000_000) as u32;
    (
        i64::try_from(sec).unwrap_or(if sec < 0 { i64::MIN } else { i64::MAX }),
        nsec,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(size: u64, ms: i128) -> Obj {
        Obj {
            size,
            mtime_ns: ms * 1_000_000,
            etag: None,
        }
    }

    fn sample() -> Objects {
        let mut o = Objects::new("s3://b");
        o.insert("rank_0/a-10_2.ckpt", obj(100, 1_000));
        o.insert("rank_0/meta.json", obj(50, 3_000));
        o.insert("rank_1/a-10_2.ckpt", obj(100, 2_000));
        o.insert("rank_1/sub/deep.ckpt", obj(1, 9_000));
        o.insert("rank_3/", obj(0, 500));
        o.insert("rank_4", obj(0, 400));
        o.insert("rank_4/x", obj(7, 600));
        o.insert("notes.txt", obj(3, 100));
        o.insert("rank_0//odd.ckpt", obj(1, 1));
        o.insert("rank_0/../up.ckpt", obj(1, 1));
        o
    }

    #[test]
    fn keys_make_folders() {
        let o = sample();
        let root: Vec<(String, FileKind)> = o
            .children("")
            .unwrap()
            .into_iter()
            .map(|(n, s)| (n, s.kind))
            .collect();
        assert_eq!(
            root,
            [
                ("notes.txt".to_owned(), FileKind::File),
                ("rank_0".to_owned(), FileKind::Dir),
                ("rank_1".to_owned(), FileKind::Dir),
                ("rank_3".to_owned(), FileKind::Dir),
                ("rank_4".to_owned(), FileKind::Dir),
            ]
        );
        assert_eq!(o.skipped, 2);
        let r1: Vec<String> = o
            .children("rank_1")
            .unwrap()
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(r1, ["a-10_2.ckpt", "sub"]);
        assert!(
            o.children("rank_3").unwrap().is_empty(),
            "a marker is an empty folder"
        );
        let r4: Vec<String> = o
            .children("rank_4")
            .unwrap()
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(r4, ["x"]);
        assert_eq!(o.children("rank_0/meta.json"), None);
        assert_eq!(o.children("rank_9"), None);
    }

    #[test]
    fn folder_times_are_their_newest_objects() {
        let o = sample();
        let s = o.stat("rank_1").unwrap();
        assert_eq!((s.kind, s.mtime_sec), (FileKind::Dir, 9));
        let f = o.stat("rank_0/meta.json").unwrap();
        assert_eq!((f.kind, f.size, f.mtime_sec), (FileKind::File, 50, 3));
        assert_eq!(o.stat("rank_9"), None);
        assert_eq!(o.stat("").unwrap().kind, FileKind::Dir);
    }

    #[test]
    fn a_rewrite_is_a_new_identity() {
        let mut a = Objects::new("s3://b");
        a.insert("rank_0/x.ckpt", obj(1, 1));
        let mut b = a.clone();
        b.insert(
            "rank_0/x.ckpt",
            Obj {
                etag: Some("\"other\"".into()),
                ..obj(1, 1)
            },
        );
        assert_ne!(a.stat("rank_0/x.ckpt"), b.stat("rank_0/x.ckpt"));
    }

    #[test]
    fn an_empty_prefix_does_not_exist_and_a_key_equal_to_it_is_a_file() {
        let mut o = Objects::new("s3://b");
        assert_eq!(o.stat(""), None);
        o.root_file = Some(obj(5, 1));
        assert_eq!(o.stat("").unwrap().kind, FileKind::File);
        o.insert("", obj(0, 1));
        assert_eq!(o.stat("").unwrap().kind, FileKind::Dir);
    }

    #[test]
    fn times_parse_as_rfc3339() {
        assert_eq!(parse_time("1970-01-01T00:00:01.500Z"), Some(1_500_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
