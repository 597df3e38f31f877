//! Upgrading a group's application on real `merod` processes: versions,
//! migrations proven by the version the node reports and by the migrated
//! data (never by a string compiled into the app), logical aborts that
//! leave no trace, refusals with their reason, and a second member that
//! migrates its own copy to the same root hash.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::node::upgrade::{context, fails, install, status, subset, trigger};
use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::wait_until;
use serde_json::json;

#[test]
fn an_added_field_is_migrated_and_the_node_reports_the_new_version() {
    let n1 = TestNode::start("node1");
    let (v1, ns, ctx) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    n1.call(
        &ctx,
        "set_description",
        json!({"description": "set-before-migration"}),
    );
    n1.call(&ctx, "increment_counter", json!({}));
    n1.call(&ctx, "set_item", json!({"key": "k1", "value": "v1-value"}));
    fails(&n1, &ctx, "set_notes", json!({"notes": "too early"}));
    assert!(status(&n1, &ns).is_null(), "no upgrade yet");
    // `GET /groups/:id` carries the same record as `activeUpgrade`.
    let group = |n: &TestNode| {
        let (code, v) = n.request("GET", &format!("/admin-api/groups/{ns}"), None);
        assert_eq!(code, 200, "{v}");
        v["data"].clone()
    };
    let g = group(&n1);
    assert!(g.get("activeUpgrade").is_none(), "no upgrade yet: {g}");

    let v2 = install(&n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);
    let versions = n1.meroctl_json(&["app", "versions", &v1]);
    let listed: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["1.0.0", "2.0.0"], "{versions}");
    assert_eq!(versions[1]["stateVersion"], 2);

    let done = trigger(&n1, &ns, &v2);
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["localContextsTotal"].is_null(), "{done}");

    let s = status(&n1, &ns);
    assert_eq!(
        group(&n1)["activeUpgrade"],
        s,
        "the group shows its upgrade"
    );
    subset(
        &s,
        json!({"status": "completed", "fromVersion": "1.0.0", "toVersion": "2.0.0",
               "fromStateVersion": 1, "toStateVersion": 2, "localContextsTotal": 1,
               "localContextsSwapped": 1, "localContextsFailed": 0}),
    );
    let c = context(&n1, &ctx);
    subset(
        &c,
        json!({"applicationId": v2, "applicationVersion": "2.0.0", "stateVersion": 2}),
    );
    assert_eq!(
        s["contexts"][0]["rootHash"], c["contextStateHash"],
        "the status names the migrated root"
    );
    // The migrated data, read through the new version.
    let info = n1.call(&ctx, "schema_info", json!({}));
    subset(
        &info,
        json!({"description": "set-before-migration", "counter": "1", "notes": "added in v2"}),
    );
    assert_eq!(n1.call(&ctx, "get_item", json!({"key": "k1"})), "v1-value");
    n1.call(
        &ctx,
        "set_notes",
        json!({"notes": "written-post-migration"}),
    );
    assert_eq!(
        n1.call(&ctx, "get_notes", json!({})),
        "written-post-migration"
    );

    // The namespace shows its version; upgrading to it again is refused.
    let table = n1.meroctl_ok(&["namespace", "ls"]);
    assert!(
        table.contains("Version") && table.contains("2.0.0"),
        "{table}"
    );
    n1.meroctl_fails(
        &[
            "group",
            "upgrade",
            "trigger",
            &ns,
            "--target-application-id",
            &v2,
        ],
        "AlreadyTargeted",
    );
}

#[test]
fn a_failing_check_is_a_logical_abort_that_leaves_no_trace() {
    let n1 = TestNode::start("node1");
    let (_, ns, ctx) = n1.setup(mero_fixtures::SCENARIO_MIGRATION_CHECK_FAIL_V1);
    for (k, v) in [("alpha", "a"), ("bravo", "b"), ("charlie", "c")] {
        n1.call(&ctx, "set_item", json!({"key": k, "value": v}));
    }
    let root = n1.root(&ctx).unwrap();
    let v2 = install(&n1, mero_fixtures::SCENARIO_MIGRATION_CHECK_FAIL_V2);

    let err = n1.meroctl_fails(
        &[
            "group",
            "upgrade",
            "trigger",
            &ns,
            "--target-application-id",
            &v2,
        ],
        "MigrationCheckFailed",
    );
    assert!(err.contains("check"), "the reason is in the answer: {err}");
    let c = context(&n1, &ctx);
    subset(
        &c,
        json!({"applicationVersion": "1.0.0", "stateVersion": 1}),
    );
    assert_eq!(n1.root(&ctx).unwrap(), root, "zero residue");
    assert_eq!(n1.call(&ctx, "item_count", json!({})), 3);
    assert_eq!(n1.call(&ctx, "get_item", json!({"key": "alpha"})), "a");
    let s = status(&n1, &ns);
    assert_eq!(s["status"], "failed", "{s}");
    assert!(s["error"].as_str().unwrap().contains("check"), "{s}");
    assert!(n1.log().contains("logical abort"));

    // Retrying runs it again, and it fails again the same way.
    n1.meroctl_fails(&["group", "upgrade", "retry", &ns], "MigrationCheckFailed");
    assert_eq!(n1.root(&ctx).unwrap(), root);
    // Writes go on under the old version.
    n1.call(&ctx, "set_item", json!({"key": "delta", "value": "d"}));
    assert_eq!(n1.call(&ctx, "item_count", json!({})), 4);
}

