//! The combined libp2p behaviour and the request/response wire codec.

use std::{
    io,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, connection_limits,
    core::{Endpoint, transport::PortUse},
    gossipsub, identify,
    identity::Keypair,
    ping,
    request_response::{self, ProtocolSupport},
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm, dummy,
    },
};
use sha2::{Digest, Sha256};

use crate::{
    NetworkConfig, NetworkError,
    guard::{GuardSlot, STRANGER_REQUEST_BYTES},
};

/// Identify protocol version announced to peers.
pub(crate) const IDENTIFY_PROTOCOL: &str = "/mero/id/1.0.0";
/// Request/response protocol used for sync.
pub(crate) const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/mero/sync/1.0.0");
/// Room for the gossipsub envelope (signature, key, topic, seqno) on top of the payload limit.
const GOSSIP_ENVELOPE_SLACK: usize = 64 * 1024;
/// Gossipsub heartbeat: fast, so small networks form their meshes within a second.
const HEARTBEAT: Duration = Duration::from_millis(300);
/// Topics a peer may be subscribed to (one per context and namespace it
/// holds); each costs a few bytes of bookkeeping here.
const MAX_PEER_TOPICS: usize = 16_384;

/// Connections one peer may hold to this node at once (a simultaneous dial
/// from both ends makes two).
const CONNECTIONS_PER_PEER: u32 = 3;
/// Connections still in their handshake, from anyone.
const PENDING_INCOMING: u32 = 64;
/// Requests one connection may have being read or answered at once; past
/// it, new request streams are dropped.
const STREAMS_PER_CONNECTION: usize = 32;

/// All protocols the node speaks.
///
/// Field order matters: the derived behaviour offers each new connection to
/// the fields in this order, so `limits` refuses it before anything else
/// sees it, and `peer_slot` names its peer just before `sync` builds the
/// connection's codec (see [`PeerSlot`]).
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) peer_slot: PeerSlot,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
}

impl Behaviour {
    pub(crate) fn new(config: &NetworkConfig, guard: GuardSlot) -> Result<Self, NetworkError> {
        let keypair: &Keypair = &config.keypair;
        // Identify's own address cache would feed unfiltered addresses to dials; the event loop
        // records the addresses it reports instead, filtered by `loopback_only`.
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), keypair.public())
                .with_cache_size(0),
        );
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .message_id_fn(message_id)
            .max_transmit_size(
                config
                    .max_gossip_bytes
                    .saturating_add(GOSSIP_ENVELOPE_SLACK),
            )
            // Nothing is forwarded until the node's guard has judged it
            // (`swarm::on_gossip_event`): junk stops at the first member.
            .validate_messages()
            .heartbeat_initial_delay(Duration::from_millis(100))
            .heartbeat_interval(HEARTBEAT)
            .flood_publish(true)
            .mesh_outbound_min(1)
            .mesh_n_low(2)
            .mesh_n(4)
            .mesh_n_high(8)
            .gossip_lazy(4)
            .build()
            .map_err(|e| NetworkError::Config(format!("gossipsub: {e}")))?;
        // gossipsub's default cap is 100 topics a peer, and an RPC over it
        // is dropped whole (messages included): a node holding more than
        // ~100 contexts would stop hearing its peers' gossip and heartbeats.
        let topics = gossipsub::MaxCountSubscriptionFilter {
            filter: gossipsub::AllowAllSubscriptionFilter {},
            max_subscribed_topics: MAX_PEER_TOPICS,
            max_subscriptions_per_request: MAX_PEER_TOPICS,
        };
        let gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
            topics,
        )
        .map_err(|e| NetworkError::Config(format!("gossipsub: {e}")))?;
        let next_peer = NextPeer::default();
        let sync = request_response::Behaviour::with_codec(
            SyncCodec {
                max_bytes: config.max_message_bytes,
                guard,
                peer: None,
                next_peer: next_peer.clone(),
            },
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(config.request_timeout)
                .with_max_concurrent_streams(STREAMS_PER_CONNECTION),
        );
        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER))
                .with_max_pending_incoming(Some(PENDING_INCOMING)),
        );
        Ok(Self {
            limits,
            peer_slot: PeerSlot(next_peer),
            identify,
            ping: ping::Behaviour::default(),
            gossipsub,
            sync,
        })
    }
}

/// Content-addressed gossip ids: the same bytes on the same topic are one message, whoever sends them.
fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut hasher = Sha256::new();
    let topic = message.topic.as_str().as_bytes();
    hasher.update((topic.len() as u64).to_be_bytes());
    hasher.update(topic);
    hasher.update(&message.data);
    gossipsub::MessageId::new(hasher.finalize().as_slice())
}

/// A response on the wire: the responder's bytes, or a refusal by its network layer.
#[derive(Debug)]
pub(crate) enum Reply {
    Ok(Vec<u8>),
    Refused(String),
}

