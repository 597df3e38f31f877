//! A migration's writes, stored whole from its overlay (`put_writes`), give
//! the state and root that applying its ops gives, read the same before and
//! after LMDB has them, stay right under later writes, survive a crash
//! (their log record, written ahead in parts, is replayed), and leave
//! nothing behind when the transaction is dropped.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_crdt::collections::{self, Mutator};
use mero_crdt::overlay::Overlay;
use mero_crdt::{Author, Clock, ContextId, Hlc, MemoryBackend, NodeId, Op, apply_ops};
use mero_store::{Store, StoreConfig};

fn open(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        &StoreConfig {
            map_size: 1 << 30,
            // Flushes only when asked, so the layers are what the test says.
            flush_bytes: 1 << 30,
            flush_interval: std::time::Duration::from_secs(3600),
        },
    )
    .unwrap()
}

const OLD: &str = "old";
const NEW: &str = "new";

/// `n` keys in `OLD`, each with a register under it.
fn fill(state: &MemoryBackend, clock: &mut Clock, n: u32) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut scratch = Overlay::new(state);
    let mut m = Mutator::new(&mut scratch, Author([1; 32]), clock, 1_000, &mut ops);
    for i in 0..n {
        m.put_register(
            &NodeId::root(OLD),
            format!("key-{i:06}").as_bytes(),
            vec![b'x'; 20],
        )
        .unwrap();
    }
    ops
}

/// What the reshuffle migration does: every key of `from` into `to`, then
/// `from` cleared. Returns the overlay's writes and the ops.
fn migrate<S: mero_crdt::StateRead>(
    base: S,
    clock: &mut Clock,
    from: &str,
    to: &str,
) -> (mero_crdt::overlay::Writes, Vec<Op>) {
    let mut ops = Vec::new();
    let mut overlay = Overlay::new(base);
    overlay.checkpoint();
    {
        let mut m = Mutator::new(&mut overlay, Author([7; 32]), clock, 5_000, &mut ops);
        let old = NodeId::root(from);
        let entries = collections::register_entries(m.state(), &old, None, usize::MAX).unwrap();
        for (k, v) in entries {
            m.put_register(&NodeId::root(to), &k, v).unwrap();
        }
        m.clear(&old).unwrap();
    }
    overlay.release();
    (overlay.take_writes(), ops)
}

fn assert_reads(s: &Store, ctx: ContextId, reference: &MemoryBackend, root: [u8; 32]) {
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.root_hash(&ctx).unwrap(), root);
    let reader = snap.context(ctx);
    for name in [OLD, NEW] {
        let node = NodeId::root(name);
        assert_eq!(
            collections::len(&reader, &node).unwrap(),
            collections::len(reference, &node).unwrap(),
            "{name}"
        );
        assert_eq!(
            collections::register_entries(&reader, &node, None, usize::MAX).unwrap(),
            collections::register_entries(reference, &node, None, usize::MAX).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn stored_writes_match_the_ops_and_survive_later_writes_a_flush_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ContextId([3; 32]);
    let mut reference = MemoryBackend::default();
    let mut clock = Clock::default();
    // Enough that each migration's log record (~750 bytes an item, leaves
    // left out) is written ahead in parts (past 4 MiB).
    let base = fill(&reference, &mut clock, 7_000);
    apply_ops(&mut reference, &base).unwrap();
    {
        let s = open(dir.path());
        let mut w = s.write().unwrap();
        apply_ops(&mut w.context_state(ctx), &base).unwrap();
        w.commit().unwrap();
        s.flush().unwrap();

        let snap = s.snapshot().unwrap();
        let mut mig_clock = Clock::starting_after(Hlc {
            millis: 5_000,
            counter: 0,
        });
        let (writes, ops) = migrate(snap.context(ctx), &mut mig_clock, OLD, NEW);
        let expected = apply_ops(&mut reference, &ops).unwrap();
        let mut w = s.write().unwrap();
        assert_eq!(w.put_writes(ctx, writes).unwrap(), expected);
        w.commit().unwrap();
        assert_reads(&s, ctx, &reference, expected);

        // Later writes land over the migrated state, before and after LMDB
        // holds it.
        let mut later = Vec::new();
        {
            let snap = s.snapshot().unwrap();
            let mut scratch = Overlay::new(snap.context(ctx));
            let mut m = Mutator::new(
                &mut scratch,
                Author([9; 32]),
                &mut mig_clock,
                9_000,
                &mut later,
            );
            m.put_register(&NodeId::root(NEW), b"key-000001", b"changed".to_vec())
                .unwrap();
            m.remove_key(&NodeId::root(NEW), b"key-000002").unwrap();
            m.put_register(&NodeId::root(OLD), b"key-000003", b"back".to_vec())
                .unwrap();
        }
        let expected = apply_ops(&mut reference, &later).unwrap();
        let mut w = s.write().unwrap();
        assert_eq!(
            apply_ops(&mut w.context_state(ctx), &later).unwrap(),
            expected
        );
        w.commit().unwrap();
        assert_reads(&s, ctx, &reference, expected);
        s.flush().unwrap();
        assert_reads(&s, ctx, &reference, expected);

        // A migration written ahead to the log but dropped: nothing of it
        // stays, and the log goes on.
        let snap = s.snapshot().unwrap();
        let (writes, _) = migrate(snap.context(ctx), &mut mig_clock, NEW, OLD);
        let mut w = s.write().unwrap();
        w.put_writes(ctx, writes).unwrap();
        drop(w);
        assert_reads(&s, ctx, &reference, expected);

        // The same migration, committed, then a crash before LMDB has it:
        // the log brings it back.
        let snap = s.snapshot().unwrap();
        let (writes, ops) = migrate(snap.context(ctx), &mut mig_clock, NEW, OLD);
        let expected = apply_ops(&mut reference, &ops).unwrap();
        let mut w = s.write().unwrap();
        assert_eq!(w.put_writes(ctx, writes).unwrap(), expected);
        w.commit().unwrap();
        s.abandon();
    }
    let s = open(dir.path());
    let root = s.snapshot().unwrap().root_hash(&ctx).unwrap();
    assert_reads(&s, ctx, &reference, root);
    let full = mero_crdt::merkle::full_root(
        reference
            .entries
            .iter()
            .map(|((n, k), e)| (n, k.as_slice(), e)),
    )
    .unwrap();
    assert_eq!(root, full);
}
