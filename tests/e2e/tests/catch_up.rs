//! Catching up across versions on real `merod` processes (upstream's
//! scenario 36, and what upstream could not do without a manual resync): a
//! node offline through three releases, each with writes made under it,
//! climbs the ladder one rung at a time on its return, each rung with its
//! own component and cut, and ends on the newest version with the same
//! root as the node that stayed. And what a node takes from a member's
//! snapshot: nothing that fails verification, entries only as the signed
//! deltas it carries give them, a proven snapshot before one taken on its
//! sender's word. Waits poll with a timeout, never sleep.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::node::upgrade::{context, install, status, subset, trigger};
use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::wait_until;
use serde_json::json;

#[test]
fn a_node_offline_across_three_releases_climbs_the_ladder_and_converges() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let mut n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    n1.call(&ctx, "set_description", json!({"description": "ladder"}));
    n1.call(&ctx, "increment_counter", json!({}));
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    assert_converged(&[&n1, &n2], &ctx);

    n2.stop();
    three_releases(&n1, &ns, &ctx);
    let expected = json!({"details": "ladder", "counter": "3"});

    // Back: it learns of three upgrades at once and climbs 1 -> 2 -> 3 -> 4.
    n2.run();
    wait_until("node2 to reach 4.0.0", CONVERGE, || {
        context(&n2, &ctx)["applicationVersion"] == "4.0.0"
    });
    assert_converged(&[&n1, &n2], &ctx);
    subset(&n2.call(&ctx, "schema_info", json!({})), expected);
    subset(&context(&n2, &ctx), json!({"stateVersion": 4}));
    let s = status(&n2, &ns);
    subset(
        &s,
        json!({"status": "completed", "toVersion": "4.0.0", "localContextsFailed": 0}),
    );
    // Each rung ran with its own component: node2 fetched the two it never
    // installed from node1.
    let installed = n2.meroctl_json(&["app", "ls"]).to_string();
    for version in ["2.0.0", "3.0.0", "4.0.0"] {
        assert!(installed.contains(version), "{version} in {installed}");
    }
    // And it writes under the newest version, seen by node1.
    n2.call(&ctx, "increment_counter", json!({}));
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"counter": "4"}),
    );
}

/// `node`, the only member of `ctx` online, upgrades it through three
/// releases, each with writes made under it.
fn three_releases(node: &TestNode, ns: &str, ctx: &str) {
    // 2.0.0 adds notes; a write under it.
    let v2 = install(node, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);
    assert_eq!(trigger(node, ns, &v2)["status"], "completed");
    node.call(ctx, "set_notes", json!({"notes": "written under v2"}));
    node.call(ctx, "increment_counter", json!({}));
    // 3.0.0 drops notes; a write under it.
    let v3 = install(node, mero_fixtures::MIGRATION_SUITE_V3_REMOVE_FIELD);
    assert_eq!(trigger(node, ns, &v3)["status"], "completed");
    node.call(ctx, "increment_counter", json!({}));
    // 4.0.0 renames description to details.
    let v4 = install(node, mero_fixtures::MIGRATION_SUITE_V4_RENAME_FIELD);
    assert_eq!(trigger(node, ns, &v4)["status"], "completed");
    subset(
        &node.call(ctx, "schema_info", json!({})),
        json!({"details": "ladder", "counter": "3"}),
    );
}

/// A context that went through three releases, and an invitation to it.
fn upgraded_thrice() -> (TestNode, String, String, String) {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    n1.call(&ctx, "set_description", json!({"description": "ladder"}));
    n1.call(&ctx, "increment_counter", json!({}));
    three_releases(&n1, &ns, &ctx);
    let invitation = n1.invite(&ns, &[]);
    (n1, ns, invitation, ctx)
}

/// A member that joins after three upgrades proves the migrated state it
/// takes: it runs each migration again, with components it never
/// installed fetched from the sender, on the deltas up to that upgrade's
/// cut, gets the root each upgrade's signed op names, and joins the
/// deltas written since.
#[test]
fn a_joiner_proves_a_state_that_crossed_three_upgrades_by_running_their_migrations_again() {
    let (n1, ns, invitation, ctx) = upgraded_thrice();
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    n2.join(&ns, &invitation, &ctx);
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n2.call(&ctx, "schema_info", json!({})),
        json!({"details": "ladder", "counter": "3"}),
    );
    let log = n2.log();
    assert_eq!(
        log.matches("ran an upgrade's migration again").count(),
        3,
        "one run per upgrade:\n{log}"
    );
    assert!(
        log.contains("proved the snapshot's entries")
            && !log.contains("taken on its sender's word"),
        "node2 proved the snapshot:\n{log}"
    );
}

