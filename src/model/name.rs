//! An entry's name, stored inside the entry when it is short (nearly every checkpoint name:
//! `llama3_1_8b_rank_16383-1000_2.ckpt` is 34 bytes) and on the heap otherwise.
//!
//! A 16,384-rank tree lists 344,064 names. As a `Box<str>` each costs 16 bytes in the entry and
//! a 48-byte heap block (the allocator's header and rounding on a 26–40 byte string): 22 MB,
//! a fifth of `resolve`'s memory. Inline, it costs 40 bytes and no allocation. Small-string
//! crates (`compact_str`, `smartstring`, `smol_str`) inline at most 24 bytes, shorter than
//! these names, hence this type.

use serde::Serialize;
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// How many bytes fit inline (the type is then 40 bytes, like a `Box<str>` plus its block's
/// usable part, without the block).
const INLINE: usize = 38;

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is UTF-8 (checked when built).
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

/// A name: a `str` that keeps short text inside itself.
#[derive(Clone)]
pub struct Name(Repr);

impl Name {
    pub fn new(s: &str) -> Name {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Name(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Name(Repr::Heap(s.into()))
        }
    }

    /// `a` followed by `b`, without a temporary string when the two fit inline.
    pub fn concat(a: &str, b: &str) -> Name {
        let len = a.len() + b.len();
        if len > INLINE {
            return Name(Repr::Heap([a, b].concat().into_boxed_str()));
        }
        let mut bytes = [0; INLINE];
        bytes[..a.len()].copy_from_slice(a.as_bytes());
        bytes[a.len()..len].copy_from_slice(b.as_bytes());
        Name(Repr::Inline {
            len: len as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: the first `len` bytes were copied from one whole `&str` (`Name::new`) or
            // two whole `&str`s back to back (`Name::concat`), which is UTF-8, and never
            // changed since.
            Repr::Inline { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(bytes.get_unchecked(..*len as usize))
            },
            Repr::Heap(s) => s,
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        match s.len() <= INLINE {
            true => Name::new(&s),
            false => Name(Repr::Heap(s.into_boxed_str())),
        }
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.as_str().to_owned()
    }
}

impl PartialEq for Name {
    fn eq(&self, o: &Name) -> bool {
        self.as_str() == o.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, o: &String) -> bool {
        self.as_str() == o
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, o: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Name {
    fn cmp(&self, o: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names_read_back_whole() {
        for s in [
            "",
            "meta.json",
            "llama3_1_8b_rank_16383-1000_2.ckpt",
            &"x".repeat(INLINE),
            &"é".repeat(INLINE / 2),
            &"y".repeat(INLINE + 1),
            &"🦀".repeat(100),
        ] {
            let n = Name::new(s);
            assert_eq!(&*n, s);
            for cut in (0..=s.len()).filter(|&i| s.is_char_boundary(i)) {
                assert_eq!(Name::concat(&s[..cut], &s[cut..]), n);
            }
            assert_eq!(n.clone(), n);
            assert_eq!(format!("{n}"), s);
        }
        assert_eq!(std::mem::size_of::<Name>(), 40);
    }
}
