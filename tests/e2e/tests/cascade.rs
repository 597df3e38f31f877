//! Cascades on real `merod` processes: one upgrade ordered at a namespace
//! reaches its subgroups on every member node; `cascade-status` and
//! `migration-status` say where it stands on each node and across members
//! (a member that goes quiet turns `unknown`); an abort in the middle of a
//! cascade leaves every group on one version on every node, including a
//! node that was offline through the abort. Waits poll status routes and
//! root hashes with a timeout, never sleeps.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::node::upgrade::{context, install};
use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::wait_until;
use serde_json::{Value, json};

/// Reports every half second, so a quiet member is `unknown` after one.
const HEARTBEAT: &str = "migration.heartbeat_ms=500";

fn start(name: &str, extra: &[&str]) -> TestNode {
    TestNode::start_with(name, &[FAST_SYNC, &[HEARTBEAT][..], extra].concat())
}

/// A namespace of migration-suite v1 on `nodes[0]` with `subgroups` open
/// subgroups (each with a context), every other node a member holding every
/// context, and an item written in each. Returns (namespace, [(group,
/// context)], root first).
fn world(nodes: &[&TestNode], subgroups: usize) -> (String, Vec<(String, String)>) {
    let n1 = nodes[0];
    let (app, ns, ctx) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    let mut groups = vec![(ns.clone(), ctx.clone())];
    for i in 0..subgroups {
        let g = n1.meroctl_json(&["namespace", "create-group", &ns, "--name", &format!("g{i}")])
            ["groupId"]
            .as_str()
            .unwrap()
            .to_string();
        let c = n1.meroctl_json(&["context", "create", "-a", &app, "--group-id", &g])["contextId"]
            .as_str()
            .unwrap()
            .to_string();
        groups.push((g, c));
    }
    for n in &nodes[1..] {
        n.join(&ns, &n1.invite(&ns, &[]), &ctx);
    }
    for (i, (_, c)) in groups.iter().enumerate() {
        n1.call(c, "set_item", json!({"key": "k", "value": format!("v{i}")}));
        for n in &nodes[1..] {
            // Members follow the open subgroups' contexts on their own.
            wait_until("a member to hold a subgroup's context", CONVERGE, || {
                n.root(c).is_some()
            });
        }
        assert_converged(nodes, c);
    }
    (ns, groups)
}

