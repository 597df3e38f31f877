//! The HTTP side's limits hold against a real node: a flood of half-open
//! sockets (the review's 600) neither exhausts the node's descriptors nor
//! locks out a real client, live WebSockets count toward the connection
//! cap, and a WebSocket flooding large calls it never reads the answers of
//! leaves the node answering, and 30 concurrent 9 MB writes keep a node's
//! and its member's heaps under 500 MB. Figures (RSS, latency) belong to
//! benches; these only check that the node still answers within a
//! generous deadline, that its descriptors stay bounded, and that bound.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::io::Write as _;
use std::time::Duration;

use futures::SinkExt as _;
use mero_testkit::node::{TestNode, assert_converged_within};
use mero_testkit::proc::{Peak, status_kib};
use serde_json::json;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn health_answers(node: &TestNode) -> bool {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(node.url("/admin-api/health"))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

#[test]
fn half_open_sockets_neither_exhaust_descriptors_nor_lock_out_clients() {
    let node = TestNode::start_with("node1", &["server.limits.max_connections=100"]);
    let before = open_fds(node.pid());
    let mut sockets = Vec::new();
    for _ in 0..600 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", node.port)).unwrap();
        // A request head that never ends.
        s.write_all(b"POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
            .unwrap();
        sockets.push(s);
    }
    for _ in 0..3 {
        assert!(
            health_answers(&node),
            "health did not answer:\n{}",
            node.log()
        );
    }
    let fds = open_fds(node.pid());
    assert!(
        fds < before + 100 + 20,
        "the node holds {fds} descriptors ({before} before the flood)"
    );
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    node.call(&ctx, "set", json!({"key": "k", "value": "v"}));
    drop(sockets);
}

/// An upgraded WebSocket keeps its connection's place under
/// `max_connections`: past the cap no more open and a new connection is
/// refused while they live; once one closes, the node serves again. (The
/// harness's own client may keep one connection alive, so the count is a
/// bound, not exact.)
#[test]
fn live_websockets_count_toward_the_connection_cap() {
    const CAP: usize = 4;
    let node = TestNode::start_with("node1", &["server.limits.max_connections=4"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut sockets = rt.block_on(async {
        let mut open = Vec::new();
        for _ in 0..2 * CAP {
            let upgrade = tokio_tungstenite::connect_async(node.ws_url());
            match tokio::time::timeout(Duration::from_secs(30), upgrade).await {
                Ok(Ok((ws, _))) => open.push(ws),
                _ => break,
            }
        }
        open
    });
    assert!(
        (CAP - 1..=CAP).contains(&sockets.len()),
        "{} WebSockets opened under a cap of {CAP} connections",
        sockets.len()
    );
    assert!(
        !health_answers(&node),
        "a connection past the cap was served while every WebSocket lives"
    );
    let mut closing = sockets.pop().unwrap();
    rt.block_on(closing.close(None)).unwrap();
    let served = mero_testkit::poll::poll(Duration::from_secs(30), || {
        health_answers(&node).then_some(())
    });
    assert!(
        served.is_some(),
        "the node did not serve again after a WebSocket closed:\n{}",
        node.log()
    );
    drop(sockets);
}

/// Eight `spin` calls (two seconds each, one after another: a context
/// runs one call at a time) fill the socket's in-flight cap; until the
/// first of them ends, the node stops reading the socket, so the flood
/// behind them stays in TCP buffers instead of the node's memory, and our
/// sends block. Without the cap the node reads all 400 (360 MB) at once.
/// (Once a spin ends, the large calls behind it run at once, beside the
/// spinning context, so the window is the first spin's two seconds.)
#[test]
fn a_websocket_flooding_calls_is_held_back_and_the_node_keeps_answering() {
    let node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    let (_, _, spin_ctx) = node.setup(mero_fixtures::MISBEHAVE);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let value = "x".repeat(900_000);
    let (ws, sent) = rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(node.ws_url()).await.unwrap();
        let text = |v: serde_json::Value| tokio_tungstenite::tungstenite::Message::Text(v.to_string().into());
        for i in 0..8 {
            let spin = json!({"id": 10_000 + i, "method": "execute",
                "params": {"contextId": spin_ctx, "method": "spin", "argsJson": {}}});
            ws.send(text(spin)).await.unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        let mut sent = 0;
        for i in 0..400 {
            let req = json!({"id": i, "method": "execute", "params": {"contextId": ctx,
                "method": "update_if_exists", "argsJson": {"key": format!("k{i}"), "value": value}}});
            if tokio::time::timeout_at(deadline, ws.send(text(req))).await.is_err() {
                break;
            }
            sent += 1;
        }
        (ws, sent)
    });
    assert!(
        sent < 100,
        "the node read {sent} of 400 large calls behind a full cap"
    );
    assert!(
        health_answers(&node),
        "health did not answer:\n{}",
        node.log()
    );
    drop(ws);
    assert_eq!(
        node.call(&ctx, "get", json!({"key": "absent"})),
        serde_json::Value::Null
    );
}

/// The review's big writes (security review §3.2): 30 clients at once each
/// store a 9 MB value, on a node with a member beside it. Neither node's
/// heap (`RssAnon`, sampled) may reach 500 MB at any point, and the member
/// ends with the same state. Total RSS adds LMDB's file pages, which the
/// kernel takes back under pressure; `mero-big-writes` prints both.
#[test]
fn thirty_concurrent_9_mb_writes_keep_the_writer_and_its_member_under_500_mb() {
    const MB_500_IN_KIB: u64 = 500_000_000 / 1024;
    let n1 = TestNode::start("node1");
    let (_, ns, ctx) = n1.setup(mero_fixtures::MISBEHAVE);
    let n2 = TestNode::start("node2");
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    let heaps = [
        Peak::watch(n1.pid(), "RssAnon:"),
        Peak::watch(n2.pid(), "RssAnon:"),
    ];
    let ok = n1.calls_at_once(&ctx, "big_value", &json!({"bytes": 9_000_000}), 30);
    assert_eq!(ok, 30, "every write is answered");
    assert_converged_within(&[&n1, &n2], &ctx, Duration::from_secs(300));
    for ((name, n), heap) in [("node1", &n1), ("node2", &n2)].into_iter().zip(heaps) {
        let (heap, rss) = (heap.finish(), status_kib(n.pid(), "VmHWM:"));
        println!(
            "{name}: heap peak {} MiB, RSS peak {} MiB",
            heap / 1024,
            rss / 1024
        );
        assert!(
            heap < MB_500_IN_KIB,
            "{name}'s heap peaked at {} MiB",
            heap / 1024
        );
    }
}
