//! Authored entries on real `merod` processes (upstream's scenarios 15,
//! 19, 22, 32 and 33): an entry belongs to the member that created it, on
//! every node; another member's write is refused; an upgrade carries the
//! entries over with their owners; after an upgrade that changes their
//! value type each owner's node rewrites its owner's entries by itself, and
//! `migration-status` counts what is left; turning an authored collection
//! into a plain one is refused.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::node::upgrade::{context, fails, install, subset, trigger};
use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::poll::poll;
use serde_json::{Value, json};

/// Two nodes with fast sync: node 1 creates a namespace running `v1`,
/// node 2 joins it. Returns (node 1, node 2, namespace, context).
fn pair(v1: &str) -> (TestNode, TestNode, String, String) {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(v1);
    let invitation = n1.invite(&ns, &[]);
    n2.join(&ns, &invitation, &ctx);
    assert_converged(&[&n1, &n2], &ctx);
    (n1, n2, ns, ctx)
}

/// Upgrades the namespace to `v2` on node 1 and waits until node 2 runs
/// 2.0.0 at state version 2 too.
fn upgrade(n1: &TestNode, n2: &TestNode, ns: &str, ctx: &str, v2: &str) {
    let app = install(n1, v2);
    let done = trigger(n1, ns, &app);
    assert_eq!(done["status"], "completed", "{done}");
    for n in [n1, n2] {
        let reached = poll(CONVERGE, || {
            (context(n, ctx)["applicationVersion"] == "2.0.0").then_some(())
        });
        assert!(
            reached.is_some(),
            "{} never ran 2.0.0:\n{}",
            n.name,
            n.log()
        );
        subset(&context(n, ctx), json!({"stateVersion": 2}));
    }
}

fn not_owner(error: &Value) {
    assert!(
        error.to_string().contains("NotOwner") || error.to_string().contains("not the owner"),
        "expected a not-owner refusal: {error}"
    );
}

/// Scenario 15, and ownership across nodes.
#[test]
fn authored_map_entries_keep_their_owner_across_nodes_and_an_upgrade() {
    let (n1, n2, ns, ctx) = pair(mero_fixtures::SCENARIO_AUTHORED_MAP_V1);
    n1.call(&ctx, "put_entry", json!({"key": "k1", "value": "one"}));
    n2.call(&ctx, "put_entry", json!({"key": "k2", "value": "two"}));
    assert_converged(&[&n1, &n2], &ctx);
    let owner = n1.call(&ctx, "owner_of", json!({"key": "k1"}));
    assert!(owner.is_string(), "{owner}");
    assert_eq!(n2.call(&ctx, "owner_of", json!({"key": "k1"})), owner);
    assert_ne!(n1.call(&ctx, "owner_of", json!({"key": "k2"})), owner);

    // Node 2's member may neither rewrite nor remove node 1's entry; the
    // owner may.
    not_owner(&fails(
        &n2,
        &ctx,
        "put_entry",
        json!({"key": "k1", "value": "mine"}),
    ));
    not_owner(&fails(&n2, &ctx, "remove_entry", json!({"key": "k1"})));
    n1.call(
        &ctx,
        "put_entry",
        json!({"key": "k1", "value": "one again"}),
    );
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(
        n2.call(&ctx, "get_entry", json!({"key": "k1"})),
        "one again"
    );
    assert_eq!(n2.call(&ctx, "entry_count", json!({})), 2);

    upgrade(&n1, &n2, &ns, &ctx, mero_fixtures::SCENARIO_AUTHORED_MAP_V2);
    for n in [&n1, &n2] {
        assert_eq!(n.call(&ctx, "owner_of", json!({"key": "k1"})), owner);
        assert_eq!(n.call(&ctx, "get_entry", json!({"key": "k2"})), "two");
        assert_eq!(
            n.call(&ctx, "migration_note", json!({})),
            "migrated from 1.0.0 to 2.0.0"
        );
    }
    not_owner(&fails(
        &n2,
        &ctx,
        "put_entry",
        json!({"key": "k1", "value": "mine"}),
    ));
    assert_converged(&[&n1, &n2], &ctx);
}

