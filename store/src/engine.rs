//! What a storage engine provides, and nothing more.
//!
//! Every stage goes through [`Store`](super::Store); the store goes through
//! this trait. It is blocking by intent: the pipeline calls it from its own
//! threads, async handlers from `spawn_blocking`, and an engine that talks to
//! a server (PostgreSQL next) blocks on its connection the same way. Reads
//! come one key, several keys, or a key range at a time; writes come only as
//! one atomic [`Batch`]. No engine type appears in the signature, so the
//! stages never see which engine runs.

use std::ops::Bound;

use super::{Batch, Result, Tree};

/// Entries of a range scan, in key order; `.rev()` walks them backwards.
/// An engine may read them lazily (sled) or page them in (a networked one).
pub type Entries = Box<dyn DoubleEndedIterator<Item = Result<(Vec<u8>, Vec<u8>)>> + Send>;

/// A key range: what `scan` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    pub fn all() -> KeyRange {
        KeyRange { start: Bound::Unbounded, end: Bound::Unbounded }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        let end = match successor(prefix) {
            Some(s) => Bound::Excluded(s),
            None => Bound::Unbounded,
        };
        KeyRange { start: Bound::Included(prefix.to_vec()), end }
    }

    /// Whether no key can be in the range (its start is past its end).
    pub fn is_empty(&self) -> bool {
        let (start, start_inclusive) = match &self.start {
            Bound::Included(s) => (s, true),
            Bound::Excluded(s) => (s, false),
            Bound::Unbounded => return false,
        };
        match &self.end {
            Bound::Included(e) => start > e || (start == e && !start_inclusive),
            Bound::Excluded(e) => start >= e,
            Bound::Unbounded => false,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let before_end = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        after_start && before_end
    }
}

/// The smallest key greater than every key starting with `prefix`, if one
/// exists (a prefix of only `0xff` bytes has none).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// A storage engine. Implementations must pass the conformance suite
/// (`tests/storage.rs`): ordered scans both ways, guards checked inside the
/// atomic write, increasing ids, and `flush` meaning on disk.
pub trait Engine: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Several keys of one tree at once: one round trip for an engine
    /// behind a network.
    fn get_many(&self, tree: Tree, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(tree, k)).collect()
    }

    fn scan(&self, tree: Tree, range: KeyRange) -> Result<Entries>;

    fn len(&self, tree: Tree) -> Result<usize>;

    /// A number unique for the life of the database, greater than every
    /// one it returned before (across restarts too).
    fn generate_id(&self) -> Result<u64>;

    /// Checks every guard and applies every write atomically, or changes
    /// nothing and returns the failed guard's error ([`super::Guard::check`]).
    fn apply(&self, batch: &Batch) -> Result<()>;

    /// Returns once everything applied before the call is durable.
    fn flush(&self) -> Result<()>;

    /// Bytes used on disk (0 for an engine that keeps nothing there).
    fn size_on_disk(&self) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_holds_exactly_the_keys_that_start_with_it() {
        let r = KeyRange::prefix(b"ab\xff");
        assert!(r.contains(b"ab\xff"));
        assert!(r.contains(b"ab\xff\xff\x00"));
        assert!(!r.contains(b"ac"));
        assert!(!r.contains(b"ab\xfe\xff"));
        assert_eq!(r.end, Bound::Excluded(b"ac".to_vec()));
        assert_eq!(KeyRange::prefix(b"\xff\xff").end, Bound::Unbounded);
        assert_eq!(KeyRange::prefix(b"").end, Bound::Unbounded);
    }

    #[test]
    fn an_inverted_or_empty_range_is_empty() {
        let r = |start, end| KeyRange { start, end };
        let (a, b) = (b"a".to_vec(), b"b".to_vec());
        assert!(r(Bound::Included(b.clone()), Bound::Excluded(a.clone())).is_empty());
        assert!(r(Bound::Included(a.clone()), Bound::Excluded(a.clone())).is_empty());
        assert!(r(Bound::Excluded(a.clone()), Bound::Included(a.clone())).is_empty());
        assert!(!r(Bound::Included(a.clone()), Bound::Included(a.clone())).is_empty());
        assert!(!r(Bound::Included(a.clone()), Bound::Excluded(b.clone())).is_empty());
        assert!(!KeyRange::all().is_empty());
    }
}
