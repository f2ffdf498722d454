//! The storage conformance suite: every engine behind `Store` behaves the
//! same. Each check is written once and run against each engine (sled on
//! disk, memory); a new engine is one more line in `engines!`.
//!
//! The expectations come from the contract in `store/src/engine.rs`
//! (keys ordered bytewise as unsigned bytes, like sled, SQL `bytea` and
//! `BTreeMap<Vec<u8>, _>`), not from either implementation.

use std::collections::BTreeSet;
use std::sync::Arc;

use switchboard::store::{Batch, Store, StoreError, Tree};

const A: Tree = Tree("conformance.a");
const B: Tree = Tree("conformance.b");

/// An engine under test: the store, and how to reopen it (None: it keeps
/// nothing once closed).
struct Subject {
    store: Store,
    reopen: Option<Box<dyn Fn() -> Store>>,
    _dir: Option<tempfile::TempDir>,
}

fn sled() -> Subject {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().to_path_buf();
    let store = Store::open(&path).expect("sled opens");
    Subject { store, reopen: Some(Box::new(move || Store::open(&path).expect("sled reopens"))), _dir: Some(dir) }
}

fn memory() -> Subject {
    Subject { store: Store::in_memory(), reopen: None, _dir: None }
}

fn put(store: &Store, tree: Tree, key: &[u8], value: &[u8]) {
    let mut b = Batch::new();
    b.put(tree, key, value);
    store.commit(b).expect("a plain write commits");
}

fn keys(scan: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>) -> Vec<Vec<u8>> {
    scan.map(|e| e.expect("an entry").0).collect()
}

/// Keys that sort differently as signed bytes, as text, or by length.
fn awkward_keys() -> Vec<Vec<u8>> {
    vec![
        b"b".to_vec(),
        b"a\xff".to_vec(),
        b"a".to_vec(),
        b"a\x00".to_vec(),
        b"\x80".to_vec(),
        b"\x7f".to_vec(),
        b"ab".to_vec(),
        b"a\xff\xff".to_vec(),
        vec![],
    ]
}

fn point_reads(s: Subject) {
    let store = &s.store;
    assert_eq!(store.get(A, b"k").unwrap(), None);
    assert!(!store.contains(A, b"k").unwrap());
    assert_eq!(store.len(A).unwrap(), 0);
    assert_eq!(store.first(A).unwrap(), None);
    put(store, A, b"k", b"v1");
    put(store, A, b"k", b"v2");
    assert_eq!(store.get(A, b"k").unwrap(), Some(b"v2".to_vec()));
    assert!(store.contains(A, b"k").unwrap());
    // Trees are separate key spaces.
    assert_eq!(store.get(B, b"k").unwrap(), None);
    assert_eq!(store.len(A).unwrap(), 1);
    let mut b = Batch::new();
    b.delete(A, b"k".to_vec());
    b.delete(A, b"never-there".to_vec());
    store.commit(b).unwrap();
    assert_eq!(store.get(A, b"k").unwrap(), None);
    assert_eq!(store.len(A).unwrap(), 0);
}

fn scans_are_ordered_both_ways(s: Subject) {
    let store = &s.store;
    for k in awkward_keys() {
        put(store, A, &k, b"x");
    }
    let mut sorted = awkward_keys();
    sorted.sort(); // Vec<u8> sorts as unsigned bytes, shorter first
    assert_eq!(keys(store.scan_prefix(A, b"").unwrap()), sorted);
    let mut reversed = sorted.clone();
    reversed.reverse();
    assert_eq!(keys(store.scan_prefix(A, b"").unwrap().rev()), reversed);
    assert_eq!(store.first(A).unwrap().map(|e| e.0), Some(vec![]));

    // Prefixes, including one ending in 0xff.
    assert_eq!(
        keys(store.scan_prefix(A, b"a").unwrap()),
        vec![b"a".to_vec(), b"a\x00".to_vec(), b"ab".to_vec(), b"a\xff".to_vec(), b"a\xff\xff".to_vec()]
    );
    assert_eq!(keys(store.scan_prefix(A, b"a\xff").unwrap().rev()), vec![b"a\xff\xff".to_vec(), b"a\xff".to_vec()]);
    assert!(keys(store.scan_prefix(A, b"c").unwrap()).is_empty());

    // Half-open ranges and strict "after".
    assert_eq!(keys(store.range(A, b"a", b"ab").unwrap()), vec![b"a".to_vec(), b"a\x00".to_vec()]);
    assert_eq!(keys(store.range(A, b"a", b"ab").unwrap().rev()), vec![b"a\x00".to_vec(), b"a".to_vec()]);
    // Unsigned: 0x7f and 0x80 sort after every letter.
    assert_eq!(keys(store.after(A, b"a\xff\xff").unwrap()), vec![b"b".to_vec(), b"\x7f".to_vec(), b"\x80".to_vec()]);
    assert_eq!(keys(store.after(A, b"\x80").unwrap()), Vec::<Vec<u8>>::new());
    // A range whose start is past its end holds nothing (and is no panic).
    assert!(keys(store.range(A, b"b", b"a").unwrap()).is_empty());
    assert!(keys(store.range(A, b"a", b"a").unwrap().rev()).is_empty());
    // Both ends at once.
    let mut both = store.scan_prefix(A, b"a").unwrap();
    assert_eq!(both.next().unwrap().unwrap().0, b"a".to_vec());
    assert_eq!(both.next_back().unwrap().unwrap().0, b"a\xff\xff".to_vec());
    assert_eq!(keys(both), vec![b"a\x00".to_vec(), b"ab".to_vec(), b"a\xff".to_vec()]);
}

