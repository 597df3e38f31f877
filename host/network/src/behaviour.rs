//! The combined libp2p behaviour and the request/response wire codec.

use std::{io, time::Duration};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{
    StreamProtocol, gossipsub, identify,
    identity::Keypair,
    ping,
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
};
use sha2::{Digest, Sha256};

use crate::{NetworkConfig, NetworkError};

/// Identify protocol version announced to peers.
pub(crate) const IDENTIFY_PROTOCOL: &str = "/mero/id/1.0.0";
/// Request/response protocol used for sync.
pub(crate) const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/mero/sync/1.0.0");
/// Room for the gossipsub envelope (signature, key, topic, seqno) on top of the payload limit.
const GOSSIP_ENVELOPE_SLACK: usize = 64 * 1024;
/// Gossipsub heartbeat: fast, so small networks form their meshes within a second.
const HEARTBEAT: Duration = Duration::from_millis(300);

/// All protocols the node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
}

impl Behaviour {
    pub(crate) fn new(config: &NetworkConfig) -> Result<Self, NetworkError> {
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
                    .max_message_bytes
                    .saturating_add(GOSSIP_ENVELOPE_SLACK),
            )
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
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
        )
        .map_err(|e| NetworkError::Config(format!("gossipsub: {e}")))?;
        let sync = request_response::Behaviour::with_codec(
            SyncCodec {
                max_bytes: config.max_message_bytes,
            },
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(config.request_timeout),
        );
        Ok(Self {
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

/// Length-prefixed frames: a request is `len:u32 BE | bytes`; a response is `tag:u8 | len | bytes`.
#[derive(Debug, Clone)]
pub(crate) struct SyncCodec {
    pub(crate) max_bytes: usize,
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Reply;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_bytes).await
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

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {max} bytes"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
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