/// Scenario 19.
#[test]
fn authored_vector_elements_keep_their_owner_across_nodes_and_an_upgrade() {
    let (n1, n2, ns, ctx) = pair(mero_fixtures::SCENARIO_AUTHORED_VECTOR_V1);
    n1.call(&ctx, "push_entry", json!({"value": "first"}));
    assert_converged(&[&n1, &n2], &ctx);
    n2.call(&ctx, "push_entry", json!({"value": "second"}));
    assert_converged(&[&n1, &n2], &ctx);
    let owner = n1.call(&ctx, "owner_of", json!({"index": 0}));
    not_owner(&fails(
        &n2,
        &ctx,
        "set_entry",
        json!({"index": 0, "value": "x"}),
    ));
    assert_eq!(
        n2.call(&ctx, "set_entry", json!({"index": 1, "value": "second'"})),
        "second"
    );
    assert_converged(&[&n1, &n2], &ctx);

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_AUTHORED_VECTOR_V2,
    );
    for n in [&n1, &n2] {
        assert_eq!(n.call(&ctx, "owner_of", json!({"index": 0})), owner);
        assert_eq!(n.call(&ctx, "get_entry", json!({"index": 0})), "first");
        assert_eq!(n.call(&ctx, "get_entry", json!({"index": 1})), "second'");
        assert_eq!(n.call(&ctx, "entry_count", json!({})), 2);
    }
}

fn migration_status(node: &TestNode, ns: &str) -> Value {
    let (code, v) = node.request(
        "GET",
        &format!("/admin-api/groups/{ns}/migration-status"),
        None,
    );
    assert_eq!(code, 200, "{v}");
    v
}

/// Scenarios 32 and 33, with a value type that changes (upstream's path
/// only carries values through): each owner's node rewrites its owner's
/// notes after the upgrade, on its own.
#[test]
fn each_owners_node_rewrites_its_authored_entries_after_an_upgrade() {
    let (n1, n2, ns, ctx) = pair(mero_fixtures::SCENARIO_AUTHORED_MIGRATE_UX_V1);
    n1.call(&ctx, "set_note", json!({"key": "a", "text": "alpha"}));
    n1.call(&ctx, "set_note", json!({"key": "b", "text": "beta"}));
    n2.call(&ctx, "set_note", json!({"key": "c", "text": "gamma"}));
    assert_converged(&[&n1, &n2], &ctx);
    for key in ["a", "b", "c"] {
        assert_eq!(n1.call(&ctx, "note_schema_version", json!({"key": key})), 1);
    }

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_AUTHORED_MIGRATE_UX_V2,
    );
    // Node 1 rewrote a and b, node 2 rewrote c: every node sees all three
    // at version 2, values kept (read through `From<String>` before).
    for n in [&n1, &n2] {
        let all_rewritten = poll(CONVERGE, || {
            ["a", "b", "c"]
                .iter()
                .all(|k| n.call(&ctx, "note_schema_version", json!({"key": k})) == 2)
                .then_some(())
        });
        assert!(
            all_rewritten.is_some(),
            "{} still holds v1 notes:\n{}",
            n.name,
            n.log()
        );
        assert_eq!(n.call(&ctx, "my_note", json!({"key": "a"})), "alpha");
        assert_eq!(n.call(&ctx, "my_note", json!({"key": "c"})), "gamma");
        assert_eq!(n.call(&ctx, "note_edits", json!({"key": "b"})), 0);
        assert_eq!(n.call(&ctx, "count_my_pending", json!({})), 0);
        assert_eq!(
            n.call(&ctx, "migrate_my_entries", json!({})),
            json!({"converted": 0, "remaining": 0})
        );
    }
    assert!(n1.log().contains("owner-driven convert"), "{}", n1.log());
    assert_converged(&[&n1, &n2], &ctx);
    // Both members report nothing left and nothing unacknowledged.
    let settled = poll(CONVERGE, || {
        let s = migration_status(&n1, &ns);
        let members = s["members"].as_array()?.clone();
        (members.len() == 2
            && members.iter().all(|m| {
                m["report"]["authoredRemaining"] == 0 && m["report"]["authoredUnacknowledged"] == 0
            }))
        .then_some(s)
    });
    assert!(settled.is_some(), "{}", migration_status(&n1, &ns));
    not_owner(&fails(
        &n2,
        &ctx,
        "set_note",
        json!({"key": "a", "text": "mine"}),
    ));
}