fn guards_decide_the_whole_batch(s: Subject) {
    let store = &s.store;
    put(store, A, b"taken", b"1");

    let mut b = Batch::new();
    b.put(B, b"side-effect", b"must not land");
    b.require_absent(A, b"taken".to_vec());
    // A unique entry that is held is "taken", not "retry": the caller's
    // request cannot succeed by reading again.
    let refused = store.commit(b);
    assert!(matches!(refused, Err(StoreError::Taken { tree: "conformance.a" })), "{refused:?}");
    assert_eq!(store.get(B, b"side-effect").unwrap(), None, "a refused batch applied a write");

    // An optimistic guard that expected the key absent is a lost race.
    let mut b = Batch::new();
    b.require_value(A, b"taken".to_vec(), None);
    b.put(B, b"side-effect", b"must not land");
    assert!(matches!(store.commit(b), Err(StoreError::Conflict)));
    assert_eq!(store.get(B, b"side-effect").unwrap(), None, "a refused batch applied a write");

    let mut b = Batch::new();
    b.require_value(A, b"taken".to_vec(), Some(b"2".to_vec()));
    b.delete(A, b"taken".to_vec());
    assert!(matches!(store.commit(b), Err(StoreError::Conflict)));
    assert_eq!(store.get(A, b"taken").unwrap(), Some(b"1".to_vec()));

    let mut b = Batch::new();
    b.require_value(A, b"taken".to_vec(), Some(b"1".to_vec()));
    b.require_absent(A, b"free".to_vec());
    b.put(A, b"taken", b"2");
    b.put(B, b"other", b"y");
    store.commit(b).expect("guards that hold let the batch through");
    assert_eq!(store.get(A, b"taken").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get(B, b"other").unwrap(), Some(b"y".to_vec()));

    // Writes apply in order: a put then a delete of the same key deletes.
    let mut b = Batch::new();
    b.put(A, b"k", b"v");
    b.delete(A, b"k".to_vec());
    store.commit(b).unwrap();
    assert_eq!(store.get(A, b"k").unwrap(), None);
}

