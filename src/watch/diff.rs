//! What changed between two listings of the same folder, as watch events.

use super::event::WatchEvent;
use crate::layout::mindformers::classify::is_meta_tmp;
use crate::layout::rank_dir_number;
use crate::model::{DirNode, Entry, FileRead};
use std::collections::HashMap;

/// How an entry shows up in events.
pub fn kind_of(name: &str) -> &'static str {
    if name.ends_with(".ckpt") || name.ends_with(".safetensors") {
        "checkpoint"
    } else if name.ends_with(".tmp") {
        "tmp"
    } else if is_meta_tmp(name) {
        "meta_tmp"
    } else {
        "other"
    }
}

fn same(a: &Entry, b: &Entry) -> bool {
    a.lstat == b.lstat && a.target == b.target
}

fn size_of(e: &Entry) -> Option<u64> {
    e.stat().ok().map(|s| s.size)
}

fn meta_text(n: Option<&DirNode>) -> Option<String> {
    match n?.meta.as_ref()? {
        FileRead::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(format!("<{other:?}>")),
    }
}

/// Events turning `old` into `new` for folder `dir` (`None`: absent).
pub fn dir_events(dir: &str, old: Option<&DirNode>, new: Option<&DirNode>) -> Vec<WatchEvent> {
    let rank = rank_dir_number(dir);
    let mut out = Vec::new();
    match (old.is_some(), new.is_some()) {
        (false, true) => out.push(WatchEvent::RankAdded {
            rank,
            dir: dir.into(),
        }),
        (true, false) => out.push(WatchEvent::RankRemoved {
            rank,
            dir: dir.into(),
        }),
        _ => {}
    }
    let empty: &[Entry] = &[];
    let before: HashMap<&str, &Entry> = old
        .map_or(empty, |n| n.listing.entries())
        .iter()
        .map(|e| (e.name.as_str(), e))
        .collect();
    let after = new.map_or(empty, |n| n.listing.entries());
    for e in after {
        if e.name == "meta.json" {
            continue;
        }
        let (file, kind, size) = (e.name.clone(), kind_of(&e.name), size_of(e));
        match before.get(e.name.as_str()) {
            None => out.push(WatchEvent::ShardAdded {
                rank,
                dir: dir.into(),
                file,
                kind,
                size,
            }),
            Some(o) if !same(o, e) => out.push(WatchEvent::ShardChanged {
                rank,
                dir: dir.into(),
                file,
                kind,
                size,
            }),
            Some(_) => {}
        }
    }
    let now: std::collections::HashSet<&str> = after.iter().map(|e| e.name.as_str()).collect();
    for name in before
        .keys()
        .filter(|n| **n != "meta.json" && !now.contains(*n))
    {
        out.push(WatchEvent::ShardRemoved {
            rank,
            dir: dir.into(),
            file: (*name).into(),
            kind: kind_of(name),
        });
    }
    let (m0, m1) = (meta_text(old), meta_text(new));
    if m0 != m1 {
        out.push(WatchEvent::MetaChanged {
            rank,
            dir: dir.into(),
            content: m1,
        });
    }
    out
}
