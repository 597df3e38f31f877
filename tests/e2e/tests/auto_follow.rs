//! Auto-follow on two real nodes, as upstream's members do: a member that
//! joins a namespace receives its contexts' state without `join-context`,
//! and contexts registered later; with auto-follow off it joins none until
//! it turns it on again (then it backfills). Waits poll root hashes and
//! logs with a timeout.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::wait_until;
use serde_json::{Value, json};

/// Creates a context of `app` in group `ns` on `node`; returns its id.
fn create_context(node: &TestNode, app: &str, ns: &str) -> String {
    let body = json!({"applicationId": app, "groupId": ns, "initializationParams": []});
    let (status, v) = node.request("POST", "/admin-api/contexts", Some(&body.to_string()));
    assert_eq!(status, 200, "{v}");
    v["data"]["contextId"].as_str().unwrap().to_string()
}

/// `PUT …/members/<account>/auto-follow` on `node`.
fn set_auto_follow(node: &TestNode, ns: &str, account: &str, contexts: bool) -> (u16, Value) {
    let body = json!({"autoFollowContexts": contexts, "autoFollowSubgroups": false});
    node.request(
        "PUT",
        &format!("/admin-api/groups/{ns}/members/{account}/auto-follow"),
        Some(&body.to_string()),
    )
}

#[test]
fn a_member_follows_its_namespace_contexts_unless_it_turns_auto_follow_off() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (app, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n1.call(&ctx, "set", json!({"key": "a", "value": "1"}));

    // Joining the namespace is all node2 does: no join-context.
    let joined = n2.meroctl_json(&["namespace", "join", &ns, &n1.invite(&ns, &[])]);
    let me = joined["memberAccount"].as_str().unwrap().to_string();
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(n2.call(&ctx, "get", json!({"key": "a"})), json!("1"));

    // A context registered after the join is followed too.
    let later = create_context(&n1, &app, &ns);
    n1.call(&later, "set", json!({"key": "b", "value": "2"}));
    assert_converged(&[&n1, &n2], &later);

    // Only the member itself (or an admin) sets its auto-follow.
    let creator = n1
        .meroctl_json(&["group", "members", "ls", &ns])
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "Admin")
        .map(|m| m["identity"].as_str().unwrap().to_string())
        .unwrap();
    let (status, v) = set_auto_follow(&n2, &ns, &creator, false);
    assert_eq!(status, 403, "{v}");
    let (status, v) = set_auto_follow(&n2, &ns, &"00".repeat(31), false);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["type"], "InvalidAccount", "{v}");

    // Off: node2 learns of the next context and does not join it.
    let (status, v) = set_auto_follow(&n2, &ns, &me, false);
    assert_eq!((status, &v), (200, &json!({})));
    let unfollowed = create_context(&n1, &app, &ns);
    n1.call(&unfollowed, "set", json!({"key": "c", "value": "3"}));
    wait_until(
        "node2 to decide not to follow the new context",
        CONVERGE,
        || {
            n2.log().lines().any(|l| {
                l.contains("auto-follow: not joining context") && l.contains(unfollowed.as_str())
            })
        },
    );
    assert_eq!(n2.root(&unfollowed), None);
    let (status, _) = n2.request("GET", &format!("/admin-api/contexts/{unfollowed}"), None);
    assert_eq!(status, 404);

    // On again: what was registered meanwhile is backfilled.
    let (status, v) = set_auto_follow(&n2, &ns, &me, true);
    assert_eq!(status, 200, "{v}");
    assert_converged(&[&n1, &n2], &unfollowed);
    assert_eq!(n2.call(&unfollowed, "get", json!({"key": "c"})), json!("3"));

    // The seed's explicit join still answers, for a context already held.
    let out = n2.meroctl_ok(&["group", "join-context", &ctx]);
    assert!(out.contains(&ctx), "{out}");
}
