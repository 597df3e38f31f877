//! Upstream's app-migration workflows 06, 07 and 09–13, ported to two real
//! `merod` processes: node 1 writes under v1 and upgrades the namespace,
//! node 2 (a member that joined by invitation) migrates its own copy, and
//! both must then report the new version, hold the migrated data and agree
//! on the root hash. Plus a member that was offline during the upgrade, and
//! views served while an upgrade runs. A migration is proven by the version
//! each node reports for the context and by the data, never by the
//! `schema_version` string compiled into the app.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mero_testkit::node::upgrade::{context, fails, install, status, subset, trigger};
use mero_testkit::node::{
    CONVERGE, FAST_SYNC, TestNode, assert_converged, authed_client, token_for,
};
use mero_testkit::poll::poll;
use mero_testkit::wait_until;
use serde_json::{Value, json};

/// Two nodes with fast sync; node 1 creates a namespace running `v1`,
/// node 2 joins it by invitation and holds the context. Returns (node 1,
/// node 2, application, namespace, context).
fn pair(v1: &str) -> (TestNode, TestNode, String, String, String) {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (app, ns, ctx) = n1.setup(v1);
    let invitation = n1.invite(&ns, &[]);
    n2.join(&ns, &invitation, &ctx);
    assert_converged(&[&n1, &n2], &ctx);
    (n1, n2, app, ns, ctx)
}

/// Waits until `node` runs `version` for `ctx`; on timeout, panics with
/// what the node reports (context, upgrade status) and its log.
fn wait_for_version(node: &TestNode, ns: &str, ctx: &str, version: &str) {
    let reached = poll(CONVERGE, || {
        (context(node, ctx)["applicationVersion"] == version).then_some(())
    });
    if reached.is_none() {
        panic!(
            "{} never ran {version} after {CONVERGE:?}\n--- context: {}\n--- status: {}\n--- log:\n{}",
            node.name,
            context(node, ctx),
            status(node, ns),
            node.log()
        );
    }
}

/// What the upgrade does to the state version.
#[derive(Clone, Copy)]
enum State {
    /// Code only: the state version stays what v1 ran.
    Kept,
    /// A migration to this state version.
    MigratedTo(u64),
}

/// Installs `v2` on node 1, upgrades the namespace to it there, waits until
/// node 2 runs 2.0.0 too, and checks both report the same application and
/// state version and converge; returns the root they agree on.
fn upgrade(n1: &TestNode, n2: &TestNode, ns: &str, ctx: &str, v2: &str, state: State) -> String {
    let before = context(n1, ctx);
    assert_eq!(before["applicationVersion"], "1.0.0", "{before}");
    let app = install(n1, v2);
    let done = trigger(n1, ns, &app);
    assert_eq!(done["status"], "completed", "{done}");
    let want_state = match state {
        State::Kept => before["stateVersion"].clone(),
        State::MigratedTo(v) => {
            assert_ne!(before["stateVersion"], v, "v1 already ran it: {before}");
            json!(v)
        }
    };
    subset(
        &context(n1, ctx),
        json!({"applicationId": app, "applicationVersion": "2.0.0", "stateVersion": want_state}),
    );
    wait_for_version(n2, ns, ctx, "2.0.0");
    subset(
        &context(n2, ctx),
        json!({"applicationId": app, "applicationVersion": "2.0.0", "stateVersion": want_state}),
    );
    assert_converged(&[n1, n2], ctx)
}

/// Workflow 06: a method added without a migration becomes callable, and
/// the state is kept.
#[test]
fn a_new_method_appears_after_a_code_only_upgrade_on_both_nodes() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::SCENARIO_NEW_METHOD_V1);
    n1.call(&ctx, "set_item", json!({"key": "k1", "value": "v1"}));
    n1.call(&ctx, "set_item", json!({"key": "k2", "value": "v2"}));
    n1.call(&ctx, "increment_counter", json!({}));
    n1.call(&ctx, "increment_counter", json!({}));
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"schema_version": "1.0.0", "items_len": 2}),
    );
    fails(&n1, &ctx, "clear_items", json!({}));

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_NEW_METHOD_V2,
        State::Kept,
    );
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "items_len": 2}),
        );
    }
    assert_eq!(n1.call(&ctx, "get_item", json!({"key": "k1"})), "v1");
    assert_eq!(n2.call(&ctx, "get_item", json!({"key": "k2"})), "v2");
    assert_eq!(n1.call(&ctx, "clear_items", json!({})), 2);
    assert_converged(&[&n1, &n2], &ctx);
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "items_len": 0}),
        );
        assert_eq!(n.call(&ctx, "get_item", json!({"key": "k1"})), Value::Null);
    }
}

