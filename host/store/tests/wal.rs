//! Commits are durable through the write-ahead log alone: reads merge the
//! in-memory layers with LMDB exactly as one map would, a crash before any
//! flush loses nothing acknowledged, a torn tail is dropped, and an old
//! segment that outlived its flush cannot roll values back.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mero_store::{Store, StoreConfig};
use proptest::prelude::*;

/// A store that never flushes on its own: only `flush()` and a clean close
/// write to LMDB.
fn open(dir: &Path) -> Store {
    // Far more than the tests write, and longer than they run.
    open_flushing(dir, 256 << 10, Duration::from_secs(3600))
}

/// A store that flushes on its own past `flush_bytes` or after `interval`.
fn open_flushing(dir: &Path, flush_bytes: usize, interval: Duration) -> Store {
    Store::open(
        dir,
        &StoreConfig {
            map_size: 1 << 30,
            flush_bytes,
            flush_interval: interval,
        },
    )
    .unwrap()
}

type Model = BTreeMap<String, [u8; 32]>;

fn aliases(s: &Store) -> Model {
    s.snapshot()
        .unwrap()
        .aliases("k")
        .unwrap()
        .into_iter()
        .collect()
}

fn wal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    out.sort();
    out
}

/// Writes `n` keys from `k` on with value `v`, committing only if there is
/// one.
fn write(store: &Store, model: &mut Model, k: u8, n: usize, v: Option<u8>) {
    let mut w = store.write().unwrap();
    for i in 0..n as u8 {
        let name = format!("{:02}", k.wrapping_add(i) % 24);
        w.put_alias("k", &name, &[v.unwrap_or(0); 32]).unwrap();
        if let Some(v) = v {
            model.insert(name, [v; 32]);
        }
    }
    // Another kind shares the table; it must never leak in.
    w.put_alias("l", "x", &[1; 32]).unwrap();
    if v.is_some() {
        w.commit().unwrap();
    }
}

#[derive(Debug, Clone)]
enum Step {
    Put(u8, u8),
    Delete(u8),
    /// Writes a few keys and drops the transaction uncommitted.
    Abort(u8),
    Flush,
    /// Closes as a crash would and reopens.
    Crash,
    /// Closes cleanly and reopens.
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..24, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        3 => (0u8..24).prop_map(Step::Delete),
        1 => (0u8..24).prop_map(Step::Abort),
        2 => Just(Step::Flush),
        1 => Just(Step::Crash),
        1 => Just(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever mix of commits, flushes, crashes and reopenings, every read
    /// (point and range, through snapshots taken at any time) agrees with a
    /// plain map of what was committed.
    #[test]
    fn reads_agree_with_a_map_across_flushes_and_crashes(
        steps in proptest::collection::vec((step(), 1usize..4), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let mut model = Model::new();
        // A snapshot from earlier must keep seeing its own point in time.
        let mut old: Option<(mero_store::Snapshot, Model)> = None;
        for (step, n) in steps {
            match step {
                Step::Put(k, v) => write(&store, &mut model, k, n, Some(v)),
                Step::Abort(k) => write(&store, &mut model, k, n, None),
                Step::Delete(k) => {
                    let mut w = store.write().unwrap();
                    let name = format!("{k:02}");
                    let existed = w.delete_alias("k", &name).unwrap();
                    prop_assert_eq!(existed, model.remove(&name).is_some());
                    w.commit().unwrap();
                }
                Step::Flush => store.flush().unwrap(),
                Step::Crash => {
                    old = None;
                    store.abandon();
                    store = open(dir.path());
                }
                Step::Reopen => {
                    old = None;
                    drop(store);
                    store = open(dir.path());
                }
            }
            prop_assert_eq!(&aliases(&store), &model);
            let snap = store.snapshot().unwrap();
            for k in 0..24 {
                let name = format!("{k:02}");
                prop_assert_eq!(snap.alias("k", &name).unwrap(), model.get(&name).copied());
            }
            if let Some((s, m)) = &old {
                let seen: Model = s.aliases("k").unwrap().into_iter().collect();
                prop_assert_eq!(&seen, m);
            }
            if n == 2 {
                old = Some((snap, model.clone()));
            }
        }
    }
}

#[test]
fn a_crash_before_any_flush_loses_no_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    for i in 0..100u8 {
        let mut w = s.write().unwrap();
        w.put_alias("k", &format!("{i:03}"), &[i; 32]).unwrap();
        w.commit().unwrap();
    }
    // Nothing reached LMDB yet: the log holds it all.
    let before = wal_files(dir.path());
    assert_eq!(before.len(), 1);
    s.abandon();
    let s = open(dir.path());
    let got = aliases(&s);
    assert_eq!(got.len(), 100);
    assert_eq!(got["042"], [42; 32]);
    // Replayed into LMDB at open: the old segment is gone, a new one begun.
    let files = wal_files(dir.path());
    assert_eq!(files.len(), 1);
    assert_ne!(files, before);
}

#[test]
fn a_torn_tail_is_dropped_and_writing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    for (name, v) in [("a", 1u8), ("b", 2)] {
        let mut w = s.write().unwrap();
        w.put_alias("k", name, &[v; 32]).unwrap();
        w.commit().unwrap();
    }
    s.abandon();
    // The start of a third record that never finished, right after the two
    // (whose last bytes, the value, are not zero; zeros follow them).
    let segment = wal_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    bytes[end..end + 10].copy_from_slice(&[200, 0, 0, 0, 9, 9, 9, 9, 3, 1]);
    std::fs::write(&segment, bytes).unwrap();

