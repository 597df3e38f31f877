//! The LMDB store holds the same state as the in-memory reference backend,
//! commits atomically, survives reopening, and keeps contexts apart.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_crdt::collections::{self, Mutator};
use mero_crdt::overlay::Overlay;
use mero_crdt::{
    Author, Clock, ContextId, Delta, DeltaId, Hlc, MemoryBackend, NodeId, Op, SignedDelta,
    StateRead, apply_ops, merkle,
};
use mero_store::{ContextMeta, Store, StoreConfig};

/// A store that never flushes on its own (far more bytes than the tests
/// write, longer than they run): what is not flushed by hand is only in the
/// log, so `abandon()` really leaves it to recovery.
fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(
        dir.path(),
        &StoreConfig {
            map_size: 1 << 30,
            flush_bytes: 256 << 20,
            flush_interval: std::time::Duration::from_secs(3600),
        },
    )
    .unwrap()
}

/// Unsigned is fine here: the store trusts its caller to have verified.
fn delta(ctx: ContextId, parents: Vec<DeltaId>, ops: Vec<Op>) -> (DeltaId, SignedDelta) {
    let d = Delta {
        version: 1,
        context: ctx,
        author: Author([1; 32]),
        parents,
        governance: Vec::new(),
        layout: 0,
        hlc: Hlc::default(),
        ops,
        events: vec![],
    };
    (
        d.id(),
        SignedDelta {
            delta: d,
            signature: [0; 64],
            proof: Default::default(),
        },
    )
}

fn some_ops(state: &MemoryBackend, clock: &mut Clock, keys: std::ops::Range<u32>) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut scratch = Overlay::new(state);
    let mut m = Mutator::new(&mut scratch, Author([1; 32]), clock, 1, &mut ops);
    for i in keys {
        m.put_register(&NodeId::root("kv"), &i.to_be_bytes(), vec![i as u8])
            .unwrap();
        m.vector_push(&NodeId::root("log"), vec![i as u8]).unwrap();
        m.counter_add(&NodeId::root("n"), 1).unwrap();
    }
    m.remove_key(&NodeId::root("kv"), &0u32.to_be_bytes())
        .unwrap();
    ops
}

fn meta(ctx: ContextId) -> ContextMeta {
    ContextMeta {
        id: ctx,
        application: [9; 32],
        blob: [8; 32],
        app_version: "1.0.0".into(),
        state_version: 1,
        group: None,
        name: None,
        last_hlc: Hlc::default(),
        delta_count: 0,
        created_at_millis: 0,
    }
}

#[test]
fn lmdb_state_matches_the_reference_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ContextId([1; 32]);
    let mut reference = MemoryBackend::default();
    let mut clock = Clock::default();
    let ops1 = some_ops(&reference, &mut clock, 0..300);
    let expected1 = apply_ops(&mut reference, &ops1).unwrap();
    let ops2 = some_ops(&reference, &mut clock, 300..320);
    let expected2 = apply_ops(&mut reference, &ops2).unwrap();

    let (id1, d1) = delta(ctx, vec![], ops1);
    let (id2, d2) = delta(ctx, vec![id1], ops2);
    {
        let s = store(&dir);
        let mut w = s.write().unwrap();
        w.put_context_meta(&meta(ctx)).unwrap();
        assert_eq!(w.apply_delta(&id1, &d1).unwrap(), expected1);
        assert_eq!(w.apply_delta(&id2, &d2).unwrap(), expected2);
        w.commit().unwrap();
    }
    let s = store(&dir);
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.root_hash(&ctx).unwrap(), expected2);
    assert_eq!(snap.heads(&ctx).unwrap(), vec![id2]);
    assert_eq!(snap.delta(&ctx, &id1).unwrap(), Some(d1));
    let reader = snap.context(ctx);
    let kv = NodeId::root("kv");
    assert_eq!(collections::len(&reader, &kv).unwrap(), 319);
    assert_eq!(
        collections::register_entries(&reader, &kv, None, usize::MAX).unwrap(),
        collections::register_entries(&reference, &kv, None, usize::MAX).unwrap()
    );
    assert_eq!(
        collections::counter_value(&reader, &NodeId::root("n")).unwrap(),
        320
    );
    assert_eq!(
        collections::vector_get(&reader, &NodeId::root("log"), 319).unwrap(),
        Some(vec![63])
    );
    // Paging through LMDB gives what one big read gives.
    let mut paged = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = reader.children(&kv, after.as_deref(), 7).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
        paged.extend(page);
    }
    assert_eq!(paged, reader.children(&kv, None, usize::MAX).unwrap());
    let root = merkle::full_root(
        reference
            .entries
            .iter()
            .map(|((n, k), e)| (n, k.as_slice(), e)),
    )
    .unwrap();
    assert_eq!(root, expected2);
}