/// Workflow 07: an enum variant appended without a migration; the stored
/// variant is kept and the new one can be written and replicates.
#[test]
fn a_new_enum_variant_is_usable_after_a_code_only_upgrade_on_both_nodes() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::SCENARIO_NEW_ENUM_VARIANT_V1);
    n1.call(&ctx, "set_status_paused", json!({}));
    n1.call(&ctx, "set_item", json!({"key": "k1", "value": "v1"}));
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"schema_version": "1.0.0", "status": "Paused"}),
    );
    fails(&n1, &ctx, "set_status_archived", json!({}));

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_NEW_ENUM_VARIANT_V2,
        State::Kept,
    );
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "status": "Paused"}),
        );
    }
    assert_eq!(n1.call(&ctx, "get_item", json!({"key": "k1"})), "v1");
    n1.call(&ctx, "set_status_archived", json!({}));
    assert_converged(&[&n1, &n2], &ctx);
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "status": "Archived"}),
        );
    }
}

/// Workflow 09: the migration seeds a vector from the sorted v1 keys on
/// each node; pushes after it on node 1 replicate without duplicating the
/// seeded elements.
#[test]
fn a_vector_seeded_by_the_migration_is_not_duplicated_by_later_pushes() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::SCENARIO_CRDT_NATIVE_V1);
    n1.call(&ctx, "set_title", json!({"title": "crdt-scenario-doc"}));
    for (k, v) in [("k1", "v1"), ("k2", "v2"), ("k3", "v3")] {
        n1.call(&ctx, "set_item", json!({"key": k, "value": v}));
    }
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"schema_version": "1.0.0", "title": "crdt-scenario-doc", "tag_count": 0}),
    );
    fails(
        &n1,
        &ctx,
        "push_tag",
        json!({"tag": "should-fail-pre-upgrade"}),
    );

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_CRDT_NATIVE_V2,
        State::MigratedTo(2),
    );
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "title": "crdt-scenario-doc", "tag_count": 3}),
        );
    }
    assert_eq!(n1.call(&ctx, "get_item", json!({"key": "k1"})), "v1");
    assert_eq!(n1.call(&ctx, "get_tag", json!({"index": 0})), "k1");
    assert_eq!(n2.call(&ctx, "get_tag", json!({"index": 0})), "k1");
    assert_eq!(n2.call(&ctx, "get_tag", json!({"index": 2})), "k3");

    n1.call(&ctx, "push_tag", json!({"tag": "first-tag"}));
    n1.call(&ctx, "push_tag", json!({"tag": "second-tag"}));
    assert_converged(&[&n1, &n2], &ctx);
    for n in [&n1, &n2] {
        assert_eq!(n.call(&ctx, "tag_count", json!({})), 5, "{}", n.name);
        assert_eq!(n.call(&ctx, "get_tag", json!({"index": 0})), "k1");
        assert_eq!(n.call(&ctx, "get_tag", json!({"index": 3})), "first-tag");
        assert_eq!(n.call(&ctx, "get_tag", json!({"index": 4})), "second-tag");
    }
}

/// Workflow 10: a struct becomes an enum; an inactive status keeps its
/// reason on both nodes.
#[test]
fn a_struct_becomes_an_enum_on_both_nodes() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::SCENARIO_STRUCT_TO_ENUM_V1);
    n1.call(&ctx, "set_name", json!({"name": "entity-1"}));
    n1.call(
        &ctx,
        "set_status_inactive",
        json!({"reason": "under-maintenance"}),
    );
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"schema_version": "1.0.0", "name": "entity-1", "status_active": false,
               "status_reason": "under-maintenance"}),
    );

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_STRUCT_TO_ENUM_V2,
        State::MigratedTo(2),
    );
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "name": "entity-1", "status_kind": "inactive",
                   "status_reason": "under-maintenance"}),
        );
    }
    n1.call(&ctx, "set_status_active", json!({}));
    assert_converged(&[&n1, &n2], &ctx);
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "name": "entity-1", "status_kind": "active",
                   "status_reason": null}),
        );
    }
}

