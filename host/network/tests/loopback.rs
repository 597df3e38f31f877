//! Loopback-only integration tests: real swarms on 127.0.0.1, conditions polled with timeouts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail fast"
)]

use std::{future::Future, time::Duration};

use libp2p::multiaddr::Protocol;
use mero_network::{
    Keypair, Multiaddr, NetworkClient, NetworkConfig, NetworkError, NetworkEvent, PeerId, spawn,
};
use tokio::{sync::mpsc::Receiver, time::timeout};

const WAIT: Duration = Duration::from_secs(15);

type Node = (NetworkClient, Receiver<NetworkEvent>);

fn node_with(edit: impl FnOnce(&mut NetworkConfig)) -> Node {
    let mut config = NetworkConfig::new(Keypair::generate_ed25519());
    edit(&mut config);
    spawn(config).expect("spawn node")
}

fn node() -> Node {
    node_with(|_| {})
}

async fn addr(client: &NetworkClient) -> Multiaddr {
    client.listen_addrs().await.unwrap().remove(0)
}

/// Receives events until one matches, failing after `WAIT`.
async fn wait_event<T>(
    rx: &mut Receiver<NetworkEvent>,
    what: &str,
    mut pick: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    timeout(WAIT, async {
        loop {
            let event = rx.recv().await.expect("event channel open");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `check` every 50 ms until it returns true, failing after `WAIT`.
async fn wait_until<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    timeout(WAIT, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn wait_topic_peers(client: &NetworkClient, topic: &str, expected: &[PeerId]) {
    wait_until("topic peers", || async {
        let peers = client.topic_peers(topic).await.unwrap();
        expected.iter().all(|p| peers.contains(p))
    })
    .await;
}

fn connected(peer: PeerId) -> impl FnMut(NetworkEvent) -> Option<()> {
    move |event| matches!(event, NetworkEvent::PeerConnected(p) if p == peer).then_some(())
}

#[tokio::test]
async fn two_nodes_gossip() {
    let (a, mut a_rx) = node();
    let (b, mut b_rx) = node();

    let dialled = b.dial(addr(&a).await).await.unwrap();
    assert_eq!(dialled, a.peer_id());
    wait_event(&mut a_rx, "A sees B", connected(b.peer_id())).await;
    wait_event(&mut b_rx, "B sees A", connected(a.peer_id())).await;
    assert_eq!(a.connected_peers().await.unwrap(), vec![b.peer_id()]);

    a.subscribe("t").await.unwrap();
    b.subscribe("t").await.unwrap();
    wait_topic_peers(&a, "t", &[b.peer_id()]).await;
    wait_topic_peers(&b, "t", &[a.peer_id()]).await;

    assert!(a.publish("t", b"hello".to_vec()).await.unwrap());
    // The same bytes again are deduplicated, not an error.
    assert!(a.publish("t", b"hello".to_vec()).await.unwrap());
    let (source, topic, data) = wait_event(&mut b_rx, "gossip message", |event| match event {
        NetworkEvent::Message {
            source,
            topic,
            data,
        } => Some((source, topic, data)),
        _ => None,
    })
    .await;
    assert_eq!(source, a.peer_id());
    assert_eq!(topic, "t");
    assert_eq!(data, b"hello");

    // Dialling an address whose /p2p/ suffix names someone else fails clearly.
    let (c, _c_rx) = node();
    let wrong = addr(&c).await.with(Protocol::P2p(
        Keypair::generate_ed25519().public().to_peer_id(),
    ));
    let error = a.dial(wrong).await.unwrap_err();
    assert!(matches!(error, NetworkError::DialFailed { .. }), "{error}");
    // With the right suffix it works and reports the peer.
    let right = addr(&c).await.with(Protocol::P2p(c.peer_id()));
    assert_eq!(a.dial(right).await.unwrap(), c.peer_id());
}

#[tokio::test]
async fn request_response() {
    let (a, mut a_rx) = node_with(|c| c.request_timeout = Duration::from_secs(2));
    let (b, mut b_rx) = node();
    b.dial(addr(&a).await).await.unwrap();
    // B's dial resolves on B's side; A learns of the connection a moment later.
    wait_event(&mut a_rx, "A sees B", connected(b.peer_id())).await;

    // B answers "ping" with "pong:ping" and drops requests for "ignore" without answering.
    let responder = b.clone();
    let server = tokio::spawn(async move {
        while let Some(event) = b_rx.recv().await {
            if let NetworkEvent::Request { data, handle, .. } = event {
                if data == b"ignore" {
                    drop(handle);
                    continue;
                }
                let mut reply = b"pong:".to_vec();
                reply.extend_from_slice(&data);
                responder.respond(handle, reply).await.unwrap();
            }
        }
    });

    let response = a.request(b.peer_id(), b"ping".to_vec()).await.unwrap();
    assert_eq!(response, b"pong:ping");

    let dropped = timeout(WAIT, a.request(b.peer_id(), b"ignore".to_vec()))
        .await
        .expect("a dropped handle fails the request, not hangs it");
    assert!(dropped.is_err(), "{dropped:?}");

    let stranger = Keypair::generate_ed25519().public().to_peer_id();
    let error = timeout(WAIT, a.request(stranger, b"ping".to_vec()))
        .await
        .expect("request to an unknown peer must not hang")
        .unwrap_err();
    assert!(
        matches!(error, NetworkError::PeerUnreachable { peer } if peer == stranger),
        "{error}"
    );

    b.shutdown().await;
    server.await.unwrap();
}

#[tokio::test]
async fn gossip_is_forwarded_along_a_line() {
    let (a, _a_rx) = node();
    let (b, _b_rx) = node();
    let (c, mut c_rx) = node();
    // A - B - C: C never connects to A.
    b.dial(addr(&a).await).await.unwrap();
    c.dial(addr(&b).await).await.unwrap();
    for n in [&a, &b, &c] {
        n.subscribe("line").await.unwrap();
    }
    wait_topic_peers(&a, "line", &[b.peer_id()]).await;
    wait_topic_peers(&b, "line", &[a.peer_id(), c.peer_id()]).await;
    wait_topic_peers(&c, "line", &[b.peer_id()]).await;
    assert!(!c.connected_peers().await.unwrap().contains(&a.peer_id()));

    assert!(a.publish("line", b"from A".to_vec()).await.unwrap());
    let (source, data) = wait_event(&mut c_rx, "forwarded message", |event| match event {
        NetworkEvent::Message { source, data, .. } => Some((source, data)),
        _ => None,
    })
    .await;
    assert_eq!(source, a.peer_id(), "the author, not the forwarder");
    assert_eq!(data, b"from A");
}

#[tokio::test]
async fn loopback_only_and_lonely_publish() {
    let (a, _a_rx) = node_with(|c| c.max_gossip_bytes = 1024);
    let outside: Multiaddr = "/ip4/10.1.2.3/tcp/4001".parse().unwrap();

    let error = a.dial(outside.clone()).await.unwrap_err();
    assert!(
        matches!(error, NetworkError::NonLoopbackAddress(_)),
        "{error}"
    );
    let peer = Keypair::generate_ed25519().public().to_peer_id();
    let error = a.add_address(peer, outside.clone()).await.unwrap_err();
    assert!(
        matches!(error, NetworkError::NonLoopbackAddress(_)),
        "{error}"
    );
    let error = spawn({
        let mut config = NetworkConfig::new(Keypair::generate_ed25519());
        config.bootstrap = vec![outside];
        config
    })
    .unwrap_err();
    assert!(
        matches!(error, NetworkError::NonLoopbackAddress(_)),
        "{error}"
    );

    a.subscribe("alone").await.unwrap();
    assert!(!a.publish("alone", b"anyone?".to_vec()).await.unwrap());
    assert!(
        !a.publish("unsubscribed", b"anyone?".to_vec())
            .await
            .unwrap()
    );

    let error = a.publish("alone", vec![0; 1025]).await.unwrap_err();
    assert!(
        matches!(
            error,
            NetworkError::MessageTooLarge {
                size: 1025,
                max: 1024
            }
        ),
        "{error}"
    );

    // A connected peer that is not subscribed still means nobody to publish to.
    let (b, _b_rx) = node();
    b.dial(addr(&a).await).await.unwrap();
    assert!(!a.publish("alone", b"still alone".to_vec()).await.unwrap());
}

#[tokio::test]
async fn shutdown_stops_the_task() {
    let (a, mut a_rx) = node();
    let other = a.clone();
    a.listen_addrs().await.unwrap();
    a.shutdown().await;

    // The task is gone: its event sender is dropped, every call reports Stopped.
    timeout(WAIT, async { while a_rx.recv().await.is_some() {} })
        .await
        .expect("event channel closes");
    assert!(matches!(
        other.connected_peers().await,
        Err(NetworkError::Stopped)
    ));
    assert!(matches!(
        a.publish("t", vec![1]).await,
        Err(NetworkError::Stopped)
    ));
    assert!(matches!(a.listen_addrs().await, Err(NetworkError::Stopped)));
    a.shutdown().await; // idempotent
    assert_eq!(other.peer_id(), a.peer_id());
}

#[tokio::test]
async fn full_event_channel_drops_gossip_but_keeps_requests() {
    let (a, _a_rx) = node();
    let (b, mut b_rx) = node();
    b.dial(addr(&a).await).await.unwrap();
    a.subscribe("flood").await.unwrap();
    b.subscribe("flood").await.unwrap();
    wait_topic_peers(&a, "flood", &[b.peer_id()]).await;

    // B's node layer is not reading: more messages than the event channel holds.
    const SENT: usize = 1500;
    for i in 0..SENT {
        let sent = a
            .publish("flood", format!("m{i}").into_bytes())
            .await
            .unwrap();
        assert!(sent);
    }
    let requester = a.clone();
    let b_id = b.peer_id();
    let request =
        tokio::spawn(async move { requester.request(b_id, b"still there?".to_vec()).await });

    // Now B reads: the request must arrive (from the backlog if the channel was full).
    let mut messages = 0;
    let handle = wait_event(&mut b_rx, "the request", |event| match event {
        NetworkEvent::Request { handle, .. } => Some(handle),
        NetworkEvent::Message { .. } => {
            messages += 1;
            None
        }
        _ => None,
    })
    .await;
    b.respond(handle, b"yes".to_vec()).await.unwrap();
    let response = timeout(WAIT, request).await.unwrap().unwrap().unwrap();
    assert_eq!(response, b"yes");
    assert!(
        messages < SENT,
        "the event channel never filled ({messages} messages)"
    );
}

/// A node holding many contexts is on a topic each: peers on more topics
/// than gossipsub's default cap (100, over which a peer's whole RPC is
/// dropped, its messages with it) still hear each other on every topic.
#[tokio::test]
async fn peers_on_hundreds_of_topics_hear_each_other() {
    let (a, mut a_rx) = node();
    let (b, mut b_rx) = node();
    let topics: Vec<String> = (0..300).map(|i| format!("ctx-{i}")).collect();
    for t in &topics {
        a.subscribe(t).await.unwrap();
        b.subscribe(t).await.unwrap();
    }
    b.dial(addr(&a).await).await.unwrap();
    wait_event(&mut a_rx, "A sees B", connected(b.peer_id())).await;
    let last = topics.last().unwrap();
    wait_topic_peers(&a, last, &[b.peer_id()]).await;
    wait_topic_peers(&b, last, &[a.peer_id()]).await;
    assert!(a.publish(last, b"on the 300th".to_vec()).await.unwrap());
    let data = wait_event(&mut b_rx, "gossip on the last topic", |event| match event {
        NetworkEvent::Message { topic, data, .. } if topic == *last => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(data, b"on the 300th");
}