/// A migrated entry rewritten by its sender (its root recomputed, so every
/// check without signatures passes) is found when the migrations are run
/// again: the snapshot is refused and its sender marked.
#[test]
fn a_forged_snapshot_that_crossed_upgrades_is_refused() {
    let (mut n1, ns, invitation, ctx) = upgraded_thrice();
    n1.stop();
    tamper(&n1, &ctx, b"forged", true);
    n1.run();
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    n2.join(&ns, &invitation, &ctx);
    wait_until("node2 to refuse node1's snapshot", CONVERGE, || {
        n2.log().contains("the peer is marked")
    });
    let log = n2.log();
    assert!(
        log.contains("the migrations they crossed give"),
        "node2 says why it refused the snapshot:\n{log}"
    );
    assert!(!log.contains("proved the snapshot's entries"), "{log}");
}

/// `context resync`, the operator's tool: refused while the node has heads
/// of its own, then with `--force` the node drops its replicated state and
/// takes a member's, keeping its private storage; refused, changing
/// nothing, when no member is there to take it from.
#[test]
fn resync_takes_a_members_state_and_keeps_private_storage() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup_with(mero_fixtures::TASK_BOARD, Some(r#"{"title":"team"}"#));
    n1.call(
        &ctx,
        "add_task",
        json!({"id": "t1", "title": "ship", "column": "todo"}),
    );
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    n2.call(&ctx, "save_draft", json!({"text": "node2's own"}));
    n2.call(
        &ctx,
        "add_task",
        json!({"id": "t2", "title": "test", "column": "todo"}),
    );
    assert_converged(&[&n1, &n2], &ctx);

    n2.meroctl_fails(&["context", "resync", &ctx], "LocalStateExists");
    let done = n2.meroctl_json(&["context", "resync", &ctx, "--force"]);
    assert_eq!(done, json!({"contextId": ctx, "resyncStarted": true}));
    // Node1's state, whole (the roots are compared as they settle: the
    // board's event handlers may still be writing); node2's draft, kept.
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(
        n2.call(&ctx, "board", json!({})),
        n1.call(&ctx, "board", json!({}))
    );
    assert_eq!(n2.call(&ctx, "draft", json!({})), json!("node2's own"));
    // It writes on, and node1 takes it.
    n2.call(
        &ctx,
        "add_task",
        json!({"id": "t3", "title": "after", "column": "todo"}),
    );
    assert_converged(&[&n1, &n2], &ctx);

    // With node1 gone, nobody sends a snapshot: refused, nothing dropped.
    assert_converged(&[&n1, &n2], &ctx);
    // The tasks' ids (acknowledgements by event handlers may still land).
    let tasks = |n: &TestNode| {
        let board = n.call(&ctx, "board", json!({})).to_string();
        ["t1", "t2", "t3"].map(|t| board.contains(&format!("\"{t}\"")))
    };
    assert_eq!(tasks(&n2), [true; 3]);
    let mut n1 = n1;
    n1.stop();
    let resync = || force_resync(&n2, &ctx);
    wait_until("node2 to see no member to resync from", CONVERGE, || {
        let (code, v) = resync();
        assert_eq!(code, 409, "{v}");
        assert_eq!(tasks(&n2), [true; 3], "nothing dropped");
        v["type"] == "NoMembers"
    });
    assert_eq!(n2.call(&ctx, "draft", json!({})), json!("node2's own"));
    n2.meroctl_fails(&["context", "resync", "nope"], "");
}

/// Writes made under the old version by a member that had not heard of the
/// upgrade yet (past its cut): node 2, alone, records items under 1.0.0
/// after node 1 migrated to 2.0.0, whose migration moves every count into
/// a new map. Node 1 refuses those writes (applied as they are, they would
/// land in the map 2.0.0 dropped); node 2, hearing of the upgrade, takes
/// node 1's migrated state and calls `record` again under 2.0.0. Both end
/// with every write counted once, on the same root. Node 2 restarts
/// between its writes and node 1's return: its journal of calls survives.
#[test]
fn writes_past_the_cut_are_rerun_by_their_author_under_the_new_version() {
    let mut n1 = TestNode::start_with("node1", FAST_SYNC);
    let mut n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1);
    n1.call(&ctx, "record", json!({"item": "apple"}));
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    assert_converged(&[&n1, &n2], &ctx);

    n2.stop();
    let v2 = install(&n1, mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2);
    assert_eq!(trigger(&n1, &ns, &v2)["status"], "completed");
    n1.stop();
    // Node 2 comes back alone: it has not heard of the upgrade.
    n2.run();
    n2.call(&ctx, "record", json!({"item": "late"}));
    n2.call(&ctx, "record", json!({"item": "apple"}));
    assert_eq!(context(&n2, &ctx)["applicationVersion"], "1.0.0");
    assert!(n2.stop(), "node 2 stopped cleanly:\n{}", n2.log());
    n2.run();
    let carried = first_event(&n2, &ctx, "WritesCarriedOver");

    n1.run();
    // It runs 2.0.0 once it took node 1's state, and says so when its
    // calls have run again.
    let carried = carried.recv_timeout(CONVERGE).unwrap();
    subset(
        &carried["data"],
        json!({"rerun": 2, "failed": [], "notJournaled": 0}),
    );
    assert_eq!(context(&n2, &ctx)["applicationVersion"], "2.0.0");
    assert_converged(&[&n1, &n2], &ctx);
    for n in [&n1, &n2] {
        assert_eq!(n.call(&ctx, "get_item_count", json!({"item": "late"})), 1);
        assert_eq!(n.call(&ctx, "get_item_count", json!({"item": "apple"})), 2);
        assert_eq!(n.call(&ctx, "get_total", json!({})), 3);
    }
    wait_until("node 2's status to complete", CONVERGE, || {
        status(&n2, &ns)["status"] == "completed"
    });
    assert!(
        n1.log().contains("after the context moved to 2"),
        "node 1 refused the writes made under 1.0.0:\n{}",
        n1.log()
    );
}

