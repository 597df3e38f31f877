//! The cloneable handle through which everything else drives the swarm task.

use std::{fmt, sync::Arc};

use libp2p::{Multiaddr, PeerId, request_response::ResponseChannel};
use tokio::sync::{mpsc, oneshot};

use crate::{
    NetworkError,
    behaviour::Reply,
    guard::{GuardSlot, PeerGuard},
};

/// An inbound request's reply slot. Pass it to [`NetworkClient::respond`] exactly once; dropping it
/// without responding makes the requester's call fail promptly instead of waiting for the timeout.
pub struct ResponseHandle(pub(crate) ResponseChannel<Reply>);

impl fmt::Debug for ResponseHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseHandle")
            .field("open", &self.0.is_open())
            .finish()
    }
}

/// Something the network reports to the node layer, in the order the swarm saw it.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message from another node. `source` is the signed author (falling back to the
    /// peer that forwarded it). Never includes our own messages. May be dropped under backpressure.
    Message {
        /// The message's author, or the forwarding peer when there is no author.
        source: PeerId,
        /// The topic it was published on.
        topic: String,
        /// The payload.
        data: Vec<u8>,
    },
    /// A request from `peer`; answer it with [`NetworkClient::respond`]. Never dropped silently:
    /// when the node layer cannot keep up the requester gets a `Rejected` error instead.
    Request {
        /// The requesting peer.
        peer: PeerId,
        /// The request payload.
        data: Vec<u8>,
        /// Where the response goes.
        handle: ResponseHandle,
    },
    /// The first connection to a peer was established.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// A peer announced a subscription to a topic.
    Subscribed {
        /// The subscribing peer.
        peer: PeerId,
        /// The topic.
        topic: String,
    },
    /// The node is now listening on this (fully resolved) address.
    Listening(Multiaddr),
}

/// Commands from clients to the swarm task; each carries its reply channel.
pub(crate) enum Command {
    ListenAddrs(oneshot::Sender<Result<Vec<Multiaddr>, NetworkError>>),
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NetworkError>>),
    Subscribe(String, oneshot::Sender<Result<(), NetworkError>>),
    Unsubscribe(String, oneshot::Sender<Result<(), NetworkError>>),
    Publish(String, Vec<u8>, oneshot::Sender<Result<bool, NetworkError>>),
    Request(
        PeerId,
        Vec<u8>,
        oneshot::Sender<Result<Vec<u8>, NetworkError>>,
    ),
    Respond(
        ResponseHandle,
        Vec<u8>,
        oneshot::Sender<Result<(), NetworkError>>,
    ),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    TopicPeers(String, oneshot::Sender<Vec<PeerId>>),
    AddAddress(PeerId, Multiaddr, oneshot::Sender<Result<(), NetworkError>>),
    Shutdown(oneshot::Sender<()>),
}

/// A cloneable handle to the node's swarm task. Every method fails with
/// [`NetworkError::Stopped`] once the task has ended. The task ends on [`Self::shutdown`] or when
/// the last clone is dropped.
#[derive(Clone)]
pub struct NetworkClient {
    pub(crate) peer_id: PeerId,
    pub(crate) max_message_bytes: usize,
    pub(crate) max_gossip_bytes: usize,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) guard: GuardSlot,
}

impl fmt::Debug for NetworkClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkClient")
            .field("peer_id", &self.peer_id)
            .field("stopped", &self.commands.is_closed())
            .finish()
    }
}

impl NetworkClient {
    /// Whether the swarm task still runs.
    pub fn is_running(&self) -> bool {
        !self.commands.is_closed()
    }

