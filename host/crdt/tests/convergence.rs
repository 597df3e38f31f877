//! Convergence: whatever order replicas receive deltas in, with duplicates,
//! they end with the same state and the same root hash, for every collection
//! kind and for nested collections. Also checks that the incrementally
//! maintained root equals a root computed from scratch.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_crdt::collections::{self, Mutator};
use mero_crdt::merkle;
use mero_crdt::overlay::Overlay;
use mero_crdt::{Author, Clock, MemoryBackend, NodeId, Op, apply_ops};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

#[derive(Clone, Debug)]
enum Action {
    RegisterSet(Option<u8>),
    MapPut(u8, u8),
    MapRemove(u8),
    MapClear,
    NestedMapPut(u8, u8, u8),
    NestedVectorPush(u8, u8),
    NestedCounterAdd(u8, i8),
    SetInsert(u8),
    SetRemove(u8),
    VectorPush(u8),
    VectorSet(u8, u8),
    VectorRemove(u8),
    VectorPop,
    CounterAdd(i8),
    /// The replica receives everything another replica has produced so far.
    Sync(usize),
}

fn action() -> impl Strategy<Value = Action> {
    let k = 0u8..6;
    prop_oneof![
        proptest::option::of(any::<u8>()).prop_map(Action::RegisterSet),
        (k.clone(), any::<u8>()).prop_map(|(a, b)| Action::MapPut(a, b)),
        k.clone().prop_map(Action::MapRemove),
        Just(Action::MapClear),
        (0u8..3, k.clone(), any::<u8>()).prop_map(|(a, b, c)| Action::NestedMapPut(a, b, c)),
        (0u8..3, any::<u8>()).prop_map(|(a, b)| Action::NestedVectorPush(a, b)),
        (0u8..3, any::<i8>()).prop_map(|(a, b)| Action::NestedCounterAdd(a, b)),
        k.clone().prop_map(Action::SetInsert),
        k.clone().prop_map(Action::SetRemove),
        any::<u8>().prop_map(Action::VectorPush),
        (0u8..4, any::<u8>()).prop_map(|(a, b)| Action::VectorSet(a, b)),
        (0u8..4).prop_map(Action::VectorRemove),
        Just(Action::VectorPop),
        any::<i8>().prop_map(Action::CounterAdd),
        (0usize..3).prop_map(Action::Sync),
    ]
}

struct Replica {
    author: Author,
    clock: Clock,
    state: MemoryBackend,
    /// Indexes into the global delta list this replica has applied.
    seen: Vec<usize>,
}