#[test]
fn a_batch_of_deltas_reports_each_root_and_stores_the_same_trie() {
    // Deltas of two contexts, interleaved, applied one by one in one store
    // and as one batch in another.
    let (a, b) = (ContextId([1; 32]), ContextId([2; 32]));
    let mut refs = [MemoryBackend::default(), MemoryBackend::default()];
    let mut clock = Clock::default();
    let mut heads = [Vec::new(), Vec::new()];
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for round in 0..6u32 {
        for (i, ctx) in [a, b].into_iter().enumerate() {
            let ops = some_ops(&refs[i], &mut clock, round * 40..round * 40 + 25);
            expected.push(apply_ops(&mut refs[i], &ops).unwrap());
            let (id, d) = delta(ctx, std::mem::take(&mut heads[i]), ops);
            heads[i] = vec![id];
            batch.push((id, d));
        }
    }
    let (one_dir, batch_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (one, batched) = (store(&one_dir), store(&batch_dir));
    for s in [&one, &batched] {
        let mut w = s.write().unwrap();
        w.put_context_meta(&meta(a)).unwrap();
        w.put_context_meta(&meta(b)).unwrap();
        w.commit().unwrap();
    }
    let mut w = one.write().unwrap();
    for (id, d) in &batch {
        w.apply_delta(id, d).unwrap();
    }
    w.commit().unwrap();
    let mut w = batched.write().unwrap();
    let roots = w.apply_deltas(batch.iter().map(|(id, d)| (id, d))).unwrap();
    w.commit().unwrap();
    // Each delta's own root, not the batch's last one.
    assert_eq!(roots, expected);
    for (ctx, s) in [(a, &one), (b, &one), (a, &batched), (b, &batched)] {
        let snap = s.snapshot().unwrap();
        let i = usize::from(ctx == b);
        assert_eq!(
            snap.root_hash(&ctx).unwrap(),
            merkle::full_root(
                refs[i]
                    .entries
                    .iter()
                    .map(|((n, k), e)| (n, k.as_slice(), e))
            )
            .unwrap()
        );
        assert_eq!(snap.heads(&ctx).unwrap(), heads[i]);
    }
    // The stored trie nodes are the same, so later single updates agree.
    let ops = some_ops(&refs[0], &mut clock, 900..905);
    let want = apply_ops(&mut refs[0], &ops).unwrap();
    let (id, d) = delta(a, heads[0].clone(), ops);
    for s in [&one, &batched] {
        let mut w = s.write().unwrap();
        assert_eq!(w.apply_delta(&id, &d).unwrap(), want);
        w.commit().unwrap();
    }
}

#[test]
fn an_aborted_transaction_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let ctx = ContextId([2; 32]);
    let ops = some_ops(&MemoryBackend::default(), &mut Clock::default(), 0..5);
    let (id, d) = delta(ctx, vec![], ops);
    {
        let mut w = s.write().unwrap();
        w.put_context_meta(&meta(ctx)).unwrap();
        w.apply_delta(&id, &d).unwrap();
        w.private_put(&ctx, b"k", Some(b"v")).unwrap();
        // dropped without commit
    }
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.root_hash(&ctx).unwrap(), [0; 32]);
    assert!(snap.context_meta(&ctx).unwrap().is_none());
    assert!(snap.heads(&ctx).unwrap().is_empty());
    assert!(snap.private_get(&ctx, b"k").unwrap().is_none());
}