const TAG_OK: u8 = 0;
const TAG_REFUSED: u8 = 1;

/// The peer of the connection being set up, from [`PeerSlot`] to the
/// codec clone `sync` makes for that connection.
#[derive(Clone, Default)]
pub(crate) struct NextPeer(Arc<Mutex<Option<PeerId>>>);

/// Records the peer of each new connection for the codec.
///
/// The request/response codec is cloned once per connection and is never
/// told whose connection it reads: this behaviour, offered each connection
/// just before `sync`, records the peer, and [`SyncCodec::clone`] takes it.
/// Both run on the swarm task, one connection at a time.
pub(crate) struct PeerSlot(NextPeer);

impl PeerSlot {
    fn note(&mut self, peer: PeerId) -> Result<THandler<Self>, ConnectionDenied> {
        *self.0.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(peer);
        Ok(dummy::ConnectionHandler)
    }
}

impl NetworkBehaviour for PeerSlot {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.note(peer)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.note(peer)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        // The dummy handler has no events.
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Length-prefixed frames: a request is `len:u32 BE | bytes`; a response is `tag:u8 | len | bytes`.
///
/// A request over [`STRANGER_REQUEST_BYTES`] is read only from a peer the
/// guard says is a member, and refused from its length prefix otherwise.
pub(crate) struct SyncCodec {
    pub(crate) max_bytes: usize,
    guard: GuardSlot,
    /// The connection's peer; `None` on the behaviour's own copy.
    peer: Option<PeerId>,
    next_peer: NextPeer,
}

impl Clone for SyncCodec {
    fn clone(&self) -> Self {
        // The behaviour's copy is cloned for a new connection right after
        // `PeerSlot` recorded its peer; a connection's copy (cloned per
        // stream) keeps its own.
        let peer = self.peer.or_else(|| {
            self.next_peer
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        });
        SyncCodec {
            max_bytes: self.max_bytes,
            guard: self.guard.clone(),
            peer,
            next_peer: self.next_peer.clone(),
        }
    }
}

impl std::fmt::Debug for SyncCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncCodec")
            .field("max_bytes", &self.max_bytes)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl SyncCodec {
    /// The largest request frame this connection's peer may send.
    fn request_limit(&self) -> usize {
        let member = self.peer.is_some_and(|p| self.guard.get().is_member(&p));
        if member {
            self.max_bytes
        } else {
            self.max_bytes.min(STRANGER_REQUEST_BYTES)
        }
    }
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Reply;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_len(io).await?;
        let limit = if len > STRANGER_REQUEST_BYTES {
            // Asked only for large frames: most requests are small.
            self.request_limit()
        } else {
            self.max_bytes
        };
        read_body(io, len, limit).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Reply>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut tag = [0u8; 1];
        io.read_exact(&mut tag).await?;
        let body = read_frame(io, self.max_bytes).await?;
        match tag[0] {
            TAG_OK => Ok(Reply::Ok(body)),
            TAG_REFUSED => Ok(Reply::Refused(String::from_utf8_lossy(&body).into_owned())),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown response tag {other}"),
            )),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, self.max_bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Reply,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let (tag, body) = match &response {
            Reply::Ok(data) => (TAG_OK, data.as_slice()),
            Reply::Refused(reason) => (TAG_REFUSED, reason.as_bytes()),
        };
        io.write_all(&[tag]).await?;
        write_frame(io, body, self.max_bytes).await
    }
}

/// What a frame's buffer starts at.
const FIRST_READ: usize = 64 << 10;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let len = read_len(io).await?;
    read_body(io, len, max).await
}

async fn read_len<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<usize> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    Ok(usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX))
}

/// Reads a frame's `len` bytes, refused before anything is allocated if
/// over `max`.
async fn read_body<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    len: usize,
    max: usize,
) -> io::Result<Vec<u8>> {
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {max} bytes"),
        ));
    }
    // Grown as the bytes arrive, not sized from the prefix: a peer that
    // announces a large frame and sends little costs little. Doubled, but
    // never past the frame's length (`read_to_end` would leave a 16 MiB
    // frame in a 32 MiB buffer).
    let mut buf: Vec<u8> = Vec::new();
    let mut filled = 0;
    while filled < len {
        if filled == buf.len() {
            let grow = (len - filled).min(buf.len().max(FIRST_READ));
            buf.reserve_exact(grow);
            buf.resize(filled + grow, 0);
        }
        let read = io.read(&mut buf[filled..]).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("frame ended after {filled} of {len} bytes"),
            ));
        }
        filled += read;
    }
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    data: &[u8],
    max: usize,
) -> io::Result<()> {
    let len = u32::try_from(data.len())
        .ok()
        .filter(|_| data.len() <= max)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {} bytes exceeds the limit of {max} bytes",
                    data.len()
                ),
            )
        })?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(data).await?;
    io.flush().await
}