fn perform(r: &mut Replica, action: &Action, wall: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut scratch = Overlay::new(&r.state);
    let mut m = Mutator::new(&mut scratch, r.author, &mut r.clock, wall, &mut ops);
    let reg = NodeId::root("reg");
    let map = NodeId::root("map");
    let nested = NodeId::root("nested");
    let set = NodeId::root("set");
    let vec = NodeId::root("vec");
    let ctr = NodeId::root("ctr");
    let res = match action {
        Action::RegisterSet(v) => m.register_set(&reg, v.map(|v| vec![v])),
        Action::MapPut(k, v) => m.put_register(&map, &[*k], vec![*v]).map(drop),
        Action::MapRemove(k) => m.remove_key(&map, &[*k]).map(drop),
        Action::MapClear => m.clear(&map),
        Action::NestedMapPut(o, k, v) => m
            .insert_key(&nested, &[*o])
            .and_then(|_| m.put_register(&nested.child(&[*o]).child(b"inner"), &[*k], vec![*v]))
            .map(drop),
        Action::NestedVectorPush(o, v) => m
            .insert_key(&nested, &[*o])
            .and_then(|_| m.vector_push(&nested.child(&[*o]).child(b"list"), vec![*v])),
        Action::NestedCounterAdd(o, d) => m
            .insert_key(&nested, &[*o])
            .and_then(|_| m.counter_add(&nested.child(&[*o]).child(b"n"), i128::from(*d)))
            .map(drop),
        Action::SetInsert(e) => m.insert_key(&set, &[*e]).map(drop),
        Action::SetRemove(e) => m.remove_key(&set, &[*e]).map(drop),
        Action::VectorPush(v) => m.vector_push(&vec, vec![*v]),
        Action::VectorSet(i, v) => m.vector_set(&vec, u64::from(*i), vec![*v]).map(drop),
        Action::VectorRemove(i) => m.vector_remove(&vec, u64::from(*i)).map(drop),
        Action::VectorPop => m.vector_pop(&vec).map(drop),
        Action::CounterAdd(d) => m.counter_add(&ctr, i128::from(*d)).map(drop),
        Action::Sync(_) => Ok(()),
    };
    match res {
        Ok(()) => ops,
        // Out-of-range vector indexes are expected; they write nothing.
        Err(mero_crdt::Error::OutOfRange { .. }) => Vec::new(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn receive(r: &mut Replica, deltas: &[Vec<Op>], idx: usize) {
    let root = apply_ops(&mut r.state, &deltas[idx]).unwrap();
    assert_eq!(root, merkle::root(&r.state).unwrap());
    r.seen.push(idx);
}

fn full_root(state: &MemoryBackend) -> [u8; 32] {
    merkle::full_root(state.entries.iter().map(|((n, k), e)| (n, k.as_slice(), e))).unwrap()
}

fn run(actions: &[(usize, Action)], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut replicas: Vec<Replica> = (0..3u8)
        .map(|i| Replica {
            author: Author([i + 1; 32]),
            clock: Clock::default(),
            state: MemoryBackend::default(),
            seen: vec![],
        })
        .collect();
    let mut deltas: Vec<Vec<Op>> = Vec::new();
    let mut producer: Vec<usize> = Vec::new();
    for (step, (who, action)) in actions.iter().enumerate() {
        // Wall clocks that disagree and sometimes go backwards.
        let wall = 1000 + (step as u64 / 3) * (*who as u64 + 1);
        if let Action::Sync(from) = action {
            let missing: Vec<usize> = (0..deltas.len())
                .filter(|i| producer[*i] == *from && !replicas[*who].seen.contains(i))
                .collect();
            for i in missing {
                let r = &mut replicas[*who];
                for op in &deltas[i] {
                    if let mero_crdt::Entry::Register(reg) = &op.entry {
                        r.clock.observe(reg.stamp.hlc);
                    }
                }
                receive(r, &deltas, i);
            }
            continue;
        }
        let ops = perform(&mut replicas[*who], action, wall);
        deltas.push(ops);
        producer.push(*who);
        let idx = deltas.len() - 1;
        receive(&mut replicas[*who], &deltas, idx);
    }

    // Everyone receives everything, in a random order, some twice.
    for r in &mut replicas {
        let mut order: Vec<usize> = (0..deltas.len()).filter(|i| !r.seen.contains(i)).collect();
        let dups: Vec<usize> = (0..deltas.len())
            .filter(|_| rand::Rng::random_bool(&mut rng, 0.2))
            .collect();
        order.extend(dups);
        order.shuffle(&mut rng);
        for i in order {
            receive(r, &deltas, i);
        }
    }
    // Fresh replicas from scratch, in other orders.
    for _ in 0..2 {
        let mut fresh = MemoryBackend::default();
        let mut order: Vec<usize> = (0..deltas.len()).chain(0..deltas.len() / 2).collect();
        order.shuffle(&mut rng);
        for i in order {
            apply_ops(&mut fresh, &deltas[i]).unwrap();
        }
        assert_eq!(fresh.entries, replicas[0].state.entries);
        assert_eq!(
            merkle::root(&fresh).unwrap(),
            merkle::root(&replicas[0].state).unwrap()
        );
    }

    let root0 = merkle::root(&replicas[0].state).unwrap();
    for r in &replicas {
        assert_eq!(r.state.entries, replicas[0].state.entries);
        assert_eq!(merkle::root(&r.state).unwrap(), root0);
        assert_eq!(
            full_root(&r.state),
            root0,
            "incremental root differs from a full recomputation"
        );
        // Derived lengths agree with the entries.
        for name in ["map", "set", "vec", "nested"] {
            let node = NodeId::root(name);
            let listed = collections::keys(&r.state, &node, None, usize::MAX)
                .unwrap()
                .len() as u64;
            assert_eq!(collections::len(&r.state, &node).unwrap(), listed, "{name}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        actions in proptest::collection::vec((0usize..3, action()), 1..60),
        seed in any::<u64>(),
    ) {
        run(&actions, seed);
    }
}

#[test]
fn concurrent_insert_and_remove_of_a_map_key_keeps_the_key() {
    let mut a = Replica {
        author: Author([1; 32]),
        clock: Clock::default(),
        state: MemoryBackend::default(),
        seen: vec![],
    };
    let mut b = Replica {
        author: Author([2; 32]),
        clock: Clock::default(),
        state: MemoryBackend::default(),
        seen: vec![],
    };
    let base = perform(&mut a, &Action::MapPut(1, 10), 1);
    apply_ops(&mut a.state, &base).unwrap();
    apply_ops(&mut b.state, &base).unwrap();
    let removal = perform(&mut b, &Action::MapRemove(1), 2);
    let update = perform(&mut a, &Action::MapPut(1, 11), 2);
    for r in [&mut a, &mut b] {
        apply_ops(&mut r.state, &removal).unwrap();
        apply_ops(&mut r.state, &update).unwrap();
    }
    let map = NodeId::root("map");
    for r in [&a, &b] {
        assert_eq!(
            collections::register_entries(&r.state, &map, None, 10).unwrap(),
            vec![(vec![1], vec![11])]
        );
    }
}

#[test]
fn concurrent_counter_increments_all_count() {
    let mut rs: Vec<Replica> = (0..3u8)
        .map(|i| Replica {
            author: Author([i + 1; 32]),
            clock: Clock::default(),
            state: MemoryBackend::default(),
            seen: vec![],
        })
        .collect();
    let deltas: Vec<Vec<Op>> = rs
        .iter_mut()
        .map(|r| perform(r, &Action::CounterAdd(5), 1))
        .collect();
    let mut all = MemoryBackend::default();
    for d in &deltas {
        apply_ops(&mut all, d).unwrap();
    }
    assert_eq!(
        collections::counter_value(&all, &NodeId::root("ctr")).unwrap(),
        15
    );
}

#[test]
fn root_stays_incremental_with_many_keys() {
    let mut r = Replica {
        author: Author([1; 32]),
        clock: Clock::default(),
        state: MemoryBackend::default(),
        seen: vec![],
    };
    for i in 0..2000u32 {
        let mut ops = Vec::new();
        let mut scratch = Overlay::new(&r.state);
        Mutator::new(&mut scratch, r.author, &mut r.clock, 1, &mut ops)
            .put_register(&NodeId::root("m"), &i.to_be_bytes(), vec![1])
            .unwrap();
        apply_ops(&mut r.state, &ops).unwrap();
    }
    assert_eq!(full_root(&r.state), merkle::root(&r.state).unwrap());
    assert_eq!(
        collections::len(&r.state, &NodeId::root("m")).unwrap(),
        2000
    );
}
