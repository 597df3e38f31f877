//! The Ethereum relayer against a real chain (issue #23): Hardhat Network
//! on 127.0.0.1 (`tests/chain`, `npm ci` there first), a test ERC-20
//! deployed by the test, a real merod with `[chains.ethereum] rpc_url`
//! driven by meroctl. Balances agree with the chain at the block the node
//! names; a transfer shows in the token balance; attestations are signed
//! claims that verify, and a tampered one does not; chains without a
//! relayer, and a node without one configured, say so.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::chain::LocalChain;
use mero_testkit::node::TestNode;
use serde_json::{Value, json};

fn balance(node: &TestNode, account: &str, token: Option<&str>) -> Value {
    let mut args = vec![
        "chain",
        "balance",
        "--chain",
        "ethereum",
        "--account",
        account,
    ];
    if let Some(t) = token {
        args.extend(["--token-address", t]);
    }
    node.meroctl_json(&args)
}

fn attest(node: &TestNode, account: &str, token: &str, at_least: &str) -> Value {
    node.meroctl_json(&[
        "chain",
        "attest",
        "--chain",
        "ethereum",
        "--account",
        account,
        "--token-address",
        token,
        "--at-least",
        at_least,
    ])
}

#[test]
fn balances_token_balances_and_attestations_from_a_real_local_chain() {
    let chain = LocalChain::start();
    let accounts = chain.accounts();
    let (owner, holder, stranger) = (&accounts[0], &accounts[1], &accounts[2]);
    let token = chain.deploy_token(owner, 1_000_000);
    let rpc = format!("chains.ethereum.rpc_url={}", chain.url);
    let node = TestNode::start_with("node1", &[&rpc]);

    // The native balance, as the chain says at the block the node names.
    let b = balance(&node, holder, None);
    assert_eq!(b["network"], "eip155:31337", "{b}");
    let block = format!("0x{:x}", b["blockNumber"].as_u64().unwrap());
    let direct = chain.call("eth_getBalance", json!([holder, block]));
    let direct = u128::from_str_radix(direct.as_str().unwrap().trim_start_matches("0x"), 16);
    assert_eq!(b["balance"], direct.unwrap().to_string(), "{b}");
    let hash = chain.call("eth_getBlockByNumber", json!([block, false]))["hash"].clone();
    assert_eq!(b["blockHash"], hash, "{b}");
    // Canonical (EIP-55) account in the answer.
    assert_ne!(b["account"].as_str().unwrap(), holder.as_str());
    assert_eq!(b["account"].as_str().unwrap().to_lowercase(), *holder);

    // Token balances: nothing, then what a transfer moved.
    let before = balance(&node, holder, Some(&token));
    assert_eq!(before["balance"], "0", "{before}");
    assert_eq!(balance(&node, owner, Some(&token))["balance"], "1000000");
    chain.transfer_token(&token, owner, holder, 250);
    let after = balance(&node, holder, Some(&token));
    assert_eq!(after["balance"], "250", "{after}");
    assert!(after["blockNumber"].as_u64() > before["blockNumber"].as_u64());
    assert_eq!(balance(&node, owner, Some(&token))["balance"], "999750");

    // An attestation that the holder holds at least 100: signed, verified.
    let a = attest(&node, holder, &token, "100");
    assert_eq!(a["holds"], true, "{a}");
    assert_eq!(a["observed"], "250", "{a}");
    assert_eq!(a["statement"]["kind"], "tokenBalance", "{a}");
    assert_eq!(a["statement"]["atLeast"], "100", "{a}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attestation.json");
    std::fs::write(&file, a.to_string()).unwrap();
    let v = node.meroctl_json(&["chain", "verify-attestation", file.to_str().unwrap()]);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["holds"], true, "{v}");
    assert_eq!(v["attestedBy"], a["attestedBy"], "{v}");

    // Tampered: the stranger's account put in the holder's claim.
    let mut forged = a.clone();
    forged["statement"]["account"] = json!(stranger);
    std::fs::write(&file, forged.to_string()).unwrap();
    node.meroctl_fails(
        &["chain", "verify-attestation", file.to_str().unwrap()],
        "attestation refused: the signature is not the attesting node's",
    );

    // The stranger holds none: a signed claim that it does not hold.
    let n = attest(&node, stranger, &token, "100");
    assert_eq!(n["holds"], false, "{n}");
    assert_eq!(n["observed"], "0", "{n}");

    // Bad input is a clear error.
    node.meroctl_fails(
        &[
            "chain",
            "balance",
            "--chain",
            "ethereum",
            "--account",
            "0x12",
        ],
        "is not an Ethereum address",
    );
    node.meroctl_fails(
        &[
            "chain",
            "attest",
            "--chain",
            "ethereum",
            "--account",
            holder,
            "--token-address",
            &token,
            "--at-least",
            "1.5",
        ],
        "is not an amount",
    );
    // A token address without a contract.
    node.meroctl_fails(
        &[
            "chain",
            "balance",
            "--chain",
            "ethereum",
            "--account",
            holder,
            "--token-address",
            stranger,
        ],
        "has no contract",
    );
    // Chains without a relayer in this build say so.
    for other in ["near", "icp", "stellar"] {
        node.meroctl_fails(
            &["chain", "balance", "--chain", other, "--account", "x"],
            &format!("no relayer for {other} in this build"),
        );
    }

    // A node without [chains.ethereum] says how to configure one.
    let bare = TestNode::start("node2");
    bare.meroctl_fails(
        &[
            "chain",
            "balance",
            "--chain",
            "ethereum",
            "--account",
            holder,
        ],
        "set [chains.ethereum] rpc_url in its config.toml",
    );
    // It still verifies another node's attestation: a signature check.
    std::fs::write(&file, a.to_string()).unwrap();
    let v = bare.meroctl_json(&["chain", "verify-attestation", file.to_str().unwrap()]);
    assert_eq!(v["valid"], true, "{v}");

    // The chain going away is an error naming the endpoint, not a hang.
    drop(chain);
    node.meroctl_fails(
        &[
            "chain",
            "balance",
            "--chain",
            "ethereum",
            "--account",
            holder,
        ],
        "RPC endpoint http://127.0.0.1:",
    );
}