/// Workflow 11: one field is split into three on both nodes; the old
/// setter is gone and the new ones replicate.
#[test]
fn a_field_is_split_into_three_on_both_nodes() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::SCENARIO_FIELD_SPLIT_V1);
    n1.call(&ctx, "set_name", json!({"name": "customer-7"}));
    n1.call(
        &ctx,
        "set_address",
        json!({"address": "221B Baker Street, London, NW1 6XE"}),
    );
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"schema_version": "1.0.0", "name": "customer-7",
               "address": "221B Baker Street, London, NW1 6XE"}),
    );
    fails(
        &n1,
        &ctx,
        "set_street",
        json!({"street": "should-fail-pre-upgrade"}),
    );

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_FIELD_SPLIT_V2,
        State::MigratedTo(2),
    );
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "name": "customer-7",
                   "street": "221B Baker Street", "city": "London", "postcode": "NW1 6XE"}),
        );
    }
    assert_eq!(n2.call(&ctx, "get_city", json!({})), "London");
    n1.call(&ctx, "set_postcode", json!({"postcode": "NW1 6XF"}));
    assert_converged(&[&n1, &n2], &ctx);
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"postcode": "NW1 6XF", "street": "221B Baker Street"}),
        );
    }
    fails(
        &n1,
        &ctx,
        "set_address",
        json!({"address": "should-fail-post-upgrade"}),
    );
}

/// Workflow 12: a removed field's value is archived in a map on both
/// nodes, and the removed field's methods are gone.
#[test]
fn a_removed_field_is_archived_on_both_nodes() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::SCENARIO_FIELD_REMOVE_ARCHIVE_V1);
    n1.call(&ctx, "set_name", json!({"name": "contract-A"}));
    n1.call(
        &ctx,
        "set_legacy_note",
        json!({"note": "legacy-data-do-not-discard"}),
    );
    for _ in 0..3 {
        n1.call(&ctx, "bump_counter", json!({}));
    }
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"schema_version": "1.0.0", "name": "contract-A",
               "legacy_note": "legacy-data-do-not-discard", "counter": 3}),
    );

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_FIELD_REMOVE_ARCHIVE_V2,
        State::MigratedTo(2),
    );
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "name": "contract-A", "counter": 3,
                   "archived_latest": "legacy-data-do-not-discard"}),
        );
        assert_eq!(
            n.call(&ctx, "get_archived", json!({"key": "latest"})),
            "legacy-data-do-not-discard"
        );
        assert_eq!(n.call(&ctx, "archived_keys", json!({})), json!(["latest"]));
    }
    fails(
        &n1,
        &ctx,
        "set_legacy_note",
        json!({"note": "should-fail-post-upgrade"}),
    );
    fails(&n1, &ctx, "get_legacy_note", json!({}));
}

/// Workflow 13: the migration recomputes an invariant (the total from the
/// per-item counts) on both nodes, and later writes keep it.
#[test]
fn an_invariant_is_recomputed_on_both_nodes() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1);
    for (item, times) in [("apple", 3), ("banana", 2), ("cherry", 1)] {
        for _ in 0..times {
            n1.call(&ctx, "record", json!({"item": item}));
        }
    }
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"schema_version": "1.0.0", "global_count": 6}),
    );

    upgrade(
        &n1,
        &n2,
        &ns,
        &ctx,
        mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2,
        State::MigratedTo(2),
    );
    for n in [&n1, &n2] {
        subset(
            &n.call(&ctx, "schema_info", json!({})),
            json!({"schema_version": "2.0.0", "total": 6}),
        );
    }
    assert_eq!(n1.call(&ctx, "get_item_count", json!({"item": "apple"})), 3);
    assert_eq!(n2.call(&ctx, "get_item_count", json!({"item": "apple"})), 3);
    assert_eq!(
        n2.call(&ctx, "get_item_count", json!({"item": "banana"})),
        2
    );
    fails(&n1, &ctx, "get_global_count", json!({}));

    assert_eq!(n1.call(&ctx, "record", json!({"item": "apple"})), 7);
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(n2.call(&ctx, "get_item_count", json!({"item": "apple"})), 4);
    assert_eq!(n2.call(&ctx, "get_total", json!({})), 7);
}

/// Stops node 2, upgrades the namespace to suite v2 on node 1 (running
/// `while_away` on node 1 after it), starts node 2 again and waits until it
/// runs 2.0.0 and says the upgrade completed; returns node 1's migrated root
/// and node 2's upgrade status.
fn upgrade_while_away(
    n1: &TestNode,
    n2: &mut TestNode,
    ns: &str,
    ctx: &str,
    while_away: impl FnOnce(),
) -> (String, Value) {
    n1.call(
        ctx,
        "set_description",
        json!({"description": "offline-scenario"}),
    );
    n1.call(ctx, "increment_counter", json!({}));
    n1.call(ctx, "set_item", json!({"key": "k1", "value": "v1-value"}));
    assert_converged(&[n1, n2], ctx);
    assert!(n2.stop(), "node 2 stops cleanly:\n{}", n2.log());

    let v2 = install(n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);
    assert_eq!(trigger(n1, ns, &v2)["status"], "completed");
    subset(
        &context(n1, ctx),
        json!({"applicationVersion": "2.0.0", "stateVersion": 2}),
    );
    let migrated = n1.root(ctx).unwrap();
    while_away();

    n2.run();
    wait_for_version(n2, ns, ctx, "2.0.0");
    subset(
        &context(n2, ctx),
        json!({"applicationId": v2, "applicationVersion": "2.0.0", "stateVersion": 2}),
    );
    wait_until("node 2's status to complete", CONVERGE, || {
        status(n2, ns)["status"] == "completed"
    });
    (migrated, status(n2, ns))
}

