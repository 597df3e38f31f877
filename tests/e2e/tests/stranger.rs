//! The review's stranger (§3.3), against a member with another member
//! beside it: six concurrent 200 MiB requests, three 100 MiB gossip frames
//! and 23 junk gossip messages must cost the member under 50 MB of memory and under 100 lines of log,
//! and the junk must not reach the other member either (#19 item 5). Its
//! deltas are refused even when they decode (members seal what they
//! gossip), and so are bytes it claims to have sealed.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::node::{CONVERGE, FAST_SYNC, TestNode, assert_converged};
use mero_testkit::poll::poll;
use mero_testkit::proc::{Peak, status_kib};
use mero_testkit::spy;
use serde_json::json;

/// A delta with no ops by an author that is no member, unsigned: it
/// decodes, so only the sender being a stranger gets it refused.
fn marker(ctx: mero_crdt::ContextId) -> Vec<u8> {
    let delta = mero_crdt::Delta {
        version: 1,
        context: ctx,
        author: mero_crdt::Author([7; 32]),
        parents: vec![],
        governance: vec![],
        layout: 0,
        hlc: mero_crdt::Hlc {
            millis: mero_crdt::hlc::wall_millis(),
            counter: 0,
        },
        ops: vec![],
        events: vec![],
    };
    mero_crdt::SignedDelta {
        delta,
        signature: [0; 64],
        proof: mero_crdt::BatchProof::default(),
    }
    .to_bytes()
}

/// Gossip messages `n` refused before passing them on, since it started.
fn refused_gossip(n: &TestNode) -> u64 {
    let (_, info) = n.request("GET", "/admin-api/node-info", None);
    info["data"]["refusedGossip"].as_u64().unwrap()
}

#[test]
fn a_strangers_big_requests_and_junk_gossip_cost_a_member_little() {
    let n1 = TestNode::start_with("n1", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    let n2 = TestNode::start_with("n2", FAST_SYNC);
    let invitation = n1.invite(&ns, &[]);
    n2.join(&ns, &invitation, &ctx);
    n1.call(&ctx, "set", json!({"key": "k", "value": "v"}));
    assert_converged(&[&n1, &n2], &ctx);

    let ctx_id = mero_crdt::ContextId(bs58::decode(&ctx).into_vec().unwrap().try_into().unwrap());
    let ns_id: [u8; 32] = hex::decode(&ns).unwrap().try_into().unwrap();
    let topic = mero_node::sync::context_topic(&ctx_id);
    let lines = |n: &TestNode| n.log().lines().count();
    let (n1_lines, n2_lines) = (lines(&n1), lines(&n2));
    let before = status_kib(n1.pid(), "VmRSS:");
    let peak = Peak::watch(n1.pid(), "VmRSS:");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // A stranger: its own key, never invited, allowed to send as much as
        // a member may.
        let keypair = mero_network::Keypair::generate_ed25519();
        let mut config = mero_network::NetworkConfig::new(keypair);
        config.max_message_bytes = (256 << 20) + 1024;
        let (net, _events, peer) = spy::connect(config.clone(), &n1).await;
        spy::on_topic(&net, &topic, peer).await;

        // Another stranger's three 100 MiB gossip frames: refused as they
        // are read (its gossip stream with them), not buffered.
        config.keypair = mero_network::Keypair::generate_ed25519();
        config.max_gossip_bytes = 256 << 20;
        let (big, _big_events, _) = spy::connect(config, &n1).await;
        spy::on_topic(&big, &topic, peer).await;
        for i in 0..3u8 {
            big.publish(&topic, vec![i; 100 << 20]).await.unwrap();
        }

        // Six concurrent 200 MiB requests, and one of 1 MiB: over what a
        // stranger may send, under what a member may.
        let asks = (0..6).map(|_| net.request(peer, vec![0; 200 << 20]));
        for answer in futures::future::join_all(asks).await {
            assert!(answer.is_err(), "a stranger's 200 MiB request was answered");
        }
        assert!(
            net.request(peer, vec![0; 1 << 20]).await.is_err(),
            "a stranger's 1 MiB request was answered"
        );

        // Twenty messages of 5000 undecodable entries each, then a delta
        // that decodes: refused too, for its sender is a stranger (members
        // seal theirs). Once n1 has refused all 21, the junk was dealt with.
        for i in 0..20u32 {
            let entries = (0..5000u32).map(|j| (i * 5000 + j).to_le_bytes().to_vec());
            let junk = mero_node::sync::Gossip::Deltas(entries.collect());
            net.publish(&topic, borsh::to_vec(&junk).unwrap())
                .await
                .unwrap();
        }
        let mark = mero_node::sync::Gossip::Deltas(vec![marker(ctx_id)]);
        net.publish(&topic, borsh::to_vec(&mark).unwrap())
            .await
            .unwrap();
        // Sealed bytes it made up: under the context's namespace at the key
        // epoch members use (n1 holds that key, and it does not open them),
        // and under a namespace nobody holds.
        for (group, epoch) in [(ns_id, 0), ([9; 32], 0)] {
            let sealed = mero_node::sync::Gossip::Sealed(mero_node::keys::Sealed {
                namespace: group,
                epoch,
                nonce: [1; 12],
                ciphertext: vec![0xAB; 64 << 10],
            });
            net.publish(&topic, borsh::to_vec(&sealed).unwrap())
                .await
                .unwrap();
        }
        tokio::task::block_in_place(|| {
            assert!(
                poll(CONVERGE, || (refused_gossip(&n1) >= 23).then_some(())).is_some(),
                "n1 refused {} of the stranger's 23 messages:\n{}",
                refused_gossip(&n1),
                n1.log()
            );
        });
        net.shutdown().await;
        big.shutdown().await;
    });
    let peak = peak.finish();
    // Nothing of it was passed on (n2 would have refused it too), nor
    // judged as a delta on either node.
    assert_eq!(refused_gossip(&n2), 0, "n1 passed the stranger's gossip on");
    for n in [&n1, &n2] {
        assert!(
            !n.log().contains("delta rejected"),
            "a stranger's delta was judged:\n{}",
            n.log()
        );
    }

    let grew_mb = peak.saturating_sub(before) / 1024;
    let (n1_new, n2_new) = (lines(&n1) - n1_lines, lines(&n2) - n2_lines);
    println!(
        "n1 RSS {before} kB -> peak {peak} kB (+{grew_mb} MB); log +{n1_new} lines, n2 +{n2_new}"
    );
    assert!(grew_mb < 50, "n1's RSS grew by {grew_mb} MB");
    assert!(n1_new < 100, "n1 logged {n1_new} lines:\n{}", n1.log());
    assert!(n2_new < 100, "n2 logged {n2_new} lines:\n{}", n2.log());
    // And both still serve.
    n1.call(&ctx, "set", json!({"key": "after", "value": "ok"}));
    assert_converged(&[&n1, &n2], &ctx);
}