    let s = open(dir.path());
    let got = aliases(&s);
    assert_eq!(got.len(), 2);
    assert_eq!(got["b"], [2; 32]);
    let mut w = s.write().unwrap();
    w.put_alias("k", "c", &[3; 32]).unwrap();
    w.commit().unwrap();
    s.abandon();
    assert_eq!(aliases(&open(dir.path())).len(), 3);
}

#[test]
fn a_segment_that_outlived_its_flush_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut w = s.write().unwrap();
    w.put_alias("k", "x", &[1; 32]).unwrap();
    w.commit().unwrap();
    // Keep a copy of the segment holding x = 1, as if its deletion after
    // the flush had been lost in a crash.
    let old = wal_files(dir.path()).pop().unwrap();
    let kept = std::fs::read(&old).unwrap();
    s.flush().unwrap();
    assert!(!old.exists());
    let mut w = s.write().unwrap();
    w.put_alias("k", "x", &[2; 32]).unwrap();
    w.commit().unwrap();
    s.flush().unwrap();
    s.abandon();
    std::fs::write(&old, kept).unwrap();

    let s = open(dir.path());
    assert_eq!(
        s.snapshot().unwrap().alias("k", "x").unwrap(),
        Some([2; 32])
    );
}

#[test]
fn the_background_flush_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_flushing(dir.path(), 1 << 20, Duration::from_millis(20));
    // The segment the commit goes to, named before it: the 20 ms flusher
    // may retire it as soon as the commit is in.
    let segment = wal_files(dir.path()).pop().unwrap();
    let mut w = s.write().unwrap();
    w.put_alias("k", "x", &[7; 32]).unwrap();
    w.commit().unwrap();
    // A functional bound, not a speed target: generous on a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // The segment holding the commit goes once LMDB has it.
    while segment.exists() {
        assert!(std::time::Instant::now() < deadline, "never flushed");
        std::thread::sleep(Duration::from_millis(5));
    }
    s.abandon();
    let s = open(dir.path());
    assert_eq!(
        s.snapshot().unwrap().alias("k", "x").unwrap(),
        Some([7; 32])
    );
}

#[test]
fn a_log_grown_by_rewrites_is_flushed_too() {
    // Memory counts a rewritten key once, but the log holds every rewrite:
    // it must not grow without bound while memory looks small.
    let dir = tempfile::tempdir().unwrap();
    let s = open_flushing(dir.path(), 64 << 10, Duration::from_secs(3600));
    let first = wal_files(dir.path()).pop().unwrap();
    let generation = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    let mut n = 0u32;
    // Bounded by commits, not by time: a slow disk only makes it slower.
    while wal_files(dir.path())
        .iter()
        .all(|p| generation(p) <= generation(&first))
    {
        assert!(n < 20_000, "never flushed after {n} commits");
        let mut w = s.write().unwrap();
        w.put_alias("k", "x", &[n as u8; 32]).unwrap();
        w.commit().unwrap();
        n += 1;
    }
    // Counted in full, each rewrite would weigh ~100 bytes in memory and
    // flush after ~660 commits; the log's ~53 bytes each take ~1,240.
    assert!(
        n > 900,
        "flushed after {n} commits: memory counted every rewrite in full"
    );
    s.abandon();
    let s = open(dir.path());
    assert_eq!(
        s.snapshot().unwrap().alias("k", "x").unwrap(),
        Some([(n - 1) as u8; 32])
    );
}

#[test]
fn commits_are_refused_with_the_flush_error_while_flushing_fails_and_none_is_lost() {
    // A 1 MiB map: flushes to LMDB fail once it is full (a full disk would
    // do the same), while the log keeps taking commits.
    let dir = tempfile::tempdir().unwrap();
    let flush_bytes = 64 << 10;
    let s = Store::open(
        dir.path(),
        &StoreConfig {
            map_size: 1 << 20,
            flush_bytes,
            flush_interval: Duration::from_secs(3600),
        },
    )
    .unwrap();
    assert_eq!(s.refusing_commits(), None);
    assert!(!s.log_broken());
    let value = vec![7u8; 16 << 10];
    let mut acked = 0u32;
    let refused = loop {
        // Bounded by commits, not time: past eight flushes' worth waiting
        // (512 KiB here) beyond a 1 MiB map, refusal must have come.
        assert!(acked < 2_000, "{acked} commits of 16 KiB and none refused");
        let mut w = s.write().unwrap();
        w.put_local("blob", &acked.to_be_bytes(), &value).unwrap();
        match w.commit() {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
    };
    // Refused with the flush's own error once the flusher has recorded it
    // (until then, "flushes are not finishing"); every try is refused.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut refused = refused;
    loop {
        assert!(
            matches!(refused, mero_store::StoreError::Backlog(_)),
            "{refused}"
        );
        if refused.to_string().contains("MDB_MAP_FULL") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{refused}");
        std::thread::sleep(Duration::from_millis(5));
        let mut w = s.write().unwrap();
        w.put_local("blob", b"refused", &value).unwrap();
        refused = w.commit().unwrap_err();
    }
    assert!(
        acked as usize * value.len() > 1 << 20,
        "refused after {acked}"
    );
    // What health reports: the refusal and its reason; the log is sound.
    let why = s.refusing_commits().unwrap();
    assert!(why.contains("MDB_MAP_FULL"), "{why}");
    assert!(!s.log_broken());
    // Refused, not lost: every acknowledged commit is read back, and comes
    // back from the log once there is room.
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.locals("blob").unwrap().len(), acked as usize);
    drop(snap);
    s.abandon();
    let s = open(dir.path());
    assert!(s.replayed() > 0);
    let all = s.snapshot().unwrap().locals("blob").unwrap();
    assert_eq!(all.len(), acked as usize);
    assert!(all.iter().all(|(_, v)| *v == value));
}
