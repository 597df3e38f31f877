//! The node's libp2p networking: one tokio task owns the swarm (TCP + noise + yamux; identify,
//! ping, gossipsub and a request/response sync protocol carrying opaque bytes) and is driven
//! through a cloneable [`NetworkClient`]; inbound traffic arrives as [`NetworkEvent`]s.
//!
//! Peers come only from explicit dials, bootstrap addresses and what identify reports for
//! connected peers: no mDNS, DHT or relay. By default a node is loopback-only.
//!
//! It moves opaque bytes and may not know what they mean: no governance, state, keys of
//! namespaces or policy about who is a member (the node decides that and tells it which
//! topics to join and whom to answer).

#![warn(missing_docs)]

mod behaviour;
mod client;
mod config;
mod error;
mod guard;
mod swarm;
mod transport;

use std::{collections::HashSet, time::Duration};

pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
use tokio::sync::mpsc;

pub use crate::{
    client::{NetworkClient, NetworkEvent, ResponseHandle},
    config::{
        DEFAULT_MAX_GOSSIP_BYTES, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_REQUEST_TIMEOUT,
        NetworkConfig, is_loopback,
    },
    error::NetworkError,
    guard::{GossipVerdict, PeerGuard, STRANGER_REQUEST_BYTES},
};

/// Capacity of the client → swarm command channel.
const COMMAND_CAPACITY: usize = 256;
/// Capacity of the swarm → node event channel.
const EVENT_CAPACITY: usize = 1024;
/// Connections stay open this long without protocol activity.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);

/// Builds the swarm, starts listening on `config.listen`, starts dialling `config.bootstrap`
/// and spawns the swarm task on the current tokio runtime.
///
/// Must be called inside a tokio runtime. Fails before spawning anything if the config is
/// unusable (size limit of 0 or over 4 GiB, a non-loopback listen or bootstrap address on a
/// loopback-only node) or a listener cannot be created. Listeners are registered before this
/// returns, so [`NetworkClient::listen_addrs`] resolves as soon as the ports are bound.
pub fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkClient, mpsc::Receiver<NetworkEvent>), NetworkError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        NetworkError::Config("mero_network::spawn must be called inside a tokio runtime".into())
    })?;
    for (name, limit) in [
        ("max_message_bytes", config.max_message_bytes),
        ("max_gossip_bytes", config.max_gossip_bytes),
    ] {
        if limit == 0 || u32::try_from(limit).is_err() {
            return Err(NetworkError::Config(format!(
                "{name} must be between 1 and {}, got {limit}",
                u32::MAX,
            )));
        }
    }
    if config.loopback_only {
        let remote = config.listen.iter().chain(&config.bootstrap);
        if let Some(addr) = remote.into_iter().find(|addr| !is_loopback(addr)) {
            return Err(NetworkError::NonLoopbackAddress(addr.clone()));
        }
    }

    let peer_id = config.peer_id();
    let transport = transport::build(&config.keypair, config.loopback_only)?;
    let guard = guard::GuardSlot::new(config.guard.clone());
    let behaviour = behaviour::Behaviour::new(&config, guard.clone())?;
    let mut swarm = libp2p::Swarm::new(
        transport,
        behaviour,
        peer_id,
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT),
    );
    let mut listeners = HashSet::new();
    for addr in &config.listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        listeners.insert(id);
    }

    let (command_tx, command_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (event_tx, event_rx) = mpsc::channel(EVENT_CAPACITY);
    let mut event_loop = swarm::EventLoop::new(
        swarm,
        command_rx,
        event_tx,
        listeners,
        config.loopback_only,
        config.max_gossip_bytes,
        guard.clone(),
    );
    for addr in config.bootstrap {
        event_loop.dial_in_background(addr);
    }
    runtime.spawn(event_loop.run());
    tracing::debug!(peer = %peer_id, "network task started");

    Ok((
        NetworkClient {
            peer_id,
            max_message_bytes: config.max_message_bytes,
            max_gossip_bytes: config.max_gossip_bytes,
            commands: command_tx,
            guard,
        },
        event_rx,
    ))
}
