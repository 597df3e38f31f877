//! The merge rules the README states, one table each: not only that replicas
//! converge (`convergence.rs`), but to what. Each case writes on replicas
//! that have not seen each other's writes, then delivers everything to
//! every replica in both orders and checks the value all of them read.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_crdt::collections::{self, Mutator};
use mero_crdt::overlay::Overlay;
use mero_crdt::{Author, Clock, MemoryBackend, NodeId, Op, apply_ops};

struct Replica {
    author: Author,
    clock: Clock,
    state: MemoryBackend,
}

fn replica(author: u8) -> Replica {
    Replica {
        author: Author([author; 32]),
        clock: Clock::default(),
        state: MemoryBackend::default(),
    }
}

/// Runs `write` on `r` at wall time `wall`, applies its ops there and
/// returns them (the delta others receive).
fn write(
    r: &mut Replica,
    wall: u64,
    write: impl FnOnce(&mut Mutator<'_, Overlay<&MemoryBackend>>),
) -> Vec<Op> {
    let mut ops = Vec::new();
    {
        let mut scratch = Overlay::new(&r.state);
        let mut m = Mutator::new(&mut scratch, r.author, &mut r.clock, wall, &mut ops);
        write(&mut m);
    }
    apply_ops(&mut r.state, &ops).unwrap();
    ops
}

/// Every replica receives every delta (again: receiving twice changes
/// nothing) in the order given, a fresh replica in the reverse order; all
/// must end equal. Returns the fresh one.
fn deliver(replicas: &mut [Replica], deltas: &[(usize, Vec<Op>)]) -> MemoryBackend {
    for (i, r) in replicas.iter_mut().enumerate() {
        for (from, ops) in deltas {
            if *from != i {
                apply_ops(&mut r.state, ops).unwrap();
            }
        }
    }
    let mut reversed = MemoryBackend::default();
    for (_, ops) in deltas.iter().rev() {
        apply_ops(&mut reversed, ops).unwrap();
    }
    for r in replicas.iter() {
        assert_eq!(r.state.entries, reversed.entries, "replicas disagree");
    }
    reversed
}

#[test]
fn a_register_keeps_the_latest_write_and_breaks_clock_ties_by_author() {
    let reg = NodeId::root("reg");
    // (wall of replica 1, wall of replica 2, the value that wins)
    for (wall1, wall2, winner) in [
        (2_000, 1_000, b"one".as_slice()),
        (1_000, 2_000, b"two".as_slice()),
        // Same clock: the greater author (replica 2) wins, in any order.
        (1_000, 1_000, b"two".as_slice()),
    ] {
        let mut rs = [replica(1), replica(2)];
        let a = write(&mut rs[0], wall1, |m| {
            m.register_set(&reg, Some(b"one".to_vec())).unwrap()
        });
        let b = write(&mut rs[1], wall2, |m| {
            m.register_set(&reg, Some(b"two".to_vec())).unwrap()
        });
        let merged = deliver(&mut rs, &[(0, a), (1, b)]);
        assert_eq!(
            collections::register_get(&merged, &reg).unwrap().as_deref(),
            Some(winner),
            "walls {wall1} / {wall2}"
        );
    }
}

#[test]
fn concurrent_vector_pushes_are_all_kept_in_clock_order() {
    let vec = NodeId::root("vec");
    let mut rs = [replica(1), replica(2), replica(3)];
    let a = write(&mut rs[0], 3_000, |m| {
        m.vector_push(&vec, b"c".to_vec()).unwrap()
    });
    let b = write(&mut rs[1], 1_000, |m| {
        m.vector_push(&vec, b"a".to_vec()).unwrap()
    });
    let c = write(&mut rs[2], 2_000, |m| {
        m.vector_push(&vec, b"b1".to_vec()).unwrap();
        m.vector_push(&vec, b"b2".to_vec()).unwrap();
    });
    let merged = deliver(&mut rs, &[(0, a), (1, b), (2, c)]);
    let items = collections::vector_range(&merged, &vec, 0, 10).unwrap();
    assert_eq!(items, [&b"a"[..], b"b1", b"b2", b"c"]);
    // Same clock on two replicas: both kept, the lesser author first.
    let mut rs = [replica(1), replica(2)];
    let a = write(&mut rs[0], 1_000, |m| {
        m.vector_push(&vec, b"x".to_vec()).unwrap()
    });
    let b = write(&mut rs[1], 1_000, |m| {
        m.vector_push(&vec, b"y".to_vec()).unwrap()
    });
    let merged = deliver(&mut rs, &[(1, b), (0, a)]);
    assert_eq!(
        collections::vector_range(&merged, &vec, 0, 10).unwrap(),
        [&b"x"[..], b"y"]
    );
}

#[test]
fn every_members_increments_and_decrements_count() {
    let ctr = NodeId::root("ctr");
    let mut rs = [replica(1), replica(2), replica(3)];
    let a = write(&mut rs[0], 1_000, |m| {
        m.counter_add(&ctr, 5).unwrap();
        m.counter_add(&ctr, -2).unwrap();
    });
    let b = write(&mut rs[1], 1_000, |m| {
        m.counter_add(&ctr, 10).unwrap();
    });
    let c = write(&mut rs[2], 1_000, |m| {
        m.counter_add(&ctr, -7).unwrap();
    });
    // A later increment by replica 1 after it saw nothing else.
    let d = write(&mut rs[0], 2_000, |m| {
        m.counter_add(&ctr, 1).unwrap();
    });
    let merged = deliver(&mut rs, &[(0, a), (1, b), (2, c), (0, d)]);
    assert_eq!(collections::counter_value(&merged, &ctr).unwrap(), 7);
    // Received twice, counted once.
    let mut again = merged.clone();
    let e = write(&mut replica(4), 3_000, |m| {
        m.counter_add(&ctr, 100).unwrap();
    });
    apply_ops(&mut again, &e).unwrap();
    apply_ops(&mut again, &e).unwrap();
    assert_eq!(collections::counter_value(&again, &ctr).unwrap(), 107);
}

/// Add wins: a remove takes away only the inserts it saw. (A concurrent
/// insert stamped *before* the remove keeps the key but loses its value to
/// the remove's tombstone: see the README's note on collections.)
#[test]
fn a_map_key_removed_while_another_member_inserts_it_stays_add_wins() {
    let map = NodeId::root("map");
    // Both start from a map holding "k".
    let mut rs = [replica(1), replica(2)];
    let seed = write(&mut rs[0], 1_000, |m| {
        m.put_register(&map, b"k", b"v0".to_vec()).unwrap();
    });
    apply_ops(&mut rs[1].state, &seed).unwrap();
    // Replica 1 removes it; replica 2, not having seen that, writes it anew.
    let remove = write(&mut rs[0], 2_000, |m| {
        m.remove_key(&map, b"k").unwrap();
    });
    let insert = write(&mut rs[1], 3_000, |m| {
        m.put_register(&map, b"k", b"v1".to_vec()).unwrap();
    });
    let merged = deliver(&mut rs, &[(0, seed.clone()), (0, remove), (1, insert)]);
    assert!(collections::contains(&merged, &map, b"k").unwrap());
    assert_eq!(
        collections::register_entries(&merged, &map, None, 10).unwrap(),
        [(b"k".to_vec(), b"v1".to_vec())]
    );
    // A remove that saw the insert removes it, in any order of arrival.
    let mut r = replica(1);
    r.state = merged;
    let remove = write(&mut r, 6_000, |m| {
        m.remove_key(&map, b"k").unwrap();
    });
    assert!(!collections::contains(&r.state, &map, b"k").unwrap());
    let mut fresh = MemoryBackend::default();
    apply_ops(&mut fresh, &remove).unwrap();
    apply_ops(&mut fresh, &seed).unwrap();
    assert!(!collections::contains(&fresh, &map, b"k").unwrap());
}

#[test]
fn clearing_a_map_keeps_what_another_member_added_concurrently() {
    let map = NodeId::root("map");
    let mut rs = [replica(1), replica(2)];
    let seed = write(&mut rs[0], 1_000, |m| {
        m.put_register(&map, b"old", b"1".to_vec()).unwrap();
    });
    apply_ops(&mut rs[1].state, &seed).unwrap();
    let clear = write(&mut rs[0], 5_000, |m| m.clear(&map).unwrap());
    let add = write(&mut rs[1], 2_000, |m| {
        m.put_register(&map, b"new", b"2".to_vec()).unwrap();
    });
    let merged = deliver(&mut rs, &[(0, seed), (0, clear), (1, add)]);
    assert_eq!(
        collections::keys(&merged, &map, None, 10).unwrap(),
        [b"new".to_vec()],
        "the clear removes what it saw and keeps the concurrent add"
    );
    assert_eq!(collections::len(&merged, &map).unwrap(), 1);
}

#[test]
fn an_authored_element_is_its_creators_alone_and_a_concurrent_creation_goes_to_the_first() {
    let notes = NodeId::root("notes");
    let mut rs = [replica(1), replica(2)];
    let first = write(&mut rs[0], 1_000, |m| {
        m.authored_put(&notes, b"k", Some(b"a".to_vec()), 1)
            .unwrap();
    });
    // Member 2 creates the same key before it hears of member 1's.
    let second = write(&mut rs[1], 2_000, |m| {
        m.authored_put(&notes, b"k", Some(b"b".to_vec()), 1)
            .unwrap();
        m.authored_put(&notes, b"mine", Some(b"m".to_vec()), 1)
            .unwrap();
    });
    let merged = deliver(&mut rs, &[(0, first.clone()), (1, second.clone())]);
    let k = collections::authored_get(&merged, &notes, b"k")
        .unwrap()
        .unwrap();
    assert_eq!(k.owner(), Author([1; 32]), "the earlier creation owns it");
    assert_eq!(k.register.value.as_deref(), Some(&b"a"[..]));

    // Now that it knows, member 2 may neither rewrite nor remove it, and
    // clearing the map leaves it; member 1 rewrites its own.
    let mut ops = Vec::new();
    {
        let mut scratch = Overlay::new(&rs[1].state);
        let mut m = Mutator::new(
            &mut scratch,
            rs[1].author,
            &mut rs[1].clock,
            3_000,
            &mut ops,
        );
        let refused = m.authored_put(&notes, b"k", Some(b"x".to_vec()), 1);
        assert!(
            matches!(refused, Err(mero_crdt::Error::NotOwner { .. })),
            "{refused:?}"
        );
        assert!(m.authored_put(&notes, b"k", None, 1).is_err());
        m.clear(&notes).unwrap();
    }
    apply_ops(&mut rs[1].state, &ops).unwrap();
    let clear = ops;
    let rewrite = write(&mut rs[0], 4_000, |m| {
        let old = m
            .authored_put(&notes, b"k", Some(b"a2".to_vec()), 2)
            .unwrap();
        assert_eq!(old.as_deref(), Some(&b"a"[..]));
    });
    let merged = deliver(
        &mut rs,
        &[(0, first), (1, second), (1, clear), (0, rewrite)],
    );
    let entries = collections::authored_entries(&merged, &notes, None, 10).unwrap();
    let shown: Vec<(&[u8], &[u8], u32)> = entries
        .iter()
        .map(|(k, a)| (&k[..], a.register.value.as_deref().unwrap(), a.version))
        .collect();
    assert_eq!(
        shown,
        [(&b"k"[..], &b"a2"[..], 2)],
        "member 2 cleared only its own"
    );
    assert_eq!(collections::len(&merged, &notes).unwrap(), 1);
}

#[test]
fn only_the_owner_of_an_authored_vector_element_changes_it() {
    let list = NodeId::root("list");
    let mut rs = [replica(1), replica(2)];
    let push = write(&mut rs[0], 1_000, |m| {
        m.authored_push(&list, b"one".to_vec(), 1).unwrap();
    });
    apply_ops(&mut rs[1].state, &push).unwrap();
    let theirs = write(&mut rs[1], 2_000, |m| {
        m.authored_push(&list, b"two".to_vec(), 1).unwrap();
        let refused = m.authored_write_at(&list, 0, Some(b"x".to_vec()), 1);
        assert!(matches!(refused, Err(mero_crdt::Error::NotOwner { .. })));
        assert_eq!(m.authored_write_at(&list, 1, None, 1).unwrap(), b"two");
    });
    let merged = deliver(&mut rs, &[(0, push), (1, theirs)]);
    let left = collections::authored_range(&merged, &list, 0, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1.owner(), Author([1; 32]));
    assert_eq!(left[0].1.register.value.as_deref(), Some(&b"one"[..]));
}

mod properties {
    //! The register and counter rules as properties: any writes by up to
    //! four authors, delivered in any order, end at the value the rule
    //! names (not only at one all replicas agree on).

    use super::*;
    use proptest::prelude::*;

    /// Per author, the walls of its writes (distinct, so each write's stamp
    /// is its wall) and each write's counter step.
    fn writes() -> impl Strategy<Value = Vec<Vec<(u64, i64)>>> {
        prop::collection::vec(
            prop::collection::btree_map(1u64..40, -50i64..50, 0..6)
                .prop_map(|m| m.into_iter().collect::<Vec<_>>()),
            1..=4,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_latest_write_wins_ties_go_to_the_greater_author_and_every_step_counts(
            per_author in writes(),
            order in any::<u64>(),
        ) {
            let reg = NodeId::root("reg");
            let ctr = NodeId::root("ctr");
            let mut deltas = Vec::new();
            for (a, walls) in per_author.iter().enumerate() {
                let mut r = replica(a as u8 + 1);
                for &(wall, step) in walls {
                    let ops = write(&mut r, wall, |m| {
                        m.register_set(&reg, Some(vec![a as u8 + 1, wall as u8])).unwrap();
                        m.counter_add(&ctr, step.into()).unwrap();
                    });
                    deltas.push(ops);
                }
            }
            // The rule, computed apart: the write with the greatest
            // (wall, author); the sum of every step.
            let winner = per_author
                .iter()
                .enumerate()
                .flat_map(|(a, w)| w.iter().map(move |&(wall, _)| (wall, a as u8 + 1)))
                .max()
                .map(|(wall, a)| vec![a, wall as u8]);
            let sum: i64 = per_author.iter().flatten().map(|&(_, s)| s).sum();
            // Delivered in a shuffled order (a seeded Fisher-Yates).
            let mut x = order | 1;
            for i in (1..deltas.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                deltas.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut merged = MemoryBackend::default();
            for ops in &deltas {
                apply_ops(&mut merged, ops).unwrap();
            }
            prop_assert_eq!(collections::register_get(&merged, &reg).unwrap(), winner);
            if !deltas.is_empty() {
                prop_assert_eq!(collections::counter_value(&merged, &ctr).unwrap(), sum);
            }
        }
    }
}
