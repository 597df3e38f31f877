//! Configuration of a network node.

use std::{fmt, sync::Arc, time::Duration};

use libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr::Protocol};

use crate::guard::PeerGuard;

/// Default limit for one request or response: 8 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Default limit for one gossip payload: 4 MiB. Gossip is read from any
/// peer on a topic before anyone can judge it, and every mesh peer's queue
/// and the message cache hold a copy: what is larger goes by request.
pub const DEFAULT_MAX_GOSSIP_BYTES: usize = 4 * 1024 * 1024;

/// Default time a request waits for its response: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything [`crate::spawn`] needs to start a node.
#[derive(Clone)]
pub struct NetworkConfig {
    /// The node's identity; its public key gives the node's [`PeerId`] and signs gossip messages.
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/127.0.0.1/tcp/0` (port 0 picks a free port).
    pub listen: Vec<Multiaddr>,
    /// Addresses dialled once at start, with or without a `/p2p/<peer id>` suffix. Failures are logged.
    pub bootstrap: Vec<Multiaddr>,
    /// Size limit for one request or response.
    pub max_message_bytes: usize,
    /// Size limit for one gossip payload: frames over it (plus the
    /// envelope's slack) are refused as they are read, from anyone.
    pub max_gossip_bytes: usize,
    /// How long a request waits for its response before failing with `RequestTimeout`.
    pub request_timeout: Duration,
    /// When set (the default), the node listens on, dials and records only 127.0.0.0/8 and ::1
    /// addresses; any other address is refused with `NonLoopbackAddress` before anything is sent.
    pub loopback_only: bool,
    /// Who is a member and which gossip to pass on; see [`PeerGuard`]. Without one, no peer
    /// may send a request over [`crate::STRANGER_REQUEST_BYTES`] and all gossip is passed on.
    /// [`crate::NetworkClient::set_guard`] installs one later.
    pub guard: Option<Arc<dyn PeerGuard>>,
}

impl NetworkConfig {
    /// A config with the defaults: listen on `/ip4/127.0.0.1/tcp/0`, no bootstrap peers,
    /// [`DEFAULT_MAX_MESSAGE_BYTES`], [`DEFAULT_MAX_GOSSIP_BYTES`], [`DEFAULT_REQUEST_TIMEOUT`],
    /// loopback only.
    pub fn new(keypair: Keypair) -> Self {
        let listen = Multiaddr::empty()
            .with(Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST))
            .with(Protocol::Tcp(0));
        Self {
            keypair,
            listen: vec![listen],
            bootstrap: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_gossip_bytes: DEFAULT_MAX_GOSSIP_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            loopback_only: true,
            guard: None,
        }
    }

    /// The peer id derived from [`Self::keypair`].
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }
}

impl fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("peer_id", &self.peer_id())
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_gossip_bytes", &self.max_gossip_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("loopback_only", &self.loopback_only)
            .field("guard", &self.guard.is_some())
            .finish()
    }
}

/// True when the address starts with a loopback IP (127.0.0.0/8 or ::1). DNS names are not loopback.
pub fn is_loopback(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => ip.is_loopback(),
        Some(Protocol::Ip6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// The peer id in a trailing `/p2p/<peer id>` component, if any.
pub(crate) fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}