#[test]
fn a_passing_check_commits_the_migration() {
    let n1 = TestNode::start("node1");
    let (_, ns, ctx) = n1.setup(mero_fixtures::SCENARIO_MIGRATION_CHECK_PASS_V1);
    for (k, v) in [("alpha", "a"), ("bravo", "b"), ("charlie", "c")] {
        n1.call(&ctx, "set_item", json!({"key": k, "value": v}));
    }
    let v2 = install(&n1, mero_fixtures::SCENARIO_MIGRATION_CHECK_PASS_V2);
    assert_eq!(trigger(&n1, &ns, &v2)["status"], "completed");
    subset(
        &context(&n1, &ctx),
        json!({"applicationVersion": "2.0.0", "stateVersion": 2}),
    );
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"item_count": 3, "notes": "added in v2"}),
    );
}

#[test]
fn a_layout_change_without_a_version_bump_is_refused() {
    let n1 = TestNode::start("node1");
    let (_, ns, ctx) = n1.setup(mero_fixtures::SCENARIO_LAYOUT_NO_BUMP_V1);
    n1.call(&ctx, "set_item", json!({"key": "k", "value": "v"}));
    let root = n1.root(&ctx).unwrap();
    let v2 = install(&n1, mero_fixtures::SCENARIO_LAYOUT_NO_BUMP_V2);
    let err = n1.meroctl_fails(
        &[
            "group",
            "upgrade",
            "trigger",
            &ns,
            "--target-application-id",
            &v2,
        ],
        "LayoutChangedWithoutVersionBump",
    );
    assert!(err.contains("items"), "names the field: {err}");
    subset(&context(&n1, &ctx), json!({"applicationVersion": "1.0.0"}));
    assert_eq!(n1.root(&ctx).unwrap(), root);
    assert_eq!(n1.call(&ctx, "get_item", json!({"key": "k"})), "v");
}

#[test]
fn a_code_only_upgrade_swaps_the_code_and_keeps_the_state() {
    let n1 = TestNode::start("node1");
    let (_, ns, ctx) = n1.setup(mero_fixtures::SCENARIO_PURE_BUGFIX_V1);
    for (k, v) in [("k1", 10), ("k2", 20), ("k3", 30)] {
        n1.call(&ctx, "add_value", json!({"key": k, "value": v}));
    }
    assert_eq!(n1.call(&ctx, "sum_all_values", json!({})), 61, "v1's bug");
    let v2 = install(&n1, mero_fixtures::SCENARIO_PURE_BUGFIX_V2);
    let root = n1.root(&ctx).unwrap();
    assert_eq!(trigger(&n1, &ns, &v2)["status"], "completed");
    assert_eq!(
        n1.root(&ctx).unwrap(),
        root,
        "a code-only upgrade writes nothing"
    );
    subset(
        &context(&n1, &ctx),
        json!({"applicationVersion": "2.0.0", "stateVersion": 1}),
    );
    assert_eq!(n1.call(&ctx, "sum_all_values", json!({})), 60, "v2's fix");
    assert_eq!(n1.call(&ctx, "get_value", json!({"key": "k1"})), 10);
}