/// A rung whose component no member holds any more (node 1 uninstalled
/// 2.0.0 once its context ran 3.0.0, while node 2 was away on 1.0.0): node
/// 2 cannot climb it, so instead of stranding it takes node 1's migrated
/// state and runs 3.0.0, with no `context resync` asked for.
#[test]
fn a_rung_gone_everywhere_is_skipped_by_taking_a_members_state() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let mut n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    n1.call(&ctx, "set_description", json!({"description": "gone"}));
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    assert_converged(&[&n1, &n2], &ctx);

    n2.stop();
    let v2 = install(&n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);
    assert_eq!(trigger(&n1, &ns, &v2)["status"], "completed");
    let v3 = install(&n1, mero_fixtures::MIGRATION_SUITE_V3_REMOVE_FIELD);
    assert_eq!(trigger(&n1, &ns, &v3)["status"], "completed");
    n1.call(&ctx, "increment_counter", json!({}));
    n1.meroctl_ok(&["app", "uninstall", &v2]);

    n2.run();
    wait_until("node2 to reach 3.0.0", CONVERGE, || {
        context(&n2, &ctx)["applicationVersion"] == "3.0.0"
    });
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n2.call(&ctx, "schema_info", json!({})),
        json!({"description": "gone", "counter": "1"}),
    );
    wait_until("node 2's status to complete", CONVERGE, || {
        status(&n2, &ns)["status"] == "completed"
    });
    assert!(
        n2.log().contains("a rung's component is here nowhere"),
        "{}",
        n2.log()
    );
}

/// The first event of type `kind` node `n` streams for `ctx` from now on
/// (over `/sse`), delivered on the returned channel.
fn first_event(
    n: &TestNode,
    ctx: &str,
    kind: &str,
) -> std::sync::mpsc::Receiver<serde_json::Value> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(None)
        .build()
        .unwrap();
    let stream = client
        .get(n.url(&format!("/sse?contextIds={ctx}&eventTypes={kind}")))
        .bearer_auth(&n.token)
        .send()
        .unwrap();
    assert!(stream.status().is_success(), "{}", stream.status());
    let kind = kind.to_string();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim())
                && v["type"] == kind.as_str()
            {
                let _ = tx.send(v);
                return;
            }
        }
    });
    rx
}