/// A member that may not write when the upgrade lands cannot rewrite its
/// notes: they stay readable (through `From`), `count_my_pending` and the
/// status count them, and once it may write again an explicit
/// `migrate_my_entries` (upstream's one tap) rewrites them.
#[test]
fn a_member_that_may_not_write_keeps_its_entries_pending_and_counted() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::SCENARIO_AUTHORED_MIGRATE_UX_V1);
    let m2 = n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    n2.call(&ctx, "set_note", json!({"key": "c", "text": "gamma"}));
    assert_converged(&[&n1, &n2], &ctx);
    let role = |role: &str| {
        let body = json!({ "role": role }).to_string();
        let (code, v) = n1.request(
            "PUT",
            &format!("/admin-api/groups/{ns}/members/{m2}/role"),
            Some(&body),
        );
        assert_eq!(code, 200, "{v}");
    };
    // Node 2 must know of its demotion before the upgrade reaches it; a
    // probe by writing would leave a note behind whenever it came first.
    let role_on_n2 = || {
        let (_, v) = n2.request("GET", &format!("/admin-api/groups/{ns}/members"), None);
        v["members"].as_array().and_then(|all| {
            all.iter()
                .find(|m| m["identity"] == m2.as_str())
                .and_then(|m| m["role"].as_str().map(str::to_string))
        })
    };
    role("ReadOnly");
    let demoted = poll(CONVERGE, || {
        (role_on_n2().as_deref() == Some("ReadOnly")).then_some(())
    });
    assert!(demoted.is_some(), "node 2 never saw its demotion");
    fails(&n2, &ctx, "set_note", json!({"key": "d", "text": "x"}));

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_AUTHORED_MIGRATE_UX_V2,
    );
    assert_eq!(n2.call(&ctx, "my_note", json!({"key": "c"})), "gamma");
    assert_eq!(n2.call(&ctx, "note_schema_version", json!({"key": "c"})), 1);
    assert_eq!(n2.call(&ctx, "count_my_pending", json!({})), 1);
    let pending = poll(CONVERGE, || {
        let s = migration_status(&n1, &ns);
        let m = s["members"]
            .as_array()?
            .iter()
            .find(|m| m["report"]["authoredRemaining"] == 1)?
            .clone();
        (s["rollup"]["membersPendingSignature"] == 1).then_some(m)
    });
    assert!(pending.is_some(), "{}", migration_status(&n1, &ns));

    role("Member");
    let promoted = poll(CONVERGE, || {
        (role_on_n2().as_deref() == Some("Member")).then_some(())
    });
    assert!(promoted.is_some(), "node 2 never saw its promotion");
    let rewritten = poll(CONVERGE, || {
        let v = n2.rpc(&ctx, "migrate_my_entries", json!({}));
        (v.get("error").is_none()).then_some(v)
    });
    let v = rewritten.expect("node 2 never got its write permission back");
    assert_eq!(
        v["result"]["output"],
        json!({"converted": 1, "remaining": 0}),
        "{v}"
    );
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(n1.call(&ctx, "note_schema_version", json!({"key": "c"})), 2);
    let settled = poll(CONVERGE, || {
        let s = migration_status(&n1, &ns);
        (s["rollup"]["membersPendingSignature"] == 0
            && s["members"]
                .as_array()?
                .iter()
                .all(|m| m["report"]["authoredRemaining"] == 0))
        .then_some(())
    });
    assert!(settled.is_some(), "{}", migration_status(&n1, &ns));
}

/// Scenario 22: an authored map turned into a plain one is refused, and
/// nothing changes.
#[test]
fn turning_an_authored_map_into_a_plain_one_is_refused() {
    let n1 = TestNode::start("node1");
    let (_, ns, ctx) = n1.setup(mero_fixtures::SCENARIO_IDENTITY_DOWNGRADE_V1);
    n1.call(&ctx, "put", json!({"key": "page", "value": "text"}));
    let root = n1.root(&ctx).unwrap();
    let v2 = install(&n1, mero_fixtures::SCENARIO_IDENTITY_DOWNGRADE_V2);
    let err = n1.meroctl_fails(
        &[
            "group",
            "upgrade",
            "trigger",
            &ns,
            "--target-application-id",
            &v2,
        ],
        "IdentityDowngrade",
    );
    assert!(err.contains("identity downgrade forbidden"), "{err}");
    subset(&context(&n1, &ctx), json!({"applicationVersion": "1.0.0"}));
    assert_eq!(n1.root(&ctx).unwrap(), root);
    assert_eq!(n1.call(&ctx, "get", json!({"key": "page"})), "text");
}