fn cascade_status(node: &TestNode, ns: &str) -> Vec<Value> {
    let v = node.meroctl_json(&["group", "upgrade", "cascade-status", ns]);
    v.as_array().unwrap().clone()
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

fn state_version(node: &TestNode, ctx: &str) -> u64 {
    context(node, ctx)["stateVersion"].as_u64().unwrap()
}

/// Upstream's scenarios 01 and 14: a cascade over a namespace with an open
/// subgroup, on two nodes; then the fleet's status, a quiet member (28),
/// and an abort refused once everything committed.
#[test]
fn a_cascade_reaches_every_subgroup_on_every_member_and_the_fleet_reports_it() {
    let n1 = start("node1", &[]);
    let mut n2 = start("node2", &[]);
    let (ns, groups) = world(&[&n1, &n2], 1);
    let before = migration_status(&n1, &ns);
    assert_eq!(before["targetVersion"], 0, "{before}");

    let v2 = install(&n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);
    let done = n1.meroctl_json(&[
        "group",
        "upgrade",
        "trigger",
        &ns,
        "--target-application-id",
        &v2,
        "--cascade",
        "--wait",
        "--timeout",
        "120",
    ]);
    let entries = done.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{done}");
    for (e, (g, _)) in entries.iter().zip(&groups) {
        assert_eq!(e["groupId"], *g, "root first: {done}");
        assert_eq!(e["upgrade"]["status"], "completed", "{done}");
        assert_eq!(e["upgrade"]["toVersion"], "2.0.0", "{done}");
        assert!(e["cascadeHlc"].is_string(), "{done}");
    }

    // Node2 migrates both groups' contexts itself, to the same roots.
    wait_until("node2 to complete the cascade", CONVERGE, || {
        let e = cascade_status(&n2, &ns);
        e.len() == 2 && e.iter().all(|e| e["upgrade"]["status"] == "completed")
    });
    for (_, c) in &groups {
        assert_eq!(state_version(&n2, c), 2);
        assert_converged(&[&n1, &n2], c);
        let info = n2.call(c, "schema_info", json!({}));
        assert_eq!(info["notes"], "added in v2", "{info}");
    }
    assert_eq!(n2.call(&groups[1].1, "get_item", json!({"key": "k"})), "v1");

    // Every member reports itself migrated, as each node sees it.
    for n in [&n1, &n2] {
        wait_until("every member to report migrated", CONVERGE, || {
            migration_status(n, &ns)["rollup"]["allMigrated"] == true
        });
    }
    let s = migration_status(&n1, &ns);
    assert_eq!(s["targetVersion"], 2, "{s}");
    assert_eq!(s["expectedMembers"], 2, "{s}");
    assert_eq!(
        s["rollup"],
        json!({"migrated": 2, "inProgress": 0, "unknown": 0, "failed": 0, "total": 2,
               "allMigrated": true, "membersPendingSignature": 0})
    );
    let completed_at = s["fleetCompletedAt"].as_u64().unwrap();
    for m in s["members"].as_array().unwrap() {
        assert_eq!(m["state"], "migrated", "{s}");
        assert_eq!(m["report"]["schemaVersion"], 2, "{s}");
        assert_eq!(m["report"]["residueAuto"], 0, "{s}");
        assert_eq!(m["report"]["residueIdentity"], 0, "{s}");
    }
    let table = n1.meroctl_ok(&["group", "upgrade", "migration-status", &ns]);
    assert!(table.contains("2 migrated"), "{table}");

    // Everything committed: nothing to abort.
    let refused = n1.meroctl_fails(&["group", "upgrade", "abort", &ns], "UpgradeCommitted");
    assert!(refused.contains("forward upgrade"), "{refused}");

    // A member that goes quiet is unknown; the fleet's completion stays.
    n2.stop();
    wait_until("node2 to turn unknown", CONVERGE, || {
        migration_status(&n1, &ns)["rollup"]["unknown"] == 1
    });
    let s = migration_status(&n1, &ns);
    assert_eq!(s["rollup"]["allMigrated"], false, "{s}");
    assert_eq!(s["fleetCompletedAt"], completed_at, "{s}");
    let quiet = s["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["state"] == "unknown")
        .unwrap();
    assert!(quiet.get("report").is_none(), "{s}");
    n2.run();
    wait_until("node2 to report again", CONVERGE, || {
        migration_status(&n1, &ns)["rollup"]["allMigrated"] == true
    });
}

/// What upstream could not test: an abort in the middle of a cascade over
/// three real nodes, one of them offline through the abort. Every group
/// ends on one version on every node: those that committed before the
/// abort on v2, the rest on v1, and writes go on under each.
#[test]
fn an_abort_in_the_middle_of_a_cascade_leaves_each_group_on_one_version_everywhere() {
    // Node1 pauses after each group it commits: the window to abort in.
    let n1 = start("node1", &["migration.cascade_pause_ms=3000"]);
    let n2 = start("node2", &[]);
    let mut n3 = start("node3", &[]);
    let (ns, groups) = world(&[&n1, &n2, &n3], 3);
    let v2 = install(&n1, mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD);

    // Node3 is offline while the cascade runs and is aborted.
    n3.stop();
    let started = n1.meroctl_json(&[
        "group",
        "upgrade",
        "trigger",
        &ns,
        "--target-application-id",
        &v2,
        "--cascade",
    ]);
    assert_eq!(started["status"], "in_progress", "{started}");
    // Every member sees the cascade's groups pending at once.
    wait_until("node2 to see the cascade", CONVERGE, || {
        cascade_status(&n2, &ns).len() == 4
    });
    wait_until("the root group to commit", CONVERGE, || {
        cascade_status(&n1, &ns)[0]["upgrade"]["status"] == "completed"
    });
    let aborted = n1.meroctl_json(&["group", "upgrade", "abort", &ns]);
    assert_eq!(aborted["aborted"], true, "{aborted}");
    let committed: Vec<String> = aborted["committedGroupIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    let left: Vec<String> = aborted["abortedGroupIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    assert!(committed.contains(&ns), "{aborted}");
    assert!(
        !left.is_empty(),
        "the abort came before the last group: {aborted}"
    );
    assert_eq!(committed.len() + left.len(), 4, "{aborted}");
    // Aborting again finds nothing pending.
    n1.meroctl_fails(&["group", "upgrade", "abort", &ns], "UpgradeCommitted");

    n3.run();
    let settled = |n: &TestNode| {
        let e = cascade_status(n, &ns);
        e.len() == 4
            && e.iter().all(|e| {
                let g = e["groupId"].as_str().unwrap().to_string();
                let want = if committed.contains(&g) {
                    "completed"
                } else {
                    "aborted"
                };
                e["upgrade"]["status"] == want
            })
    };
    for n in [&n1, &n2, &n3] {
        wait_until(
            "every group to settle on its side of the abort",
            CONVERGE,
            || settled(n),
        );
    }
    for (g, c) in &groups {
        let want = if committed.contains(g) { 2 } else { 1 };
        for n in [&n1, &n2, &n3] {
            wait_until("the context to reach its version", CONVERGE, || {
                state_version(n, c) == want
            });
        }
        // Writes go on under the version each group ended on.
        n2.call(c, "set_item", json!({"key": "after", "value": "abort"}));
        assert_converged(&[&n1, &n2, &n3], c);
        assert_eq!(n3.call(c, "get_item", json!({"key": "after"})), "abort");
    }
    // The fleet agrees: every member on its groups' targets.
    wait_until("every member to report migrated", CONVERGE, || {
        migration_status(&n1, &ns)["rollup"]["allMigrated"] == true
    });
}