    /// This node's peer id (available even after shutdown).
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses the node is bound to, ports resolved. Waits until at least one listener is
    /// bound; fails with `NotListening` if none is configured or every listener failed.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.call(Command::ListenAddrs).await?
    }

    /// Connects to `addr` and returns the peer's id once a connection is established. With a
    /// `/p2p/<id>` suffix the remote must prove that id (and an existing connection to it is
    /// reused). Non-loopback addresses fail with `NonLoopbackAddress` on loopback-only nodes.
    /// Resolves when *this* side has the connection; the remote reports `PeerConnected` a moment
    /// later, and until then its requests to us may fail with `PeerUnreachable`.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetworkError> {
        self.call(|reply| Command::Dial(addr, reply)).await?
    }

    /// Subscribes to a gossip topic (idempotent) and announces it to connected peers.
    pub async fn subscribe(&self, topic: &str) -> Result<(), NetworkError> {
        self.call(|reply| Command::Subscribe(topic.to_owned(), reply))
            .await?
    }

    /// Unsubscribes from a gossip topic (idempotent).
    pub async fn unsubscribe(&self, topic: &str) -> Result<(), NetworkError> {
        self.call(|reply| Command::Unsubscribe(topic.to_owned(), reply))
            .await?
    }

    /// Publishes `data` on `topic`. `Ok(true)`: sent to at least one peer, or the same bytes were
    /// already published on this topic recently (deduplicated). `Ok(false)`: no peer is known to
    /// be subscribed yet, nothing was sent. Payloads over `max_gossip_bytes` fail with
    /// `MessageTooLarge`.
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<bool, NetworkError> {
        if data.len() > self.max_gossip_bytes {
            return Err(NetworkError::MessageTooLarge {
                size: data.len(),
                max: self.max_gossip_bytes,
            });
        }
        self.call(|reply| Command::Publish(topic.to_owned(), data, reply))
            .await?
    }

    /// Sends a request to `peer` (dialling it through known addresses if not connected) and
    /// waits for the response. Bounded by the configured request timeout plus the dial timeout.
    pub async fn request(&self, peer: PeerId, data: Vec<u8>) -> Result<Vec<u8>, NetworkError> {
        self.check_size(data.len())?;
        self.call(|reply| Command::Request(peer, data, reply))
            .await?
    }

    /// Answers an inbound request. Fails with `ResponseChannelClosed` if the requester is gone.
    pub async fn respond(&self, handle: ResponseHandle, data: Vec<u8>) -> Result<(), NetworkError> {
        self.check_size(data.len())?;
        self.call(|reply| Command::Respond(handle, data, reply))
            .await?
    }

    /// Peers with at least one open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetworkError> {
        self.call(Command::ConnectedPeers).await
    }

    /// Connected peers known (from their announcements) to be subscribed to `topic`.
    pub async fn topic_peers(&self, topic: &str) -> Result<Vec<PeerId>, NetworkError> {
        self.call(|reply| Command::TopicPeers(topic.to_owned(), reply))
            .await
    }

    /// Records an address for `peer`, used when a request needs to dial it. A `/p2p/` suffix must
    /// match `peer`; non-loopback addresses are refused on loopback-only nodes.
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) -> Result<(), NetworkError> {
        self.call(|reply| Command::AddAddress(peer, addr, reply))
            .await?
    }

    /// Installs the node's judgement of peers and gossip, replacing the one in force (see
    /// [`NetworkConfig::guard`](crate::NetworkConfig::guard)); takes effect at once, for new
    /// and open connections alike.
    pub fn set_guard(&self, guard: Arc<dyn PeerGuard>) {
        self.guard.set(guard);
    }

    /// Whether a guard was configured or installed.
    pub fn has_guard(&self) -> bool {
        self.guard.is_set()
    }

    /// Stops the swarm task and returns once it has ended and its connections are dropped.
    /// Idempotent; pending calls fail with `Stopped`.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            // An error here means the task ended anyway.
            let _ = done.await;
        }
    }

    fn check_size(&self, size: usize) -> Result<(), NetworkError> {
        if size > self.max_message_bytes {
            return Err(NetworkError::MessageTooLarge {
                size,
                max: self.max_message_bytes,
            });
        }
        Ok(())
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        response.await.map_err(|_| NetworkError::Stopped)
    }
}