/// `POST /admin-api/contexts/:id/resync` with `force` on `node`.
fn force_resync(node: &TestNode, ctx: &str) -> (u16, serde_json::Value) {
    node.request(
        "POST",
        &format!("/admin-api/contexts/{ctx}/resync"),
        Some(r#"{"force": true}"#),
    )
}

/// Rewrites every register value of `ctx` in `node`'s store (stopped) to
/// `value`, under the same stamps. With `rehash`, the Merkle trie is
/// rehashed over them, as a hostile writer forging its state would: its
/// snapshots then name the root their entries give. Without, the leaves
/// stay as they were: its snapshots' entries do not give the root they
/// name.
fn tamper(node: &TestNode, ctx: &str, value: &[u8], rehash: bool) {
    rewrite_registers(node, ctx, rehash, &|r| r.value = Some(value.to_vec()));
}

/// Applies `change` to every set register of `ctx` in `node`'s store
/// (stopped), rehashing the Merkle trie over them with `rehash`.
fn rewrite_registers(
    node: &TestNode,
    ctx: &str,
    rehash: bool,
    change: &dyn Fn(&mut mero_crdt::Register),
) {
    use mero_crdt::StateWrite;
    let store = mero_store::Store::open(&node.dir().join("data"), &Default::default()).unwrap();
    let id = mero_crdt::ContextId(bs58::decode(ctx).into_vec().unwrap().try_into().unwrap());
    let entries = store
        .snapshot()
        .unwrap()
        .entries_page(&id, None, usize::MAX)
        .unwrap();
    let mut w = store.write().unwrap();
    let mut changed = std::collections::BTreeSet::new();
    for (raw, encoded) in entries {
        let (node_id, key) = raw.split_at(32);
        let mut entry: mero_crdt::Entry = borsh::from_slice(&encoded).unwrap();
        if let mero_crdt::Entry::Register(r) = &mut entry
            && r.value.is_some()
        {
            change(r);
            let node_id = mero_crdt::NodeId(node_id.try_into().unwrap());
            w.context_state(id)
                .put_entry(&node_id, key, &entry)
                .unwrap();
            changed.insert((node_id, key.to_vec()));
        }
    }
    assert!(!changed.is_empty(), "nothing to tamper with");
    if rehash {
        mero_crdt::merkle::update(&mut w.context_state(id), changed).unwrap();
    }
    w.commit().unwrap();
}

/// As [`two_members`], node2 an admin (it invites when node1 is away).
fn admin_and_creator() -> (TestNode, TestNode, String, String) {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n1.call(&ctx, "set", json!({"key": "k", "value": "v"}));
    n2.join(&ns, &n1.invite(&ns, &["--role", "admin"]), &ctx);
    assert_converged(&[&n1, &n2], &ctx);
    (n1, n2, ns, ctx)
}

/// Two members of a kv-store context, node1 its creator having set `k`,
/// converged.
fn two_members() -> (TestNode, TestNode, String, String) {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n1.call(&ctx, "set", json!({"key": "k", "value": "v"}));
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    assert_converged(&[&n1, &n2], &ctx);
    (n1, n2, ns, ctx)
}

/// A snapshot that fails verification (here, entries that do not give the
/// root it names, as a member whose store was tampered with sends) is
/// refused before anything is dropped, even by a forced resync, which
/// drops the node's replicated state only for a snapshot it can take; the
/// node that refused it says so and marks the sender.
#[test]
fn a_snapshot_failing_verification_is_refused_before_anything_is_dropped() {
    let (mut n1, n2, _, ctx) = two_members();

    n1.stop();
    tamper(&n1, &ctx, b"\"forged\"", false);
    n1.run();
    let resync = || force_resync(&n2, &ctx);
    // Until node1 is connected again, nobody is there to ask.
    wait_until("node2 to refuse node1's snapshot", CONVERGE, || {
        let (code, v) = resync();
        assert_eq!(code, 409, "{v}");
        assert_eq!(n2.call(&ctx, "get", json!({"key": "k"})), json!("v"));
        v["type"] == "SnapshotRefused"
    });
    let (_, v) = resync();
    assert!(
        v.to_string().contains("root hash"),
        "the reason is given: {v}"
    );
    // Nothing dropped: the value, and a write on top of it.
    assert_eq!(n2.call(&ctx, "get", json!({"key": "k"})), json!("v"));
    n2.call(&ctx, "set", json!({"key": "k2", "value": "after"}));
    assert_eq!(n2.call(&ctx, "get", json!({"key": "k2"})), json!("after"));
    assert!(
        n2.log().contains("the peer is marked"),
        "node2 says it marked node1"
    );
}

/// A hostile writer's snapshots whose entries it restamped, with the root
/// they give and no signed deltas (so they cannot be proven, and only a
/// node whose operator takes such snapshots would look further): a day
/// ahead (such an entry would win every later write), then as by a key
/// that never had a role that writes. Each is refused even so, as the
/// delta path refuses such a delta, before anything is dropped.
#[test]
fn an_unproven_snapshot_stamped_a_day_ahead_or_by_a_stranger_is_refused() {
    let mut n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with(
        "node2",
        &[FAST_SYNC, &["snapshots.take_unproven=true"]].concat(),
    );
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n1.call(&ctx, "set", json!({"key": "k", "value": "v"}));
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    assert_converged(&[&n1, &n2], &ctx);
    let day_ahead = mero_crdt::hlc::wall_millis() + 24 * 3600 * 1000;
    let ahead: &dyn Fn(&mut mero_crdt::Register) = &|r| r.stamp.hlc.millis = day_ahead;
    let stranger: &dyn Fn(&mut mero_crdt::Register) = &|r| {
        r.stamp.author = mero_crdt::Author([9; 32]);
        r.stamp.hlc.millis = 1_000;
    };
    for (restamp, why) in [
        (ahead, "stamped past the receiver's clock"),
        (stranger, "never had a role that writes"),
    ] {
        n1.stop();
        rewrite_registers(&n1, &ctx, true, restamp);
        forget_bodies(&n1, &ctx);
        n1.run();
        wait_until("node2 to refuse node1's snapshot", CONVERGE, || {
            let (code, v) = force_resync(&n2, &ctx);
            assert_eq!(code, 409, "{v}");
            v.to_string().contains(why)
        });
        assert_eq!(n2.call(&ctx, "get", json!({"key": "k"})), json!("v"));
    }
}

/// A hostile writer's snapshot: its entries rewritten under their
/// authors' own stamps, with the root they give (every check that needs no
/// signature passes: the authors are writers, the clocks are in the past,
/// the root is the entries' own). The joiner rebuilds the state from the
/// signed deltas the snapshot carries, finds the entries are not theirs,
/// refuses it and marks the sender, and takes the state from those deltas
/// instead (anti-entropy fetches them).
#[test]
fn a_joiner_refuses_a_snapshot_whose_entries_its_signed_deltas_do_not_give() {
    let mut n1 = TestNode::start_with("node1", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n1.call(&ctx, "set", json!({"key": "k", "value": "v"}));
    let invitation = n1.invite(&ns, &[]);
    n1.stop();
    tamper(&n1, &ctx, b"\"forged\"", true);
    n1.run();
    assert_eq!(
        n1.call(&ctx, "get", json!({"key": "k"})),
        json!("forged"),
        "node1's state is forged"
    );

    let n2 = TestNode::start_with("node2", FAST_SYNC);
    n2.join(&ns, &invitation, &ctx);
    wait_until(
        "node2 to hold what the signed deltas wrote",
        CONVERGE,
        || n2.call(&ctx, "get", json!({"key": "k"})) == json!("v"),
    );
    let log = n2.log();
    assert!(
        log.contains("not what the signed deltas it carries give"),
        "node2 says why it refused the snapshot"
    );
    assert!(log.contains("the peer is marked"), "node2 marked node1");
}

/// A node that joined from a proven snapshot keeps the signed deltas it
/// carried (not bare ids), so its own snapshots carry them on and are
/// proven in turn: nothing of the state rests on one member's word.
#[test]
fn a_node_joined_from_a_snapshot_keeps_the_signed_deltas_it_carried() {
    let (_n1, mut n2, _, ctx) = two_members();
    assert!(
        !n2.log().contains("taken on its sender's word"),
        "node2 proved node1's snapshot"
    );

    n2.stop();
    assert_bodies_kept(&n2, &ctx, 2);
}

/// `node` (stopped) holds at least `least` deltas of `ctx`, every one with
/// its signed body.
fn assert_bodies_kept(node: &TestNode, ctx: &str, least: usize) {
    let store = mero_store::Store::open(&node.dir().join("data"), &Default::default()).unwrap();
    let id = mero_crdt::ContextId(bs58::decode(ctx).into_vec().unwrap().try_into().unwrap());
    let snap = store.snapshot().unwrap();
    let ids = snap.delta_ids(&id).unwrap();
    assert!(ids.len() >= least, "{ids:?}");
    for d in &ids {
        assert!(
            snap.delta(&id, d).unwrap().is_some(),
            "delta {d:?} is kept with its body"
        );
    }
}

/// What [`large_context`]'s values repeat.
const LARGE_VALUE: &str = "v";

/// A kv-store context whose state is too large for a snapshot to carry
/// its signed deltas beside its entries (450 values of 15 kB, each under
/// the app's event cap, over 6 MiB of entries alone): node1 created it;
/// returns node1, the namespace, an invitation and the context.
fn large_context() -> (TestNode, String, String, String) {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    for i in 0..450 {
        let value = LARGE_VALUE.repeat(15_000);
        n1.call(&ctx, "set", json!({"key": format!("k{i}"), "value": value}));
    }
    let invitation = n1.invite(&ns, &[]);
    (n1, ns, invitation, ctx)
}

/// A snapshot too large to carry its signed deltas sends its entries
/// alone; the joiner fetches the deltas from the sender apart, a page at a
/// time, proves the entries from them and keeps them with their bodies.
#[test]
fn a_snapshot_too_large_to_carry_its_deltas_is_proven_from_deltas_fetched_apart() {
    let (n1, ns, invitation, ctx) = large_context();
    let mut n2 = TestNode::start_with("node2", FAST_SYNC);
    n2.join(&ns, &invitation, &ctx);
    assert_converged(&[&n1, &n2], &ctx);
    let log = n2.log();
    assert!(
        log.contains("left out for its size"),
        "node2 fetched the deltas node1's snapshot left out"
    );
    assert!(
        !log.contains("taken on its sender's word"),
        "node2 proved node1's snapshot"
    );
    n2.stop();
    assert_bodies_kept(&n2, &ctx, 450);
}

/// A forged state too large to carry its deltas is found forged from the
/// deltas the joiner fetches apart, as a small one is from those it
/// carries: refused, the sender marked, the true values taken from the
/// signed deltas.
#[test]
fn a_forged_snapshot_too_large_to_carry_its_deltas_is_refused() {
    let (mut n1, ns, invitation, ctx) = large_context();
    n1.stop();
    tamper(&n1, &ctx, b"\"forged\"", true);
    n1.run();
    assert_eq!(n1.call(&ctx, "get", json!({"key": "k0"})), json!("forged"));

    let n2 = TestNode::start_with("node2", FAST_SYNC);
    n2.join(&ns, &invitation, &ctx);
    let true_value = json!(LARGE_VALUE.repeat(15_000));
    wait_until(
        "node2 to hold what the signed deltas wrote",
        CONVERGE,
        || n2.call(&ctx, "get", json!({"key": "k0"})) == true_value,
    );
    let log = n2.log();
    assert!(
        log.contains("left out for its size"),
        "node2 fetched the deltas node1's snapshot left out"
    );
    assert!(
        log.contains("not what the signed deltas it carries give"),
        "node2 says why it refused the snapshot"
    );
    assert!(log.contains("the peer is marked"), "node2 marked node1");
}

/// Makes `node`'s store (stopped) hold `ctx` as a node that joined a
/// snapshot before snapshots carried their deltas does: the same entries
/// and heads, every delta known by id alone. Its snapshots then cannot be
/// proven.
fn forget_bodies(node: &TestNode, ctx: &str) {
    let store = mero_store::Store::open(&node.dir().join("data"), &Default::default()).unwrap();
    let id = mero_crdt::ContextId(bs58::decode(ctx).into_vec().unwrap().try_into().unwrap());
    let snap = store.snapshot().unwrap();
    let ops: Vec<mero_crdt::Op> = snap
        .entries_page(&id, None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(raw, encoded)| mero_crdt::Op {
            node: mero_crdt::NodeId(raw[..32].try_into().unwrap()),
            key: raw[32..].to_vec(),
            entry: borsh::from_slice(&encoded).unwrap(),
        })
        .collect();
    let ids = snap.delta_ids(&id).unwrap();
    let heads = snap.heads(&id).unwrap();
    let mut w = store.write().unwrap();
    w.reset_context(&id).unwrap();
    mero_crdt::apply_ops(&mut w.context_state(id), &ops).unwrap();
    for d in &ids {
        w.put_delta_stub(&id, d).unwrap();
    }
    w.set_heads(&id, &heads).unwrap();
    w.commit().unwrap();
}

/// A snapshot whose sender holds some deltas by id alone (it joined one
/// that could not be proven) is proven with their signed bodies fetched
/// from another member that holds them, here a read-only one (it sends no
/// snapshot, only deltas).
#[test]
fn a_joiner_fetches_from_another_member_the_deltas_its_sender_holds_by_id_alone() {
    let (mut n1, mut n2, ns, ctx) = admin_and_creator();
    let n3 = TestNode::start_with("node3", FAST_SYNC);
    n3.join(&ns, &n1.invite(&ns, &["--role", "read-only"]), &ctx);
    assert_converged(&[&n1, &n2, &n3], &ctx);
    // node2 is the only writer left online, and holds ids alone.
    n1.stop();
    n2.stop();
    forget_bodies(&n2, &ctx);
    n2.run();

    let n4 = TestNode::start_with("node4", FAST_SYNC);
    n4.join(&ns, &n2.invite(&ns, &[]), &ctx);
    assert_converged(&[&n2, &n3, &n4], &ctx);
    assert_eq!(n4.call(&ctx, "get", json!({"key": "k"})), json!("v"));
    let log = n4.log();
    assert!(
        log.contains("fetched from other members the signed deltas")
            && log.contains("proved the snapshot's entries")
            && !log.contains("taken on its sender's word"),
        "node4 proved node2's snapshot with node3's deltas:\n{log}"
    );
}

/// A snapshot that cannot be proven (no member connected holds the
/// deltas its sender knows by id alone) is refused by default, and the
/// context is not joined; a node told to (`snapshots.take_unproven`)
/// takes it on its sender's word.
#[test]
fn a_snapshot_that_cannot_be_proven_is_refused_unless_the_operator_takes_it() {
    let (mut n1, mut n2, ns, ctx) = admin_and_creator();
    n1.stop();
    n2.stop();
    forget_bodies(&n2, &ctx);
    n2.run();

    let n3 = TestNode::start_with("node3", FAST_SYNC);
    n3.join(&ns, &n2.invite(&ns, &[]), &ctx);
    wait_until("node3 to refuse node2's snapshot", CONVERGE, || {
        n3.log()
            .contains("refused a snapshot whose entries cannot be proven")
    });
    // Its replica stays empty meanwhile (anti-entropy asks again).
    assert_eq!(n3.call(&ctx, "get", json!({"key": "k"})), json!(null));
    assert!(!n3.log().contains("taken on its sender's word"));

    let n4 = TestNode::start_with(
        "node4",
        &[FAST_SYNC, &["snapshots.take_unproven=true"]].concat(),
    );
    n4.join(&ns, &n2.invite(&ns, &[]), &ctx);
    assert_converged(&[&n2, &n4], &ctx);
    assert!(n4.log().contains("taken on its sender's word"));
}

/// With several members to ask, a joiner takes a snapshot it can prove
/// before one it would take on its sender's word, whichever it asks first.
#[test]
fn a_joiner_prefers_a_snapshot_it_can_prove() {
    let (mut n1, n2, ns, ctx) = two_members();
    let invitation = n1.invite(&ns, &[]);
    n1.stop();
    forget_bodies(&n1, &ctx);
    n1.run();

    let n3 = TestNode::start_with("node3", FAST_SYNC);
    n3.join(&ns, &invitation, &ctx);
    assert_converged(&[&n1, &n2, &n3], &ctx);
    let log = n3.log();
    assert!(
        !log.contains("taken on its sender's word"),
        "node3 took node2's proven snapshot, not node1's word"
    );
}
