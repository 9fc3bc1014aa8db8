//! Per-folder memos: what a resolver derives from one folder's listing alone, computed once per
//! listing. A folder's listing never changes in place — a rescan brings a new [`super::DirNode`]
//! with an empty memo — so nothing here can go stale; a copy (a simulated edit) starts empty.

use std::any::Any;
use std::sync::{Arc, Mutex};

type Slot = (Box<str>, Arc<dyn Any + Send + Sync>);

/// One memo: values by key (the kind of value and the parameters it was derived with), at
/// most [`SLOTS`] of them — one per user, so users do not evict each other on every pass.
#[derive(Default)]
pub struct Memo(Mutex<Vec<Slot>>);

/// Values a memo keeps; the oldest goes first.
const SLOTS: usize = 4;

impl Memo {
    /// The value for `key`, made by `make` unless the memo holds it.
    pub fn get_or<T: Any + Send + Sync>(&self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        let mut slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, v)) = slots.iter().find(|(k, _)| &**k == key) {
            if let Ok(v) = v.clone().downcast::<T>() {
                return v;
            }
        }
        let v = Arc::new(make());
        slots.retain(|(k, _)| &**k != key);
        if slots.len() == SLOTS {
            slots.remove(0);
        }
        // room for exactly what is held: most folders' memo holds one value (a doubling list
        // would hold room for four on each of 16,384 folders)
        slots.reserve_exact(1);
        slots.push((key.into(), v.clone()));
        v
    }

    /// Forget every value (the folder was edited in place).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Clone for Memo {
    /// A copy is edited next (a simulation): it starts empty.
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl PartialEq for Memo {
    /// A memo is derived data: two folders are equal by what they list.
    fn eq(&self, _: &Memo) -> bool {
        true
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_made_once_per_key_and_a_copy_starts_empty() {
        let m = Memo::default();
        let made = std::cell::Cell::new(0);
        let get = |k: &str| {
            m.get_or(k, || {
                made.set(made.get() + 1);
                k.len()
            })
        };
        assert_eq!((*get("ab"), *get("ab")), (2, 2));
        assert_eq!(made.get(), 1);
        assert_eq!(*get("abc"), 3);
        assert_eq!(made.get(), 2);
        // two users alternate without making their values again
        assert_eq!((*get("ab"), *get("abc")), (2, 3));
        assert_eq!(made.get(), 2);
        let copy = m.clone();
        assert_eq!(*copy.get_or("abc", || 9usize), 9);
    }
}
