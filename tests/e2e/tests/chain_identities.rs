//! Chain identities on two real nodes (issue #23): node2's member proves an
//! Ethereum account with meroctl (`chain-challenge`, then `prove-chain`
//! with a `personal_sign` signature); node1 verifies the op itself and
//! lists the identity, and the app reads it in node2's calls. Forged and
//! replayed proofs are refused and change nothing. An invitation bound to
//! an account admits only a joiner proving it. Waits poll with a timeout.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_node::mero_chains::{Chain, Challenge, Scope, signer};
use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode};
use mero_testkit::wait_until;
use serde_json::Value;

const SECRET: [u8; 32] = [0x11; 32];

/// The challenge as the node printed it, rebuilt to be signed.
fn challenge(printed: &Value, ns: &str) -> Challenge {
    let bytes = |v: &Value| -> [u8; 32] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let c = Challenge {
        scope: Scope::Namespace(bytes(&Value::String(ns.into()))),
        member: bytes(&printed["member"]),
        chain: Chain::Ethereum,
        account: printed["account"].as_str().unwrap().into(),
        nonce: bytes(&printed["nonce"]),
        expires: printed["expires"].as_u64().unwrap(),
    };
    // What we sign is what the node asked for.
    assert_eq!(c.message(), printed["message"].as_str().unwrap());
    c
}

