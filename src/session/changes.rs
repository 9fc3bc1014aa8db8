//! What a model delta changed, as events: the difference between a folder's old and new
//! listing (entries classified by the one classifier), and verdicts that are new.

use super::events::Event;
use crate::layout::mindformers::classify::classify;
use crate::layout::rank_dir_number;
use crate::model::{DirNode, Entries, Entry, FileRead};
use std::collections::HashSet;

fn same(a: &Entry, b: &Entry) -> bool {
    a.lstat == b.lstat && a.target() == b.target()
}

fn size_of(e: &Entry) -> Option<u64> {
    e.stat().ok().map(|s| s.size)
}

fn meta_text(n: Option<&DirNode>) -> Option<String> {
    match n?.meta.as_ref()? {
        FileRead::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        FileRead::Error(e) => Some(format!("<unreadable: {}>", e.text)),
        FileRead::TooLarge(n) => Some(format!("<{n} bytes: too large to read>")),
        FileRead::NotRegular(k) => Some(format!("<{k}: never opened>")),
    }
}

/// Events turning `old` into `new` for folder `dir` (`None`: absent).
pub fn dir_events(dir: &str, old: Option<&DirNode>, new: Option<&DirNode>) -> Vec<Event> {
    let rank = rank_dir_number(dir);
    let mut out = Vec::new();
    match (old.is_some(), new.is_some()) {
        (false, true) => out.push(Event::RankAdded {
            rank,
            dir: dir.into(),
        }),
        (true, false) => out.push(Event::RankRemoved {
            rank,
            dir: dir.into(),
        }),
        _ => {}
    }
    let before = old.map_or(Entries::empty(), |n| n.listing.entries());
    let after = new.map_or(Entries::empty(), |n| n.listing.entries());
    for e in after.iter().filter(|e| &*e.name != "meta.json") {
        let (file, kind, size) = (e.name.to_string(), classify(&e.name).label(), size_of(&e));
        match before.find(&e.name) {
            None => out.push(Event::ShardAdded {
                rank,
                dir: dir.into(),
                file,
                kind,
                size,
            }),
            Some(o) if !same(&o, &e) => out.push(Event::ShardChanged {
                rank,
                dir: dir.into(),
                file,
                kind,
                size,
            }),
            Some(_) => {}
        }
    }
    let mut gone = HashSet::new();
    for e in before.iter() {
        let name = e.name;
        if &*name != "meta.json" && after.position(&name).is_none() && gone.insert(name.clone()) {
            out.push(Event::ShardRemoved {
                rank,
                dir: dir.into(),
                kind: classify(&name).label(),
                file: name.into(),
            });
        }
    }
    let (m0, m1) = (meta_text(old), meta_text(new));
    if m0 != m1 {
        out.push(Event::MetaChanged {
            rank,
            dir: dir.into(),
            content: m1,
        });
    }
    fn controls(n: Option<&DirNode>) -> &[(String, FileRead)] {
        n.map_or(&[][..], |n| &n.control[..])
    }
    for (name, read) in controls(new) {
        if controls(old)
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, r)| r)
            != Some(read)
        {
            out.push(control_changed(dir, name, Some(read)));
        }
    }
    for (name, _) in controls(old) {
        if !controls(new).iter().any(|(c, _)| c == name) {
            out.push(control_changed(dir, name, None));
        }
    }
    out
}

/// The event for control file `file` of folder `dir` (`""`: the root) now read as `read`.
pub(crate) fn control_changed(dir: &str, file: &str, read: Option<&FileRead>) -> Event {
    Event::ControlChanged {
        dir: dir.into(),
        file: file.into(),
        content: read.map(|r| match r {
            FileRead::Bytes(b) if b.len() <= 4096 => String::from_utf8_lossy(b).into_owned(),
            FileRead::Bytes(b) => format!("<{} bytes>", b.len()),
            other => format!("<not read: {other:?}>"),
        }),
    }
}
