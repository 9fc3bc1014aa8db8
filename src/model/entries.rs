//! A folder's entries in `readdir` order (MindFormers' answers depend on that order), with a
//! name index: looking a name up is a binary search, not a scan — a folder of 100,000
//! checkpoints would otherwise make every per-file lookup quadratic.

use super::Entry;
use serde::Serialize;
use std::ops::Deref;

#[derive(Clone, Debug, Default)]
pub struct Entries {
    list: Vec<Entry>,
    /// Indices into `list`, sorted by name.
    by_name: Vec<u32>,
}

impl Entries {
    pub fn new(list: Vec<Entry>) -> Entries {
        let mut by_name: Vec<u32> = (0..list.len() as u32).collect();
        by_name.sort_by(|a, b| list[*a as usize].name.cmp(&list[*b as usize].name));
        Entries { list, by_name }
    }

    /// The entry called `name` (the first in `readdir` order if a name repeats).
    pub fn find(&self, name: &str) -> Option<&Entry> {
        let i = self
            .by_name
            .partition_point(|&i| self.list[i as usize].name.as_ref() < name);
        let &at = self.by_name.get(i)?;
        let e = &self.list[at as usize];
        (&*e.name == name).then_some(e)
    }

    /// Keep the entries `keep` accepts (the index is rebuilt).
    pub fn retain(&mut self, keep: impl FnMut(&Entry) -> bool) {
        let mut list = std::mem::take(&mut self.list);
        list.retain(keep);
        *self = Entries::new(list);
    }

    /// Replace the entry with `e`'s name (nothing when there is none).
    pub fn replace(&mut self, e: Entry) {
        let i = self
            .by_name
            .partition_point(|&i| self.list[i as usize].name < e.name);
        if let Some(&at) = self.by_name.get(i) {
            if self.list[at as usize].name == e.name {
                self.list[at as usize] = e;
            }
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
        x.retain(|e| &*e.name != "a");
        assert_eq!(x.len(), 2);
        assert!(x.find("a").is_none() && x.find("b").is_some());
    }
}
