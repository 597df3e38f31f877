//! A bare network peer, no node behind it, dialing a real node: it
//! overhears gossip on the topics it joins ([`overhear`]) and can publish
//! or ask as a stranger (or, with a member's keypair, as that member).

use std::time::Instant;

use mero_network::{NetworkClient, NetworkConfig, NetworkEvent, PeerId};
use tokio::sync::mpsc::Receiver;

use crate::node::{CONVERGE, TestNode};

/// A peer with `config` connected to `to`: its client, its events (it
/// hears gossip while they are kept) and `to`'s peer id.
pub async fn connect(
    config: NetworkConfig,
    to: &TestNode,
) -> (NetworkClient, Receiver<NetworkEvent>, PeerId) {
    let target = mero_config::ConfigFile::load(&to.dir()).unwrap();
    let (net, events) = mero_network::spawn(config).unwrap();
    let peer = net
        .dial(target.swarm.listen[0].parse().unwrap())
        .await
        .unwrap();
    (net, events, peer)
}

/// Subscribes `net` to `topic` and waits until `peer` is seen on it.
pub async fn on_topic(net: &NetworkClient, topic: &str, peer: PeerId) {
    net.subscribe(topic).await.unwrap();
    let deadline = Instant::now() + CONVERGE;
    while !net.topic_peers(topic).await.unwrap().contains(&peer) {
        assert!(Instant::now() < deadline, "never saw the node on the topic");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The next gossip message heard on `topic` (from `from`, if given: its
/// publisher); panics if none comes within [`CONVERGE`].
pub async fn overhear(
    events: &mut Receiver<NetworkEvent>,
    topic: &str,
    from: Option<PeerId>,
) -> Vec<u8> {
    loop {
        match tokio::time::timeout(CONVERGE, events.recv()).await {
            Ok(Some(NetworkEvent::Message {
                topic: t,
                data,
                source,
            })) if t == topic && from.is_none_or(|f| f == source) => return data,
            Ok(Some(_)) => {}
            other => panic!("no gossip overheard on {topic}: {other:?}"),
        }
    }
}
