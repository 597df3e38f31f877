//! Roles and capabilities on real nodes: a read-only member reads but cannot
//! write, capabilities are set absolutely and checked, removal takes effect
//! on every node and keeps what was written before.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::{Duration, Instant};

use mero_e2e::{FAST_SYNC, TestNode, wait_converged};
use serde_json::json;

const CONVERGE: Duration = Duration::from_secs(60);

/// Joins with meroctl; returns the member's hex key.
fn join(node: &TestNode, ns: &str, invitation: &str, ctx: &str) -> String {
    let v = node.meroctl_json(&["namespace", "join", ns, invitation]);
    node.meroctl()
        .args(["group", "join-context", ctx])
        .assert()
        .success();
    v["data"]["memberAccount"].as_str().unwrap().to_string()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + CONVERGE;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn read_only_members_read_capabilities_gate_and_removal_holds() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let n3 = TestNode::start_with("node3", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n1.call(&ctx, "set", json!({"key": "a", "value": "1"}));

    let ro = join(&n2, &ns, &n1.invite(&ns, &["--role", "read-only"]), &ctx);
    let member = join(&n3, &ns, &n1.invite(&ns, &[]), &ctx);

    // Read-only: views work, mutating calls fail on its own node.
    assert_eq!(n2.call(&ctx, "get", json!({"key": "a"})), json!("1"));
    let out = n2
        .meroctl()
        .args([
            "call",
            "set",
            "--context",
            &ctx,
            "--args",
            r#"{"key":"x","value":"y"}"#,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read-only"),
        "{out:?}"
    );
    let (_, members) = n1.request("GET", &format!("/admin-api/groups/{ns}/members"), None);
    let role_of = |k: &str| {
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["identity"] == k)
            .map(|m| m["role"].as_str().unwrap().to_string())
    };
    assert_eq!(role_of(&ro).as_deref(), Some("ReadOnly"));
    assert_eq!(role_of(&member).as_deref(), Some("Member"));

    // Capabilities: a plain member cannot invite until it is allowed to.
    let out = n3
        .meroctl()
        .args(["namespace", "invite", &ns])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invite"),
        "{out:?}"
    );
    // Only a member manager may grant; node3 cannot grant itself.
    n3.meroctl()
        .args([
            "group",
            "members",
            "set-caps",
            &ns,
            &member,
            "invite-members",
        ])
        .assert()
        .failure();
    n1.meroctl()
        .args([
            "group",
            "members",
            "set-caps",
            &ns,
            &member,
            "invite-members,join-open-subgroups",
        ])
        .assert()
        .success();
    let caps = n1.meroctl_json(&["group", "members", "get-caps", &ns, &member]);
    assert_eq!(caps["data"]["capabilities"], json!(6));
    wait_until("node3 to learn its capabilities", || {
        n3.meroctl()
            .args(["namespace", "invite", &ns])
            .output()
            .unwrap()
            .status
            .success()
    });

    // node3 writes, then is removed: its history stays, its writes stop.
    n3.call(&ctx, "set", json!({"key": "from-3", "value": "v"}));
    wait_converged(&[&n1, &n2, &n3], &ctx, CONVERGE);
    // The creator cannot be removed, by anyone.
    let creator = n1.meroctl_json(&["group", "members", "ls", &ns])["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "Admin")
        .unwrap()["identity"]
        .as_str()
        .unwrap()
        .to_string();
    n1.meroctl()
        .args(["group", "members", "remove", &ns, &creator])
        .assert()
        .failure();
    n1.meroctl()
        .args(["group", "members", "remove", &ns, &member])
        .assert()
        .success();
    wait_until("node3 to see its removal", || {
        n3.rpc(&ctx, "set", json!({"key": "late", "value": "v"}))
            .get("error")
            .is_some()
    });
    wait_until("node2 to see node3 gone", || {
        let (_, m) = n2.request("GET", &format!("/admin-api/groups/{ns}/members"), None);
        m["members"].as_array().is_some_and(|l| l.len() == 2)
    });
    n1.call(&ctx, "set", json!({"key": "after", "value": "v"}));
    wait_converged(&[&n1, &n2], &ctx, CONVERGE);
    for n in [&n1, &n2] {
        assert_eq!(n.call(&ctx, "get", json!({"key": "from-3"})), json!("v"));
        assert_eq!(n.call(&ctx, "get", json!({"key": "late"})), json!(null));
    }
}
