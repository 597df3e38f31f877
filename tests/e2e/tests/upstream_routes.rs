//! The routes upstream's clients call beyond the seed's (#26 item 3), on
//! two real nodes: a group and its subgroups, the keys acting in a context
//! and this node's own, a context's storage, leaving a context on one node
//! (auto-follow does not bring it back; joining does), who the node is,
//! its network status, and the namespaces of an application. Shapes are
//! checked field by field in `wire_contract.rs`; this file checks what the
//! answers say. Waits poll with a timeout.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::poll::poll;
use serde_json::{Value, json};

fn get(node: &TestNode, path: &str) -> Value {
    let (status, v) = node.request("GET", path, None);
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

#[test]
fn groups_identities_storage_leave_and_the_node_itself() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (app, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n1.call(&ctx, "set", json!({"key": "a", "value": "1"}));
    let joined = n2.meroctl_json(&["namespace", "join", &ns, &n1.invite(&ns, &[])]);
    let key2 = joined["memberIdentity"].as_str().unwrap().to_string();
    assert_converged(&[&n1, &n2], &ctx);

    // Who each node is: one key, hex as its account, base58 as its key.
    let id1 = get(&n1, "/admin-api/identity")["data"].clone();
    let key1 = id1["publicKey"].as_str().unwrap().to_string();
    let hex1 = hex::encode(bs58::decode(&key1).into_vec().unwrap());
    assert_eq!(id1["accountId"], hex1.as_str());
    assert_eq!(id1["accountRootPublicKey"], hex1.as_str());
    let (status, generated) = n1.request("POST", "/admin-api/identity/context", None);
    assert_eq!(status, 200, "{generated}");
    assert_eq!(generated["data"]["publicKey"], key1.as_str());

    // The group: counts, the app, visibility, and one governance digest on
    // both nodes once they agree.
    let group = get(&n1, &format!("/admin-api/groups/{ns}"))["data"].clone();
    assert_eq!(group["groupId"], ns.as_str());
    assert_eq!(group["targetApplicationId"], app.as_str());
    assert_eq!(group["memberCount"], 2);
    assert_eq!(group["contextCount"], 1);
    assert_eq!(group["subgroupVisibility"], "restricted");
    let digest = |n: &TestNode| {
        get(n, &format!("/admin-api/groups/{ns}"))["data"]["groupStateHash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let agreed = poll(CONVERGE, || (digest(&n1) == digest(&n2)).then_some(()));
    assert!(agreed.is_some(), "group state hashes never agreed");

    // Subgroups: the direct children, named.
    let body = json!({"name": "team", "subgroupVisibility": "open"}).to_string();
    let (status, made) = n1.request(
        "POST",
        &format!("/admin-api/namespaces/{ns}/groups"),
        Some(&body),
    );
    assert_eq!(status, 200, "{made}");
    let sub = made["data"]["groupId"].as_str().unwrap().to_string();
    let subs = get(&n1, &format!("/admin-api/groups/{ns}/subgroups"));
    assert_eq!(
        subs,
        json!({"subgroups": [{"groupId": sub, "name": "team"}]})
    );
    assert_eq!(
        get(&n1, &format!("/admin-api/groups/{sub}/subgroups")),
        json!({"subgroups": []})
    );
    let info = get(&n1, &format!("/admin-api/groups/{sub}"))["data"].clone();
    assert_eq!(info["subgroupVisibility"], "open");
    assert_eq!(info["parentGroupId"], ns.as_str());

    // The keys acting in the context; this node's own among them.
    let ids =
        get(&n1, &format!("/admin-api/contexts/{ctx}/identities"))["data"]["identities"].clone();
    let mut ids: Vec<String> = serde_json::from_value(ids).unwrap();
    ids.sort();
    let mut both = vec![key1.clone(), key2.clone()];
    both.sort();
    assert_eq!(ids, both);
    let owned = get(&n2, &format!("/admin-api/contexts/{ctx}/identities-owned"));
    assert_eq!(owned, json!({"data": {"identities": [key2]}}));

    // Storage grows with state.
    let size = |n: &TestNode| {
        get(n, &format!("/admin-api/contexts/{ctx}/storage"))["data"]["sizeInBytes"]
            .as_u64()
            .unwrap()
    };
    let before = size(&n1);
    assert!(before > 0);
    n1.call(&ctx, "set", json!({"key": "b", "value": "x".repeat(4096)}));
    assert!(size(&n1) > before + 4096);

    // The namespaces of an application; none of another.
    let of_app = get(&n1, &format!("/admin-api/namespaces/for-application/{app}"));
    assert_eq!(of_app["data"].as_array().unwrap().len(), 1);
    assert_eq!(of_app["data"][0]["namespaceId"], ns.as_str());
    let other = bs58::encode([7u8; 32]).into_string();
    let none = get(
        &n1,
        &format!("/admin-api/namespaces/for-application/{other}"),
    );
    assert_eq!(none, json!({"data": []}));
    let page = get(
        &n1,
        &format!("/admin-api/namespaces/for-application/{app}?offset=1"),
    );
    assert_eq!(page, json!({"data": []}));

    // The swarm: this node's peer id and where it listens.
    let net = get(&n1, "/admin-api/network/status");
    let peer_id = mero_config::ConfigFile::load(&n1.dir())
        .unwrap()
        .identity
        .peer_id;
    assert_eq!(net["localPeerId"], peer_id.as_str());
    assert!(
        net["listenAddrs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("/ip4/127.0.0.1/tcp/")),
        "{net}"
    );
    assert_eq!(net["autonat"]["reachability"], "unknown");

    // Leaving on node2 only: its replica goes, node1 keeps writing, and
    // auto-follow does not bring it back while it follows what is new.
    let (status, left) = n2.request("POST", &format!("/admin-api/contexts/{ctx}/leave"), None);
    assert_eq!(status, 200, "{left}");
    assert_eq!(
        left,
        json!({"data": {"contextId": ctx, "memberPublicKey": key2}})
    );
    assert_eq!(n2.root(&ctx), None);
    n1.call(&ctx, "set", json!({"key": "c", "value": "3"}));
    let body = json!({"applicationId": app, "groupId": ns, "initializationParams": []});
    let (_, created) = n1.request("POST", "/admin-api/contexts", Some(&body.to_string()));
    let newer = created["data"]["contextId"].as_str().unwrap().to_string();
    assert_converged(&[&n1, &n2], &newer);
    assert_eq!(n2.root(&ctx), None);
    // Joining again undoes it.
    n2.meroctl_ok(&["group", "join-context", &ctx]);
    assert_converged(&[&n1, &n2], &ctx);
    assert_eq!(n2.call(&ctx, "get", json!({"key": "c"})), json!("3"));

    // Bad ids are typed errors; unknown ones 404.
    let (status, e) = n1.request("GET", "/admin-api/groups/zz", None);
    assert_eq!((status, e["type"].as_str()), (400, Some("InvalidGroupId")));
    let (status, e) = n1.request(
        "GET",
        &format!("/admin-api/groups/{}", "ab".repeat(32)),
        None,
    );
    assert_eq!((status, e["type"].as_str()), (404, Some("GroupNotFound")));
    let unknown = bs58::encode([9u8; 32]).into_string();
    for path in ["identities", "storage"] {
        let (status, e) = n1.request(
            "GET",
            &format!("/admin-api/contexts/{unknown}/{path}"),
            None,
        );
        assert_eq!(
            (status, e["type"].as_str()),
            (404, Some("ContextNotFound")),
            "{path}"
        );
    }
    let (status, e) = n1.request(
        "POST",
        &format!("/admin-api/contexts/{unknown}/leave"),
        None,
    );
    assert_eq!((status, e["type"].as_str()), (404, Some("ContextNotFound")));
    let (status, e) = n1.request("GET", "/admin-api/namespaces/for-application/nope", None);
    assert_eq!(
        (status, e["type"].as_str()),
        (400, Some("InvalidApplicationId"))
    );
}

/// `contexts/sync/{id}` asks for a round of that context (which contexts a
/// round compares is unit-tested in the replication driver); an unknown id
/// is a 404 and a malformed one a 400, not a round of everything.
#[test]
fn syncing_one_context_answers_for_its_id_and_refuses_others() {
    let n1 = TestNode::start("node1");
    let (_, _, ctx) = n1.setup(mero_fixtures::KV_STORE);
    let (status, v) = n1.request("POST", &format!("/admin-api/contexts/sync/{ctx}"), None);
    assert_eq!((status, &v), (200, &json!({"data": null})));
    let unknown = bs58::encode([9u8; 32]).into_string();
    let (status, e) = n1.request("POST", &format!("/admin-api/contexts/sync/{unknown}"), None);
    assert_eq!((status, e["type"].as_str()), (404, Some("ContextNotFound")));
    let (status, e) = n1.request("POST", "/admin-api/contexts/sync/zz", None);
    assert_eq!(status, 400, "{e}");
}

/// On two nodes with no periodic anti-entropy to speak of, asking node2 to
/// sync one of two shared contexts compares that one with node1 (its
/// `lastSyncMillis` moves) and leaves the other alone. A second ask for
/// the same context is waited for too: rounds run one after another, so
/// once it is seen, a round of every context (what this route did before)
/// would have reached the other one as well.
#[test]
fn syncing_one_context_on_two_nodes_compares_that_one_alone() {
    const RARE: &[&str] = &["sync.frequency_ms=3600000"];
    let n1 = TestNode::start_with("node1", RARE);
    let n2 = TestNode::start_with("node2", RARE);
    let (app, ns, a) = n1.setup(mero_fixtures::KV_STORE);
    n2.join(&ns, &n1.invite(&ns, &[]), &a);
    let body = json!({"applicationId": app, "groupId": ns, "initializationParams": []});
    let (status, created) = n1.request("POST", "/admin-api/contexts", Some(&body.to_string()));
    assert_eq!(status, 200, "{created}");
    let b = created["data"]["contextId"].as_str().unwrap().to_string();
    n2.meroctl_ok(&["group", "join-context", &b]);
    n1.call(&a, "set", json!({"key": "a", "value": "1"}));
    n1.call(&b, "set", json!({"key": "b", "value": "1"}));
    assert_converged(&[&n1, &n2], &a);
    assert_converged(&[&n1, &n2], &b);

    let last = |ctx: &str| {
        get(&n2, &format!("/admin-api/contexts/{ctx}"))["data"]["syncStatus"]["lastSyncMillis"]
            .clone()
    };
    let ask = |ctx: &str| {
        let before = last(ctx).as_u64().unwrap_or(0);
        let (status, v) = n2.request("POST", &format!("/admin-api/contexts/sync/{ctx}"), None);
        assert_eq!(status, 200, "{v}");
        poll(CONVERGE, || {
            (last(ctx).as_u64().unwrap_or(0) > before).then_some(())
        })
        .unwrap_or_else(|| panic!("no round of {ctx} on node2: {}", last(ctx)));
    };
    let b_before = last(&b);
    ask(&a);
    ask(&a);
    assert_eq!(last(&b), b_before, "the other context was synced too");
    // And the other way round.
    let a_before = last(&a);
    ask(&b);
    ask(&b);
    assert_eq!(last(&a), a_before, "the first context was synced too");
}