#[test]
fn the_suite_migrates_through_remove_rename_and_type_change() {
    let n1 = TestNode::start("node1");
    let (_, ns, ctx) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    n1.call(&ctx, "set_description", json!({"description": "chain"}));
    for _ in 0..3 {
        n1.call(&ctx, "increment_counter", json!({}));
    }
    let steps = [
        (mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD, "2.0.0"),
        (mero_fixtures::MIGRATION_SUITE_V3_REMOVE_FIELD, "3.0.0"),
        (mero_fixtures::MIGRATION_SUITE_V4_RENAME_FIELD, "4.0.0"),
        (mero_fixtures::MIGRATION_SUITE_V5_CHANGE_TYPE, "5.0.0"),
    ];
    for (component, version) in steps {
        let app = install(&n1, component);
        assert_eq!(trigger(&n1, &ns, &app)["status"], "completed", "{version}");
        subset(&context(&n1, &ctx), json!({"applicationVersion": version}));
        if version == "2.0.0" {
            n1.call(&ctx, "set_notes", json!({"notes": "will be dropped"}));
        }
    }
    subset(
        &n1.call(&ctx, "schema_info", json!({})),
        json!({"details": "chain", "counter": "3"}),
    );
    assert_eq!(n1.call(&ctx, "get_counter", json!({})), "3", "now a string");
    fails(&n1, &ctx, "get_notes", json!({}));
    fails(&n1, &ctx, "get_description", json!({}));
    fails(&n1, &ctx, "increment_counter", json!({}));
    n1.call(
        &ctx,
        "set_counter",
        json!({"counter": "not-a-number-anymore"}),
    );
    assert_eq!(
        n1.call(&ctx, "get_counter", json!({})),
        "not-a-number-anymore"
    );
}

#[test]
fn two_namespaces_on_one_app_upgrade_independently() {
    let n1 = TestNode::start("node1");
    let (v1, ns_a, ctx_a) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    let ns_b = n1.meroctl_json(&["namespace", "create", "--application-id", &v1]);
    let ctx_b = ns_b["contextId"].as_str().unwrap().to_string();
    let ns_b = ns_b["namespaceId"].as_str().unwrap().to_string();
    n1.call(
        &ctx_a,
        "set_description",
        json!({"description": "namespace-a"}),
    );
    n1.call(
        &ctx_b,
        "set_description",
        json!({"description": "namespace-b"}),
    );
    let v2 = install(&n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);

    trigger(&n1, &ns_a, &v2);
    subset(
        &context(&n1, &ctx_a),
        json!({"applicationVersion": "2.0.0"}),
    );
    subset(
        &context(&n1, &ctx_b),
        json!({"applicationVersion": "1.0.0"}),
    );
    // B still writes under v1.
    n1.call(&ctx_b, "increment_counter", json!({}));
    subset(
        &n1.call(&ctx_b, "schema_info", json!({})),
        json!({"description": "namespace-b", "counter": "1"}),
    );
    fails(&n1, &ctx_b, "get_notes", json!({}));

    trigger(&n1, &ns_b, &v2);
    subset(
        &n1.call(&ctx_b, "schema_info", json!({})),
        json!({"description": "namespace-b", "counter": "1", "notes": "added in v2"}),
    );
    subset(
        &n1.call(&ctx_a, "schema_info", json!({})),
        json!({"description": "namespace-a"}),
    );
}

#[test]
fn a_second_member_migrates_its_own_copy_to_the_same_root() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    n1.call(
        &ctx,
        "set_description",
        json!({"description": "additive-scenario"}),
    );
    n1.call(&ctx, "increment_counter", json!({}));
    n1.call(&ctx, "set_item", json!({"key": "k1", "value": "v1-value"}));
    let invitation = n1.invite(&ns, &[]);
    n2.join(&ns, &invitation, &ctx);
    assert_converged(&[&n1, &n2], &ctx);

    // Only admins upgrade; node 2 joined as a member.
    let v2_on_2 = install(&n2, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);
    n2.meroctl_fails(
        &[
            "group",
            "upgrade",
            "trigger",
            &ns,
            "--target-application-id",
            &v2_on_2,
        ],
        "MissingCapability",
    );

    let v2 = install(&n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);
    assert_eq!(trigger(&n1, &ns, &v2)["status"], "completed");
    wait_until("node 2 to run 2.0.0", CONVERGE, || {
        context(&n2, &ctx)["applicationVersion"] == "2.0.0"
    });
    let root = assert_converged(&[&n1, &n2], &ctx);
    // Node 2 says so too, from the same governance op.
    wait_until("node 2's status to complete", CONVERGE, || {
        status(&n2, &ns)["status"] == "completed"
    });
    let s2 = status(&n2, &ns);
    subset(
        &s2,
        json!({"fromVersion": "1.0.0", "toVersion": "2.0.0", "localContextsSwapped": 1}),
    );
    assert_eq!(
        s2["contexts"][0]["rootHash"], s2["contexts"][0]["expectedRootHash"],
        "{s2}"
    );
    assert_eq!(s2["contexts"][0]["rootHash"].as_str().unwrap(), root);
    subset(
        &n2.call(&ctx, "schema_info", json!({})),
        json!({"description": "additive-scenario", "counter": "1", "notes": "added in v2"}),
    );
    // A write under the new version replicates.
    n1.call(
        &ctx,
        "set_notes",
        json!({"notes": "additive-scenario-post-migration"}),
    );
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(
        n2.call(&ctx, "get_notes", json!({})),
        "additive-scenario-post-migration"
    );
}
