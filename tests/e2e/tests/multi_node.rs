//! Several real `merod` processes on 127.0.0.1, driven by the real `meroctl`
//! and raw HTTP: the seed's invite/join walk-through, concurrent writes,
//! a SIGKILLed node, a late joiner, isolated contexts, bad invitations and
//! the shape of meroctl's JSON output.
//! Convergence is awaited by polling root hashes with a timeout.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::spy;
use mero_testkit::wait_until;
use serde_json::{Value, json};

fn nodes(n: usize) -> Vec<TestNode> {
    (1..=n)
        .map(|i| TestNode::start_with(&format!("node{i}"), FAST_SYNC))
        .collect()
}

fn set_over_http(port: u16, ctx: &str, key: &str) -> bool {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": ctx, "method": "set", "argsJson": {"key": key, "value": key}}});
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(format!("http://127.0.0.1:{port}/jsonrpc"))
        .bearer_auth(mero_testkit::node::token_for(port))
        .json(&body)
        .send()
        .ok()
        .and_then(|r| r.json::<Value>().ok())
        .is_some_and(|v| v.get("result").is_some())
}

fn keys(node: &TestNode, ctx: &str) -> BTreeSet<String> {
    node.call(ctx, "entries", json!({}))
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn seed_walkthrough_then_concurrent_writes_converge() {
    let ns_nodes = nodes(3);
    let [n1, n2, n3] = [&ns_nodes[0], &ns_nodes[1], &ns_nodes[2]];
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n1.call(&ctx, "set", json!({"key": "a", "value": "1"}));

    // Node 2 pastes exactly what `invite` printed.
    let printed = n1.invite(&ns, &[]);
    let joined = n2.meroctl_ok(&["namespace", "join", &ns, &printed]);
    assert!(joined.contains("Successfully joined namespace"));
    n2.meroctl_ok(&["group", "join-context", &ctx]);
    // It received the current state with the join.
    assert_eq!(n2.call(&ctx, "get", json!({"key": "a"})), json!("1"));

    // Node 3 pastes only the inner invitation, as upstream wants it (its
    // own: one admits one key).
    let inner: Value = serde_json::from_str(&n1.invite(&ns, &[])).unwrap();
    let inner = inner["invitation"].to_string();
    n3.join(&ns, &inner, &ctx);

    // Every node agrees on the members.
    for n in [n1, n2, n3] {
        wait_until(&format!("{} to list 3 members", n.name), CONVERGE, || {
            let (status, v) = n.request("GET", &format!("/admin-api/groups/{ns}/members"), None);
            assert_eq!(status, 200, "{v}");
            v["members"].as_array().unwrap().len() == 3
        });
    }

    // Concurrent writes on all three.
    let ports = [n1.port, n2.port, n3.port];
    let threads: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let (port, ctx) = (*port, ctx.clone());
            std::thread::spawn(move || {
                for k in 0..25 {
                    assert!(set_over_http(port, &ctx, &format!("n{i}-{k}")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let root = assert_converged(&[n1, n2, n3], &ctx);
    for n in [n1, n2, n3] {
        assert_eq!(keys(n, &ctx).len(), 76, "{}", n.name);
        assert_eq!(n.root(&ctx).unwrap(), root);
        let (_, peers) = n.request("GET", "/admin-api/peers", None);
        assert!(peers["count"].as_u64().unwrap() >= 1, "{peers}");
    }
    // The context view shows heads and a sync status.
    let (_, info) = n2.request("GET", &format!("/admin-api/contexts/{ctx}"), None);
    assert!(
        info["data"]["dagHeads"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    );
    assert!(info["data"]["syncStatus"]["state"].is_string(), "{info}");
}

#[test]
fn a_sigkilled_node_restarts_and_nothing_acknowledged_is_lost() {
    let mut ns_nodes = nodes(3);
    let (_, ns, ctx) = ns_nodes[0].setup(mero_fixtures::KV_STORE);
    for n in &ns_nodes[1..] {
        n.join(&ns, &ns_nodes[0].invite(&ns, &[]), &ctx);
    }

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked, stop, ctx, port) = (acked.clone(), stop.clone(), ctx.clone(), ns_nodes[1].port);
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k2-{i}");
                if set_over_http(port, &ctx, &key) {
                    acked.lock().unwrap().push(key);
                }
                i += 1;
            }
        })
    };
    wait_until("the load to get going", CONVERGE, || {
        acked.lock().unwrap().len() >= 30
    });
    ns_nodes[1].kill();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    for i in 0..20 {
        ns_nodes[0].call(&ctx, "set", json!({"key": format!("k1-{i}"), "value": "v"}));
    }
    ns_nodes[1].run();
    assert_converged(&[&ns_nodes[0], &ns_nodes[1], &ns_nodes[2]], &ctx);
    let expected: BTreeSet<String> = acked
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .chain((0..20).map(|i| format!("k1-{i}")))
        .collect();
    for n in &ns_nodes {
        let have = keys(n, &ctx);
        let lost: Vec<_> = expected.difference(&have).collect();
        assert!(
            lost.is_empty(),
            "{} lost acknowledged keys {lost:?}",
            n.name
        );
    }
}

#[test]
fn a_late_joiner_receives_everything_and_contexts_stay_isolated() {
    let ns_nodes = nodes(2);
    let [n1, n2] = [&ns_nodes[0], &ns_nodes[1]];
    let (app, ns, a) = n1.setup(mero_fixtures::KV_STORE);
    let b = n1.meroctl_json(&["context", "create", "-a", &app, "--group-id", &ns])["contextId"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..150 {
        n1.call(&a, "set", json!({"key": format!("a{i}"), "value": "v"}));
    }
    n1.call(&b, "set", json!({"key": "only-b", "value": "v"}));

    let inv = n1.invite(&ns, &[]);
    n2.join(&ns, &inv, &a);
    // Everything written before the join is there as soon as it returns.
    assert_eq!(keys(n2, &a).len(), 150);
    assert_eq!(n2.root(&a), n1.root(&a));
    n2.meroctl_ok(&["group", "join-context", &b]);

    n2.call(&a, "set", json!({"key": "from-2", "value": "v"}));
    n1.call(&b, "set", json!({"key": "later-b", "value": "v"}));
    assert_converged(&[n1, n2], &a);
    assert_converged(&[n1, n2], &b);
    for n in [n1, n2] {
        let ka = keys(n, &a);
        let kb = keys(n, &b);
        assert!(ka.contains("from-2") && !ka.contains("only-b") && !ka.contains("later-b"));
        assert_eq!(
            kb,
            ["later-b", "only-b"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert_eq!(n.call(&b, "get", json!({"key": "a1"})), Value::Null);
    }
    assert_ne!(n1.root(&a), n1.root(&b));
}

/// `--output-format json` prints the value a script wants, never the
/// node's `{"data": ...}` envelope; `join` takes JSON-mode `invite` output.
#[test]
fn json_output_is_the_value_itself_and_join_takes_it() {
    let ns_nodes = nodes(2);
    let [n1, n2] = [&ns_nodes[0], &ns_nodes[1]];
    let (app, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);

    let apps = n1.meroctl_json(&["app", "ls"]);
    assert_eq!(
        apps.as_array().map(Vec::len),
        Some(1),
        "a list of apps: {apps}"
    );
    assert_eq!(apps[0]["id"], app.as_str());
    let contexts = n1.meroctl_json(&["context", "ls"]);
    assert_eq!(
        contexts.as_array().map(Vec::len),
        Some(1),
        "a list of contexts: {contexts}"
    );
    assert_eq!(contexts[0]["id"], ctx.as_str());
    assert!(contexts[0]["contextStateHash"].is_string(), "{contexts}");
    let namespaces = n1.meroctl_json(&["namespace", "ls"]);
    assert_eq!(namespaces[0]["namespaceId"], ns.as_str(), "{namespaces}");
    let info = n1.meroctl_json(&["context", "get", &ctx]);
    assert_eq!(info["id"], ctx.as_str(), "{info}");

    let invite = n1.meroctl_json(&["namespace", "invite", &ns]);
    let keys: Vec<&str> = invite
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["invitation"], "{invite}");
    assert!(
        invite["invitation"]["inviter_signature"].is_string(),
        "{invite}"
    );
    assert!(invite["invitation"]["invitation"]["inviter_identity"].is_array());

    let joined = n2.meroctl_json(&["namespace", "join", &ns, &invite.to_string()]);
    assert_eq!(joined["namespaceId"], ns.as_str(), "{joined}");
    let member = joined["memberAccount"].as_str().unwrap().to_string();
    let members = n1.meroctl_json(&["group", "members", "ls", &ns]);
    assert!(members.as_array().is_some(), "a list of members: {members}");
    let joined_ctx = n2.meroctl_json(&["group", "join-context", &ctx]);
    assert_eq!(joined_ctx["contextId"], ctx.as_str(), "{joined_ctx}");

    let caps = n1.meroctl_json(&["group", "members", "set-caps", &ns, &member, "6"]);
    assert_eq!(
        caps,
        json!({"groupId": ns, "member": member, "capabilities": 6})
    );
    for printed in [
        &apps,
        &contexts,
        &namespaces,
        &info,
        &invite,
        &joined,
        &caps,
    ] {
        assert!(printed.get("data").is_none(), "an envelope: {printed}");
    }
}

/// Posts `invitation` to `node`'s join of `ns`; asserts that it is refused
/// with `status` and an error of type `kind`.
fn join_fails(node: &TestNode, ns: &str, invitation: &Value, status: u16, kind: &str) {
    let (got, v) = node.request(
        "POST",
        &format!("/admin-api/namespaces/{ns}/join"),
        Some(&json!({ "invitation": invitation }).to_string()),
    );
    assert_eq!((got, v["type"].as_str()), (status, Some(kind)), "{v}");
}

#[test]
fn bad_invitations_are_refused_and_change_nothing() {
    // The inviter's invitations last ten minutes unless it says otherwise.
    let mut ns_nodes = [
        TestNode::start_with(
            "node1",
            &[FAST_SYNC, &["membership.invitation_ttl_secs=600"]].concat(),
        ),
        TestNode::start_with("node2", FAST_SYNC),
    ];
    let (app, ns, _) = ns_nodes[0].setup(mero_fixtures::KV_STORE);
    let other_ns =
        ns_nodes[0].meroctl_json(&["namespace", "create", "--application-id", &app])["namespaceId"]
            .as_str()
            .unwrap()
            .to_string();
    let printed: Value = serde_json::from_str(&ns_nodes[0].invite(&ns, &[])).unwrap();
    let good = printed["invitation"].clone();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires = good["invitation"]["expiration_timestamp"].as_u64().unwrap();
    assert!(expires > now && expires <= now + 600, "{expires} vs {now}");
    let n2 = &ns_nodes[1];

    // Not JSON at all: meroctl says so and sends nothing.
    n2.meroctl_fails(&["namespace", "join", &ns, "{not json"], "must be JSON");

    // Malformed: not an invitation.
    join_fails(n2, &ns, &json!({"hello": 1}), 400, "InvalidInvitation");

    // For another namespace.
    join_fails(n2, &other_ns, &good, 400, "InvitationMismatch");

    // Tampered: a member promotes itself to admin.
    let mut tampered = good.clone();
    tampered["invitation"]["invited_role"] = json!(0);
    join_fails(n2, &ns, &tampered, 403, "InvalidInvitation");

    // Forged: a signature that is not the inviter's.
    let mut forged = good.clone();
    let sig = forged["inviter_signature"].as_str().unwrap().to_string();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    forged["inviter_signature"] = json!(format!("{flipped}{}", &sig[1..]));
    join_fails(n2, &ns, &forged, 403, "InvalidInvitation");

    // Valid for more seconds than the clock can count: it saturates, and
    // the node goes on.
    let forever: Value = serde_json::from_str(
        &ns_nodes[0].invite(&ns, &["--expiration-timestamp", &u64::MAX.to_string()]),
    )
    .unwrap();
    assert_eq!(
        forever["invitation"]["invitation"]["expiration_timestamp"],
        json!(u64::MAX)
    );

    // Expired: valid for one second; wait until the clock is past it.
    let short: Value =
        serde_json::from_str(&ns_nodes[0].invite(&ns, &["--expiration-timestamp", "1"])).unwrap();
    let short = short["invitation"].clone();
    let expiry = short["invitation"]["expiration_timestamp"]
        .as_u64()
        .unwrap();
    wait_until("the invitation to expire", Duration::from_secs(10), || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            > expiry
    });
    join_fails(n2, &ns, &short, 403, "InvitationExpired");

    // Nothing changed anywhere.
    let (_, listed) = n2.request("GET", "/admin-api/namespaces", None);
    assert_eq!(listed["data"], json!([]));
    let (_, members) = ns_nodes[0].request("GET", &format!("/admin-api/groups/{ns}/members"), None);
    assert_eq!(members["members"].as_array().unwrap().len(), 1);

    // A valid invitation whose inviter is down: a clear 504, nothing joined.
    ns_nodes[0].kill();
    join_fails(&ns_nodes[1], &ns, &good, 504, "MembersUnreachable");
    let (_, listed) = ns_nodes[1].request("GET", "/admin-api/namespaces", None);
    assert_eq!(listed["data"], json!([]));
}

#[test]
fn private_storage_never_leaves_its_node() {
    let ns_nodes = nodes(2);
    let [n1, n2] = [&ns_nodes[0], &ns_nodes[1]];
    let (_, ns, ctx) = n1.setup_with(mero_fixtures::TASK_BOARD, Some(r#"{"title":"team"}"#));
    n1.call(&ctx, "save_draft", json!({"text": "node1's secret"}));
    n1.call(
        &ctx,
        "add_task",
        json!({"id": "t1", "title": "ship", "column": "todo"}),
    );

    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    // node2 holds node1's board (by snapshot) but not node1's draft: read
    // before node2 writes one of its own, so a leak could not be hidden.
    wait_until("node2 to hold node1's board", CONVERGE, || {
        n2.call(&ctx, "board", json!({}))
            .to_string()
            .contains("ship")
    });
    assert_eq!(n2.call(&ctx, "draft", json!({})), json!(null));
    n2.call(&ctx, "save_draft", json!({"text": "node2's own"}));
    n2.call(
        &ctx,
        "add_task",
        json!({"id": "t2", "title": "test", "column": "todo"}),
    );
    assert_converged(&[n1, n2], &ctx);
    // Shared state is shared; each node keeps its own draft.
    assert_eq!(
        n1.call(&ctx, "board", json!({})),
        n2.call(&ctx, "board", json!({}))
    );
    assert_eq!(n1.call(&ctx, "draft", json!({})), json!("node1's secret"));
    assert_eq!(n2.call(&ctx, "draft", json!({})), json!("node2's own"));
}

/// A delta too large to gossip (over 1 MiB) is announced, not flooded:
/// what the writer gossips stays small, and the member fetches the delta
/// on the announcement, with its anti-entropy timer at ten minutes. The
/// large write comes last, so no later delta's missing parent fetches it.
#[test]
fn a_large_delta_is_announced_and_fetched_not_flooded() {
    const SLOW_SYNC: &[&str] = &["sync.frequency_ms=600000"];
    let n1 = TestNode::start_with("node1", SLOW_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::MISBEHAVE);
    let n2 = TestNode::start_with("node2", SLOW_SYNC);
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    assert_converged(&[&n1, &n2], &ctx);
    let ctx_id = mero_crdt::ContextId(bs58::decode(&ctx).into_vec().unwrap().try_into().unwrap());
    let topic = mero_node::sync::context_topic(&ctx_id);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sizes = rt.block_on(async {
        let keypair = mero_network::Keypair::generate_ed25519();
        let (net, mut events, peer) =
            spy::connect(mero_network::NetworkConfig::new(keypair), &n1).await;
        spy::on_topic(&net, &topic, peer).await;
        tokio::task::block_in_place(|| {
            n1.call(&ctx, "set", json!({"key": "small", "value": "v"}));
            n1.call(&ctx, "big_value", json!({"bytes": 3_000_000}));
        });
        // One message per write: the small delta, then the announcement.
        let mut sizes = Vec::new();
        for _ in 0..2 {
            sizes.push(spy::overhear(&mut events, &topic, Some(peer)).await.len());
        }
        net.shutdown().await;
        sizes
    });
    assert!(
        sizes.iter().all(|s| *s < 64 << 10),
        "gossiped {sizes:?} bytes"
    );
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(
        n2.call(&ctx, "get", json!({"key": "small"})),
        json!("v"),
        "the small write before it"
    );
}