/// Asserts node 2's status names node 1's migrated root; else panics with
/// the status and node 2's upgrade log lines.
fn assert_migrated_to(n2: &TestNode, s2: &Value, migrated: &str) {
    let ctx = &s2["contexts"][0];
    if ctx["rootHash"] == migrated && ctx["expectedRootHash"] == migrated {
        return;
    }
    let log = n2.log();
    let upgrades: Vec<&str> = log.lines().filter(|l| l.contains("upgrades")).collect();
    panic!(
        "node 2 did not report node 1's migrated root {migrated}\n--- status: {s2}\n--- its upgrade log:\n{}",
        upgrades.join("\n")
    );
}

/// A member stopped before the upgrade folds it when it comes back,
/// migrates its own copy to node 1's root, and takes later writes.
#[test]
fn a_member_offline_during_the_upgrade_migrates_when_it_returns() {
    let (n1, mut n2, _, ns, ctx) = pair(mero_fixtures::MIGRATION_SUITE_V1);
    let (migrated, s2) = upgrade_while_away(&n1, &mut n2, &ns, &ctx, || {});
    assert_migrated_to(&n2, &s2, &migrated);
    assert_eq!(assert_converged(&[&n1, &n2], &ctx), migrated);
    subset(
        &n2.call(&ctx, "schema_info", json!({})),
        json!({"description": "offline-scenario", "counter": "1", "notes": "added in v2"}),
    );
    assert_eq!(n2.call(&ctx, "get_item", json!({"key": "k1"})), "v1-value");
    assert!(!n2.log().contains("differs from the ordering admin"));

    n1.call(&ctx, "set_notes", json!({"notes": "written-after-return"}));
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(
        n2.call(&ctx, "get_notes", json!({})),
        "written-after-return"
    );
}

/// Like the test above, with a write under the new version on node 1 while
/// node 2 is away: node 2 holds that write until it has migrated (it was
/// written for the new layout), so it migrates exactly the cut, reports
/// node 1's migrated root, and then takes the write.
#[test]
fn a_member_offline_during_the_upgrade_and_a_later_write_reports_no_divergence() {
    let (n1, mut n2, _, ns, ctx) = pair(mero_fixtures::MIGRATION_SUITE_V1);
    let (migrated, s2) = upgrade_while_away(&n1, &mut n2, &ns, &ctx, || {
        n1.call(&ctx, "set_notes", json!({"notes": "written-while-offline"}));
    });
    assert_converged(&[&n1, &n2], &ctx);
    subset(
        &n2.call(&ctx, "schema_info", json!({})),
        json!({"description": "offline-scenario", "counter": "1",
               "notes": "written-while-offline"}),
    );
    assert_eq!(n2.call(&ctx, "get_item", json!({"key": "k1"})), "v1-value");
    assert_migrated_to(&n2, &s2, &migrated);
    assert!(!n2.log().contains("moved past the upgrade's cut"), "{s2}");
    assert!(!n2.log().contains("differs from the ordering admin"));
}

/// One view call's outcome: whether it started while the trigger was in
/// flight, and its output or what went wrong.
type ViewResult = (bool, Result<Value, String>);

/// Calls `get_item {"key": "k1"}` over JSON-RPC at `url` until `stop`;
/// counts calls in `calls` and marks those started while `upgrading`.
fn view_loop(
    token: String,
    url: String,
    ctx: String,
    upgrading: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
) -> Vec<ViewResult> {
    let client = authed_client(&token);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": ctx, "method": "get_item", "argsJson": {"key": "k1"}}})
    .to_string();
    let mut results = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let during = upgrading.load(Ordering::SeqCst);
        let outcome = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let code = r.status().as_u16();
                let text = r.text().map_err(|e| e.to_string())?;
                let v: Value =
                    serde_json::from_str(&text).map_err(|_| format!("{code}: {text}"))?;
                if code != 200 || v.get("error").is_some() {
                    return Err(format!("{code}: {v}"));
                }
                Ok(v["result"]["output"].clone())
            });
        results.push((during, outcome));
        calls.fetch_add(1, Ordering::SeqCst);
    }
    results
}