fn identities(node: &TestNode, ns: &str) -> Vec<Value> {
    let (status, v) = node.request(
        "GET",
        &format!("/admin-api/namespaces/{ns}/chain-identities"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v["data"]["identities"].as_array().unwrap().clone()
}

/// What the app reads in a call by `node`'s member
/// (`env::chain_identities()`, through the task board's view).
fn app_sees(node: &TestNode, ctx: &str) -> Vec<Value> {
    node.call(ctx, "my_chain_accounts", serde_json::json!({}))
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_member_proves_an_ethereum_account_and_every_node_verifies_it() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_app, ns, ctx) = n1.setup_with(mero_fixtures::TASK_BOARD, Some(r#"{"title":"t"}"#));
    let me = n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    assert!(app_sees(&n2, &ctx).is_empty(), "nothing proven yet");

    let address = signer::ethereum_address(&SECRET).unwrap();
    let printed = n2.meroctl_json(&[
        "namespace",
        "chain-challenge",
        &ns,
        "--chain",
        "ethereum",
        "--account",
        &address.to_lowercase(),
    ]);
    let c = challenge(&printed, &ns);
    assert_eq!(c.member.to_vec(), hex::decode(&me).unwrap());
    let signature = format!("0x{}", hex::encode(signer::ethereum(&SECRET, &c).unwrap()));

    // Forged: a flipped bit is refused and records nothing.
    let mut forged = signature.clone().into_bytes();
    forged[10] = if forged[10] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let prove = |sig: &str| {
        vec![
            "namespace".to_string(),
            "prove-chain".into(),
            ns.clone(),
            "--chain".into(),
            "ethereum".into(),
            "--account".into(),
            address.clone(),
            "--signature".into(),
            sig.to_string(),
        ]
    };
    let args = prove(&forged);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    n2.meroctl_fails(&args, "chain identity proof refused");
    assert!(identities(&n2, &ns).is_empty());

    let args = prove(&signature);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proven = n2.meroctl_json(&args);
    assert_eq!(proven["account"], address.as_str());
    assert_eq!(proven["onChain"], "verified");

    // node1 folds node2's op, verifying the signature itself.
    wait_until("node1 to learn node2's chain identity", CONVERGE, || {
        !identities(&n1, &ns).is_empty()
    });
    let seen = identities(&n1, &ns);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["member"], me.as_str());
    assert_eq!(seen[0]["account"], address.as_str());
    let members = n1.meroctl_ok(&["group", "members", "ls", &ns]);
    assert!(members.contains("Chain Identity"), "{members}");
    assert!(
        members.contains(&format!("ethereum:{address}")),
        "{members}"
    );

    // The app reads the executing member's proven account; node1's member
    // proved none.
    let seen = app_sees(&n2, &ctx);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["chain"], "ethereum");
    assert_eq!(seen[0]["account"], address.as_str());
    assert_eq!(seen[0]["verifiedOnChain"], true);
    assert!(app_sees(&n1, &ctx).is_empty());

    // Replayed: the same signature again is refused (its nonce is spent).
    n2.meroctl_fails(&args, "replayed");
    assert_eq!(identities(&n2, &ns).len(), 1);
}

#[test]
fn namespaces_and_contexts_record_their_protocol_in_governance() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (app, _, _) = n1.setup(mero_fixtures::KV_STORE);

    let made = n1.meroctl_json(&["namespace", "create", "-a", &app, "--protocol", "stellar"]);
    let ns = made["namespaceId"].as_str().unwrap().to_string();
    let first = made["contextId"].as_str().unwrap().to_string();
    let near = n1.meroctl_json(&[
        "context",
        "create",
        "-a",
        &app,
        "--group-id",
        &ns,
        "--protocol",
        "near",
    ])["contextId"]
        .as_str()
        .unwrap()
        .to_string();

    // The first context inherits the namespace's; the other has its own.
    let got = n1.meroctl_json(&["context", "get", &near]);
    assert_eq!(got["protocol"], "near", "{got}");
    let got = n1.meroctl_json(&["context", "get", &first]);
    assert_eq!(got["protocol"], "stellar", "{got}");
    let table = n1.meroctl_ok(&["context", "ls"]);
    assert!(
        table.contains("Protocol") && table.contains("near"),
        "{table}"
    );

    // Set once: a change is refused.
    let (status, v) = n1.request(
        "PUT",
        &format!("/admin-api/namespaces/{ns}/protocol"),
        Some(r#"{"protocol":"icp"}"#),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = n1.request(
        "PUT",
        &format!("/admin-api/contexts/{near}/protocol"),
        Some(r#"{"protocol":"bitcoin"}"#),
    );
    assert_eq!(
        (status, v["type"].as_str()),
        (400, Some("InvalidProtocol")),
        "{v}"
    );

    // Another member's node folds the same governance.
    n2.meroctl_json(&["namespace", "join", &ns, &n1.invite(&ns, &[])]);
    wait_until("node2 to learn the protocols", CONVERGE, || {
        let (_, v) = n2.request("GET", "/admin-api/protocols", None);
        v["data"]["contexts"][&near] == "near" && v["data"]["namespaces"][&ns] == "stellar"
    });
}

/// `namespace invite --chain-account ethereum:0x…` binds the invitation to
/// an account: node2 asks its own node for the challenge (it is not a
/// member yet), signs it with the account's key and joins with the
/// signature; node1, admitting it, and node2, folding the log, both verify
/// the proof. No proof, or another key's, is refused and node2 stays out;
/// the proof's nonce is spent, so the same signature cannot prove again.
#[test]
fn an_invitation_bound_to_an_ethereum_account_admits_only_its_holder() {
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_app, ns, _ctx) = n1.setup(mero_fixtures::KV_STORE);
    let address = signer::ethereum_address(&SECRET).unwrap();
    let invitation = n1.invite(
        &ns,
        &[
            "--chain-account",
            &format!("ethereum:{}", address.to_lowercase()),
        ],
    );
    let parsed: Value = serde_json::from_str(&invitation).unwrap();
    assert_eq!(
        parsed["invitation"]["conditions"][0]["account"],
        address.as_str(),
        "{parsed}"
    );
    let members = |n: &TestNode| {
        let (status, v) = n.request("GET", &format!("/admin-api/groups/{ns}/members"), None);
        assert_eq!(status, 200, "{v}");
        v["members"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(members(&n1), 1);

    // No proof: refused before node1 is asked, saying which account.
    let err = n2.meroctl_fails(
        &["namespace", "join", &ns, &invitation],
        "ChainProofRequired",
    );
    assert!(err.contains(&format!("ethereum:{address}")), "{err}");

    let printed = n2.meroctl_json(&[
        "namespace",
        "chain-challenge",
        &ns,
        "--chain",
        "ethereum",
        "--account",
        &address,
    ]);
    let c = challenge(&printed, &ns);
    let join = |sig: &str| {
        vec![
            "namespace".to_string(),
            "join".into(),
            ns.clone(),
            invitation.clone(),
            "--chain-signature".into(),
            sig.to_string(),
        ]
    };

    // Another key's signature (its address is not the bound one).
    let other = format!(
        "0x{}",
        hex::encode(signer::ethereum(&[0x22; 32], &c).unwrap())
    );
    let args = join(&other);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    n2.meroctl_fails(&args, "ChainProofForged");
    assert_eq!(members(&n1), 1, "a refused join admits nobody");

    let signature = format!("0x{}", hex::encode(signer::ethereum(&SECRET, &c).unwrap()));
    let args = join(&signature);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let joined = n2.meroctl_json(&args);
    let me = joined["memberAccount"].as_str().unwrap().to_string();
    assert_eq!(members(&n1), 2);
    // Both nodes hold the proven account as node2's identity.
    for n in [&n1, &n2] {
        wait_until("the joiner's chain identity", CONVERGE, || {
            identities(n, &ns)
                .iter()
                .any(|i| i["member"] == me.as_str() && i["account"] == address.as_str())
        });
    }

    // Its nonce is spent: the same signature does not prove again.
    n2.meroctl_fails(
        &[
            "namespace",
            "prove-chain",
            &ns,
            "--chain",
            "ethereum",
            "--account",
            &address,
            "--signature",
            &signature,
        ],
        "replayed",
    );
}