#[test]
fn contexts_are_isolated_and_deletion_sweeps_only_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let (a, b) = (ContextId([3; 32]), ContextId([4; 32]));
    let ops = some_ops(&MemoryBackend::default(), &mut Clock::default(), 0..10);
    let mut w = s.write().unwrap();
    for ctx in [a, b] {
        w.put_context_meta(&meta(ctx)).unwrap();
        let (id, d) = delta(ctx, vec![], ops.clone());
        w.apply_delta(&id, &d).unwrap();
        w.private_put(&ctx, b"secret", Some(&ctx.0)).unwrap();
    }
    w.commit().unwrap();
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.root_hash(&a).unwrap(), snap.root_hash(&b).unwrap());
    assert_eq!(snap.private_get(&a, b"secret").unwrap(), Some(a.0.to_vec()));
    assert_eq!(snap.private_get(&b, b"secret").unwrap(), Some(b.0.to_vec()));
    let root_b = snap.root_hash(&b).unwrap();
    drop(snap);

    let mut w = s.write().unwrap();
    assert!(w.delete_context(&a).unwrap());
    w.commit().unwrap();
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.root_hash(&a).unwrap(), [0; 32]);
    assert!(snap.private_get(&a, b"secret").unwrap().is_none());
    assert!(snap.heads(&a).unwrap().is_empty());
    assert_eq!(snap.root_hash(&b).unwrap(), root_b);
    assert_eq!(snap.contexts().unwrap().len(), 1);
    assert_eq!(
        collections::len(&snap.context(b), &NodeId::root("kv")).unwrap(),
        9
    );
}

#[test]
fn snapshots_do_not_see_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let ctx = ContextId([5; 32]);
    let before = s.snapshot().unwrap();
    let mut w = s.write().unwrap();
    w.private_put(&ctx, b"k", Some(b"v")).unwrap();
    w.commit().unwrap();
    assert!(before.private_get(&ctx, b"k").unwrap().is_none());
    assert_eq!(
        s.snapshot().unwrap().private_get(&ctx, b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

/// The log leaves Merkle nodes out; a crash after commits that were never
/// flushed must still come back with the trie those commits built, over
/// state flushed earlier.
#[test]
fn the_merkle_trie_is_rebuilt_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, gone) = (ContextId([5; 32]), ContextId([6; 32]));
    let mut reference = MemoryBackend::default();
    let mut clock = Clock::default();
    let ops1 = some_ops(&reference, &mut clock, 0..200);
    apply_ops(&mut reference, &ops1).unwrap();
    let ops2 = some_ops(&reference, &mut clock, 150..400);
    let expected = apply_ops(&mut reference, &ops2).unwrap();
    let (id1, d1) = delta(ctx, vec![], ops1.clone());
    let (id2, d2) = delta(ctx, vec![id1], ops2);

    let s = store(&dir);
    let mut w = s.write().unwrap();
    w.put_context_meta(&meta(ctx)).unwrap();
    w.apply_delta(&id1, &d1).unwrap();
    w.commit().unwrap();
    s.flush().unwrap();
    // Not flushed: only the log has these.
    let mut w = s.write().unwrap();
    assert_eq!(w.apply_delta(&id2, &d2).unwrap(), expected);
    w.commit().unwrap();
    // A context written and deleted since the flush must not come back
    // with a trie of its own.
    let mut w = s.write().unwrap();
    w.put_context_meta(&meta(gone)).unwrap();
    let (idg, dg) = delta(gone, vec![], ops1);
    w.apply_delta(&idg, &dg).unwrap();
    w.commit().unwrap();
    let mut w = s.write().unwrap();
    w.delete_context(&gone).unwrap();
    w.commit().unwrap();
    s.abandon();

    let s = store(&dir);
    // The unflushed commits came back from the log.
    assert!(s.replayed() >= 3, "replayed {}", s.replayed());
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.root_hash(&ctx).unwrap(), expected);
    assert_eq!(snap.root_hash(&gone).unwrap(), [0; 32]);
    // And the rebuilt trie went to LMDB: a second crash keeps it.
    drop(snap);
    s.abandon();
    let s = store(&dir);
    assert_eq!(s.snapshot().unwrap().root_hash(&ctx).unwrap(), expected);
    // A clean close leaves nothing to replay.
    drop(s);
    assert_eq!(store(&dir).replayed(), 0);
}

#[test]
fn pending_handlers_of_skipped_contexts_do_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let (busy, quiet) = (ContextId([1; 32]), ContextId([2; 32]));
    let mut w = s.write().unwrap();
    for i in 0..10 {
        w.put_handler(&busy, &[9; 32], i, "on_spin", b"{}").unwrap();
    }
    w.put_handler(&quiet, &[8; 32], 0, "on_done", b"{}")
        .unwrap();
    w.commit().unwrap();
    let snap = s.snapshot().unwrap();
    // In key order the busy context fills the page.
    assert!(
        snap.pending_handlers(4)
            .unwrap()
            .iter()
            .all(|h| h.context == busy)
    );
    let others = snap.pending_handlers_except(4, &|c| *c == busy).unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(
        (others[0].context, others[0].method.as_str()),
        (quiet, "on_done")
    );
}