/// Reads go on while node 1 migrates: a view called in a loop from another
/// thread succeeds every time, before, during and after the trigger.
#[test]
fn views_are_served_while_an_upgrade_runs() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::MIGRATION_SUITE_V1);
    n1.call(&ctx, "set_item", json!({"key": "k1", "value": "v1-value"}));
    for i in 0..20 {
        n1.call(
            &ctx,
            "set_item",
            json!({"key": format!("filler-{i}"), "value": "x"}),
        );
    }
    assert_converged(&[&n1, &n2], &ctx);
    let v2 = install(&n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);

    let upgrading = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let viewer = std::thread::spawn({
        let (url, ctx) = (n1.url("/jsonrpc"), ctx.clone());
        let token = token_for(n1.port);
        let (upgrading, stop, calls) = (upgrading.clone(), stop.clone(), calls.clone());
        move || view_loop(token, url, ctx, upgrading, stop, calls)
    });
    wait_until("the first view", CONVERGE, || {
        calls.load(Ordering::SeqCst) > 0
    });

    upgrading.store(true, Ordering::SeqCst);
    let done = trigger(&n1, &ns, &v2);
    upgrading.store(false, Ordering::SeqCst);
    let after = calls.load(Ordering::SeqCst);
    wait_until("views after the upgrade", CONVERGE, || {
        calls.load(Ordering::SeqCst) >= after + 3
    });
    stop.store(true, Ordering::SeqCst);
    let results = viewer.join().unwrap();

    assert_eq!(done["status"], "completed", "{done}");
    let failed: Vec<&ViewResult> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} views failed: {failed:?}",
        failed.len(),
        results.len()
    );
    assert!(!results.is_empty(), "no view ran");
    for (_, r) in &results {
        assert_eq!(r.as_ref().unwrap(), "v1-value");
    }
    let during = results.iter().filter(|(d, _)| *d).count();
    assert!(during > 0, "no view ran while the trigger was in flight");
    eprintln!(
        "{} views, {during} of them started while the trigger was in flight",
        results.len()
    );

    subset(
        &context(&n1, &ctx),
        json!({"applicationVersion": "2.0.0", "stateVersion": 2}),
    );
    wait_for_version(&n2, &ns, &ctx, "2.0.0");
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(n2.call(&ctx, "get_item", json!({"key": "k1"})), "v1-value");
}

/// A member that joins the context after the upgrade takes the version its
/// group runs now: its copy starts on 2.0.0 with the migrated state (a
/// snapshot of the new layout), runs no migration of its own copy, and
/// agrees on the root. The snapshot is proven, not taken on its sender's
/// word: the joiner runs the migration again on the deltas up to the
/// upgrade's cut, gets the root the upgrade's signed op names, and joins
/// the deltas written since.
#[test]
fn a_member_joining_after_the_upgrade_starts_on_the_new_version() {
    let (n1, n2, _, ns, ctx) = pair(mero_fixtures::MIGRATION_SUITE_V1);
    n1.call(&ctx, "set_item", json!({"key": "k1", "value": "v1-value"}));
    assert_converged(&[&n1, &n2], &ctx);
    let v2 = install(&n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);
    assert_eq!(trigger(&n1, &ns, &v2)["status"], "completed");
    wait_for_version(&n2, &ns, &ctx, "2.0.0");
    n1.call(&ctx, "set_notes", json!({"notes": "after the upgrade"}));

    let n3 = TestNode::start_with("node3", FAST_SYNC);
    let invitation = n1.invite(&ns, &[]);
    n3.join(&ns, &invitation, &ctx);
    subset(
        &context(&n3, &ctx),
        json!({"applicationId": v2, "applicationVersion": "2.0.0", "stateVersion": 2}),
    );
    assert_converged(&[&n1, &n2, &n3], &ctx);
    assert_eq!(n3.call(&ctx, "get_item", json!({"key": "k1"})), "v1-value");
    assert_eq!(n3.call(&ctx, "get_notes", json!({})), "after the upgrade");
    let log = n3.log();
    assert!(
        !log.contains("Migrated state written successfully"),
        "node 3 migrated a copy it took already migrated:\n{log}"
    );
    assert!(
        log.contains("ran an upgrade's migration again")
            && log.contains("proved the snapshot's entries")
            && !log.contains("taken on its sender's word"),
        "node 3 proved the migrated snapshot:\n{log}"
    );
}
