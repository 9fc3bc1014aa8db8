//! A folder's entries in `readdir` order (MindFormers' answers depend on that order), with a
//! name index: looking a name up is a hash probe, not a scan — a folder of 100,000
//! checkpoints would otherwise make every per-file lookup quadratic (and a binary search
//! through an index costs a cache miss per step there: 25 % of `resolve`'s time).

use super::Entry;
use hashbrown::hash_table::Entry as Entry_;
use hashbrown::{DefaultHashBuilder, HashTable};
use serde::Serialize;
use std::hash::BuildHasher;
use std::ops::Deref;

#[derive(Clone, Debug, Default)]
pub struct Entries {
    list: Vec<Entry>,
    /// Indices into `list` by name (the first of a repeated name).
    by_name: HashTable<u32>,
}

/// One random hasher per process: names come from the tree, and a tree can be made to
/// collide under a fixed seed.
fn hasher() -> &'static DefaultHashBuilder {
    static H: std::sync::OnceLock<DefaultHashBuilder> = std::sync::OnceLock::new();
    H.get_or_init(DefaultHashBuilder::default)
}

fn hash(name: &str) -> u64 {
    hasher().hash_one(name)
}

impl Entries {
    pub fn new(list: Vec<Entry>) -> Entries {
        let mut by_name = HashTable::with_capacity(list.len());
        for (i, e) in list.iter().enumerate() {
            let h = hash(&e.name);
            if let Entry_::Vacant(v) = by_name.entry(
                h,
                |&j: &u32| list[j as usize].name == e.name,
                |&j| hash(&list[j as usize].name),
            ) {
                v.insert(i as u32);
            }
        }
        Entries { list, by_name }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name
            .find(hash(name), |&j| &*self.list[j as usize].name == name)
            .map(|&j| j as usize)
    }

    /// The entry called `name` (the first in `readdir` order if a name repeats).
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.index_of(name).map(|i| &self.list[i])
    }

    /// Keep the entries `keep` accepts (the index is rebuilt).
    pub fn retain(&mut self, keep: impl FnMut(&Entry) -> bool) {
        let mut list = std::mem::take(&mut self.list);
        list.retain(keep);
        *self = Entries::new(list);
    }

    /// Replace the entry with `e`'s name (nothing when there is none).
    pub fn replace(&mut self, e: Entry) {
        if let Some(i) = self.index_of(&e.name) {
            self.list[i] = e;
        }
    }

    pub fn as_slice(&self) -> &[Entry] {
        &self.list
    }
}

impl Deref for Entries {
    type Target = [Entry];
    fn deref(&self) -> &[Entry] {
        &self.list
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
        self.list == o.list
    }
}

impl Serialize for Entries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OsErr;

    fn e(n: &str) -> Entry {
        Entry::named(std::ffi::OsStr::new(n), Err(OsErr::errno(2)), None)
    }

    #[test]
    fn finds_by_name_keeps_order() {
        let mut x = Entries::new(vec![e("b"), e("a"), e("c"), e("a")]);
        assert_eq!(
            x.iter().map(|e| e.name.as_ref()).collect::<String>(),
            "baca"
        );
        assert!(x.find("a").is_some() && x.find("c").is_some() && x.find("d").is_none());
        // a repeated name finds its first occurrence in readdir order
        let y = Entries::new(vec![
            Entry::named(std::ffi::OsStr::new("a"), Err(OsErr::errno(2)), None),
            Entry::named(std::ffi::OsStr::new("a"), Err(OsErr::errno(13)), None),
        ]);
        assert_eq!(y.find("a").unwrap().lstat, Err(OsErr::errno(2)));
        x.retain(|e| &*e.name != "a");
        assert_eq!(x.len(), 2);
        assert!(x.find("a").is_none() && x.find("b").is_some());
    }
}
