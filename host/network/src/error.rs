//! The errors every network operation can return.

use libp2p::{Multiaddr, PeerId};

/// Why a network operation failed. Every variant names what went wrong and, where it helps, with whom.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// Connecting to `addr` failed (refused, wrong peer id at the address, handshake error, timeout...).
    #[error("dial {addr} failed: {reason}")]
    DialFailed {
        /// The address that was dialled.
        addr: Multiaddr,
        /// What the transport or the swarm reported.
        reason: String,
    },
    /// The node is loopback-only and `0` is not a 127.0.0.0/8 or ::1 address; nothing was sent.
    #[error("refusing non-loopback address {0}: this node is configured loopback-only")]
    NonLoopbackAddress(Multiaddr),
    /// The multiaddr cannot be used for this operation.
    #[error("invalid multiaddr {addr}: {reason}")]
    InvalidMultiaddr {
        /// The offending address.
        addr: Multiaddr,
        /// Why it was rejected.
        reason: String,
    },
    /// The peer did not answer the request within the configured request timeout.
    #[error("request to {peer} timed out")]
    RequestTimeout {
        /// The peer that was asked.
        peer: PeerId,
    },
    /// The peer was not connected and could not be dialled (no known address, or every address failed).
    #[error("peer {peer} is unreachable: not connected and could not be dialled")]
    PeerUnreachable {
        /// The peer that could not be reached.
        peer: PeerId,
    },
    /// The connection closed, or the peer dropped the request, before a response arrived.
    #[error("request to {peer} failed: connection closed or request dropped before a response")]
    ConnectionClosed {
        /// The peer that was asked.
        peer: PeerId,
    },
    /// The peer does not speak the sync request/response protocol.
    #[error("peer {peer} does not support the sync protocol")]
    UnsupportedProtocol {
        /// The peer that was asked.
        peer: PeerId,
    },
    /// The request failed on the wire (I/O error, malformed or oversized response).
    #[error("request to {peer} failed: {reason}")]
    RequestFailed {
        /// The peer that was asked.
        peer: PeerId,
        /// The underlying error.
        reason: String,
    },
    /// The peer's network layer refused the request (for example because it is overloaded).
    #[error("peer {peer} rejected the request: {reason}")]
    Rejected {
        /// The peer that refused.
        peer: PeerId,
        /// The reason it gave.
        reason: String,
    },
    /// A request or response larger than `max_message_bytes`, or a gossip message larger than
    /// `max_gossip_bytes`; nothing was sent.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The size of the rejected payload.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The response could not be sent: the requester went away or the request already timed out.
    #[error("cannot respond: the request's channel is closed (requester gone or timed out)")]
    ResponseChannelClosed,
    /// Subscribing to a gossip topic failed.
    #[error("subscribe to topic {topic:?} failed: {reason}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// The underlying error.
        reason: String,
    },
    /// Publishing on a gossip topic failed for a reason other than "no subscribers".
    #[error("publish on topic {topic:?} failed: {reason}")]
    Publish {
        /// The topic.
        topic: String,
        /// The underlying error.
        reason: String,
    },
    /// Listening on `addr` failed at start.
    #[error("listen on {addr} failed: {reason}")]
    Listen {
        /// The listen address.
        addr: Multiaddr,
        /// The underlying error.
        reason: String,
    },
    /// The node has no listener left (none configured, or all of them closed).
    #[error("the node is not listening on any address")]
    NotListening,
    /// The configuration is unusable.
    #[error("invalid network config: {0}")]
    Config(String),
    /// The swarm task has ended (after `shutdown`, or when every client was dropped).
    #[error("the network task has stopped")]
    Stopped,
}