/// Optimistic writers racing on one counter: every increment that
/// committed is counted exactly once, and the two trees every batch writes
/// never disagree.
fn concurrent_writers_are_atomic(s: Subject) {
    let store = s.store.clone();
    const THREADS: u64 = 4;
    const EACH: u64 = 50;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut conflicts = 0u64;
                for i in 0..EACH {
                    loop {
                        let current = store.get(A, b"counter").unwrap();
                        let n = current.as_deref().map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
                        let mut b = Batch::new();
                        b.require_value(A, b"counter".to_vec(), current);
                        b.put(A, b"counter", (n + 1).to_be_bytes());
                        b.put(B, (n + 1).to_be_bytes(), format!("{t}:{i}"));
                        match store.commit(b) {
                            Ok(()) => break,
                            Err(StoreError::Conflict) => conflicts += 1,
                            Err(e) => panic!("unexpected: {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a writer thread");
    }
    let n = u64::from_be_bytes(store.get(A, b"counter").unwrap().unwrap().try_into().unwrap());
    assert_eq!(n, THREADS * EACH);
    // One log entry per increment, none lost, none written twice.
    let log: Vec<_> = store.scan_prefix(B, b"").unwrap().values_raw();
    assert_eq!(log.len() as u64, THREADS * EACH);
    let distinct: BTreeSet<_> = log.iter().collect();
    assert_eq!(distinct.len(), log.len());
}

/// Records kept under a version counter: racing read-modify-write loops
/// lose no increment; a record written before it had a version (an
/// upgrade) is written at version 0 once, then guarded like any other;
/// a deleted record can be created again.
fn versioned_records(s: Subject) {
    #[derive(serde::Serialize, serde::Deserialize, Default)]
    struct Counter {
        n: u64,
        #[serde(default)]
        version: u64,
    }
    let store = s.store.clone();
    const THREADS: u64 = 4;
    const EACH: u64 = 50;
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    loop {
                        let read: Option<Counter> = store.get_json(A, b"counter").unwrap();
                        let mut next = read.unwrap_or_default();
                        let mut b = Batch::new();
                        next.version = b.versioned(A, b"counter", next.version);
                        next.n += 1;
                        b.put_json(A, b"counter".to_vec(), &next).unwrap();
                        match store.commit(b) {
                            Ok(()) => break,
                            Err(StoreError::Conflict) => continue,
                            Err(e) => panic!("unexpected: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a writer thread");
    }
    let c: Counter = store.get_json(A, b"counter").unwrap().unwrap();
    assert_eq!((c.n, c.version), (THREADS * EACH, THREADS * EACH), "every write counted once");

    // Written before versions existed: no version in the record, none kept.
    put(&store, A, b"legacy", br#"{"n": 7}"#);
    let old: Counter = store.get_json(A, b"legacy").unwrap().unwrap();
    assert_eq!(old.version, 0);
    let write = |read: u64| {
        let mut b = Batch::new();
        let version = b.versioned(A, b"legacy", read);
        b.put_json(A, b"legacy".to_vec(), &Counter { n: 8, version }).unwrap();
        store.commit(b)
    };
    write(0).expect("the first versioned write of an old record commits");
    assert!(matches!(write(0), Err(StoreError::Conflict)), "a second writer that read version 0 must retry");
    write(1).expect("a writer that read version 1 commits");

    let mut b = Batch::new();
    b.delete_versioned(A, b"legacy");
    store.commit(b).unwrap();
    assert_eq!(store.get(A, b"legacy").unwrap(), None);
    write(0).expect("created again from nothing");
}

trait RawValues {
    fn values_raw(self) -> Vec<Vec<u8>>;
}

impl<I: Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>> RawValues for I {
    fn values_raw(self) -> Vec<Vec<u8>> {
        self.map(|e| e.expect("an entry").1).collect()
    }
}

fn ids_increase(s: Subject) {
    let store = Arc::new(s.store.clone());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || (0..500).map(|_| store.generate_id().unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let mut all = BTreeSet::new();
    for t in threads {
        let ids = t.join().expect("an id thread");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "one thread's ids did not increase");
        all.extend(ids);
    }
    assert_eq!(all.len(), 2000, "an id was handed out twice");
    let highest = *all.last().unwrap();
    if let Some(reopen) = &s.reopen {
        drop(store);
        drop(s.store);
        let again = reopen();
        assert!(again.generate_id().unwrap() > highest, "an id was reused after reopening");
    }
}

/// What `sync` acknowledged survives closing the database; the engine lets
/// go of its directory when the last handle is dropped.
fn sync_is_durable(s: Subject) {
    let Some(reopen) = s.reopen else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for i in 0..100u32 {
        put(&s.store, A, &i.to_be_bytes(), b"kept");
    }
    rt.block_on(s.store.sync()).expect("sync");
    s.store.sync_blocking().expect("blocking sync");
    drop(s.store);
    let again = reopen();
    assert_eq!(again.len(A).unwrap(), 100);
    assert_eq!(again.get(A, &99u32.to_be_bytes()).unwrap(), Some(b"kept".to_vec()));
}

fn json_records_round_trip(s: Subject) {
    let store = &s.store;
    let mut b = Batch::new();
    b.put_json(A, b"r".to_vec(), &serde_json::json!({"name": "Zoë", "n": 3})).unwrap();
    store.commit(b).unwrap();
    let v: serde_json::Value = store.get_json(A, b"r").unwrap().unwrap();
    assert_eq!(v["name"], "Zoë");
    put(store, A, b"bad", b"not json");
    let err = store.get_json::<serde_json::Value>(A, b"bad").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { tree: "conformance.a", .. }), "{err}");
}

macro_rules! engines {
    ($($engine:ident),*) => {
        $(mod $engine {
            #[test] fn point_reads() { super::point_reads(super::$engine()) }
            #[test] fn scans_are_ordered_both_ways() { super::scans_are_ordered_both_ways(super::$engine()) }
            #[test] fn guards_decide_the_whole_batch() { super::guards_decide_the_whole_batch(super::$engine()) }
            #[test] fn concurrent_writers_are_atomic() { super::concurrent_writers_are_atomic(super::$engine()) }
            #[test] fn ids_increase() { super::ids_increase(super::$engine()) }
            #[test] fn sync_is_durable() { super::sync_is_durable(super::$engine()) }
            #[test] fn json_records_round_trip() { super::json_records_round_trip(super::$engine()) }
            #[test] fn versioned_records() { super::versioned_records(super::$engine()) }
        })*
    };
}

engines!(sled, memory);

/// A second open of a live sled directory is refused with the error that
/// names the cause, not a generic I/O one.
#[test]
fn sled_refuses_a_directory_in_use() {
    let s = sled();
    let dir = s._dir.as_ref().expect("sled has a directory").path();
    assert!(matches!(Store::open(dir), Err(StoreError::Locked)));
    drop(s.store);
    Store::open(dir).expect("the directory is free once the last handle is dropped");
}