/// The challenge node `n` prints for `account` (it need not be a member),
/// rebuilt and signed with `secret` (`personal_sign`).
fn signed_challenge(n: &TestNode, ns: &str, account: &str, secret: &[u8; 32]) -> String {
    use mero_node::mero_chains::{Chain, Challenge, Scope, signer};
    let printed = n.meroctl_json(&[
        "namespace",
        "chain-challenge",
        ns,
        "--chain",
        "ethereum",
        "--account",
        account,
    ]);
    let bytes = |v: &Value| -> [u8; 32] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let c = Challenge {
        scope: Scope::Namespace(bytes(&json!(ns))),
        member: bytes(&printed["member"]),
        chain: Chain::Ethereum,
        account: printed["account"].as_str().unwrap().into(),
        nonce: bytes(&printed["nonce"]),
        expires: printed["expires"].as_u64().unwrap(),
    };
    assert_eq!(c.message(), printed["message"].as_str().unwrap());
    format!("0x{}", hex::encode(signer::ethereum(secret, &c).unwrap()))
}

/// `namespace invite --chain-account ethereum:<joiner> --min-token-balance
/// ethereum:<token>:100`: node1 (with a relayer) asks the chain as it
/// admits. The holder of 250 is admitted, node1's signed attestation is in
/// governance before the join and node2 verifies and lists it; the
/// non-holder is refused saying what the chain holds, and nothing changes.
#[test]
fn an_invitation_gated_by_a_token_balance_admits_a_holder_and_refuses_a_non_holder() {
    use mero_node::mero_chains::signer;
    use mero_testkit::node::{CONVERGE, FAST_SYNC};
    use mero_testkit::wait_until;

    let chain = LocalChain::start();
    let owner = chain.accounts()[0].clone();
    let token = chain.deploy_token(&owner, 1_000_000);
    let (rich, poor) = ([0x11u8; 32], [0x33u8; 32]);
    let rich_address = signer::ethereum_address(&rich).unwrap();
    let poor_address = signer::ethereum_address(&poor).unwrap();
    chain.transfer_token(&token, &owner, &rich_address, 250);

    let rpc = format!("chains.ethereum.rpc_url={}", chain.url);
    let n1 = TestNode::start_with("node1", &[FAST_SYNC[0], &rpc]);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let n3 = TestNode::start_with("node3", FAST_SYNC);
    let (_app, ns, ctx) = n1.setup_with(mero_fixtures::TASK_BOARD, Some(r#"{"title":"t"}"#));
    let gate = format!("ethereum:{token}:100");
    let members = || {
        let (status, v) = n1.request("GET", &format!("/admin-api/groups/{ns}/members"), None);
        assert_eq!(status, 200, "{v}");
        v["members"].as_array().map_or(0, Vec::len)
    };

    // A token gate needs the account whose balance counts.
    n1.meroctl_fails(
        &["namespace", "invite", &ns, "--min-token-balance", &gate],
        "must also bind the joiner's ethereum account",
    );

    // The non-holder proves its account but holds none: refused.
    let invitation = n1.invite(
        &ns,
        &[
            "--chain-account",
            &format!("ethereum:{poor_address}"),
            "--min-token-balance",
            &gate,
        ],
    );
    let parsed: Value = serde_json::from_str(&invitation).unwrap();
    assert_eq!(
        parsed["invitation"]["conditions"][1],
        json!({"kind": "tokenBalance", "chain": "ethereum", "token": token_checksum(&token), "atLeast": "100"}),
        "{parsed}"
    );
    let sig = signed_challenge(&n3, &ns, &poor_address, &poor);
    let err = n3.meroctl_fails(
        &[
            "namespace",
            "join",
            &ns,
            &invitation,
            "--chain-signature",
            &sig,
        ],
        "TokenBalanceTooLow",
    );
    assert!(
        err.contains(&format!("{poor_address} holds 0 of ethereum token"))
            && err.contains("at least 100"),
        "{err}"
    );
    assert_eq!(members(), 1, "a refused join admits nobody");
    let (_, v) = n1.request(
        "GET",
        &format!("/admin-api/namespaces/{ns}/attestations"),
        None,
    );
    assert_eq!(v["data"]["attestations"], json!([]), "{v}");

    // The holder is admitted, on node1's attestation.
    let invitation = n1.invite(
        &ns,
        &[
            "--chain-account",
            &format!("ethereum:{rich_address}"),
            "--min-token-balance",
            &gate,
        ],
    );
    let sig = signed_challenge(&n2, &ns, &rich_address, &rich);
    n2.meroctl_json(&[
        "namespace",
        "join",
        &ns,
        &invitation,
        "--chain-signature",
        &sig,
    ]);
    assert_eq!(members(), 2);
    // node2 folded and verified the attestation; it lists it as recorded.
    let mut recorded = Value::Null;
    wait_until("node2 to hold the attestation", CONVERGE, || {
        let (_, v) = n2.request(
            "GET",
            &format!("/admin-api/namespaces/{ns}/attestations"),
            None,
        );
        recorded = v["data"]["attestations"][0].clone();
        !recorded.is_null()
    });
    assert_eq!(recorded["holds"], true, "{recorded}");
    assert_eq!(recorded["observed"], "250", "{recorded}");
    assert_eq!(
        recorded["statement"]["account"],
        rich_address.as_str(),
        "{recorded}"
    );
    assert_eq!(recorded["statement"]["atLeast"], "100", "{recorded}");
    let (status, v) = n2.request(
        "POST",
        "/admin-api/attestations/verify",
        Some(&recorded.to_string()),
    );
    assert_eq!(status, 200, "{v}");

    // The app reads it in node2's member's call (the task board's view
    // over env::chain_attestations()); node1's member proved no account,
    // so its calls see none.
    n2.meroctl_ok(&["group", "join-context", &ctx]);
    let mut seen = Value::Null;
    wait_until("node2's app to read the attestation", CONVERGE, || {
        seen = n2.call(&ctx, "my_chain_attestations", json!({}));
        seen.as_array().is_some_and(|a| !a.is_empty())
    });
    let a = &seen[0];
    assert_eq!(a["kind"], "token-balance", "{seen}");
    assert_eq!(a["account"], rich_address.as_str(), "{seen}");
    assert_eq!(a["token"], token_checksum(&token), "{seen}");
    assert_eq!(a["atLeast"], "100", "{seen}");
    assert_eq!(a["observed"], "250", "{seen}");
    assert_eq!(a["holds"], true, "{seen}");
    assert_eq!(a["attestedBy"], recorded["attestedBy"], "{seen}");
    assert_eq!(n1.call(&ctx, "my_chain_attestations", json!({})), json!([]));
    // Attested by node1, the admitting member.
    let (_, members_v) = n1.request("GET", &format!("/admin-api/groups/{ns}/members"), None);
    let admin = members_v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "Admin")
        .cloned()
        .unwrap_or_default();
    assert!(
        admin
            .to_string()
            .contains(recorded["attestedBy"].as_str().unwrap()),
        "{admin} {recorded}"
    );
}

/// The token's EIP-55 form, as the node writes it.
fn token_checksum(token: &str) -> String {
    mero_node::mero_chains::canonical_account(mero_node::mero_chains::Chain::Ethereum, token)
        .unwrap()
}
