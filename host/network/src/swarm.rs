//! The event loop: the one task that owns the swarm, serving client commands and swarm events.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm,
    core::transport::ListenerId,
    gossipsub, identify,
    request_response::{self, InboundRequestId, OutboundFailure, OutboundRequestId},
    swarm::{
        ConnectionId, DialError, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    NetworkError,
    behaviour::{Behaviour, BehaviourEvent, Reply},
    client::{Command, NetworkEvent, ResponseHandle},
    config::{is_loopback, peer_id_of},
    guard::{GossipVerdict, GuardSlot, RateLimited},
};

/// Non-gossip events held back while the event channel is full; past this, requests are refused.
const BACKLOG_CAP: usize = 1024;
/// Requests of one peer the node may be answering at once; past this, its requests are refused
/// as they arrive.
const REQUESTS_PER_PEER: usize = 64;
/// At most one warning per this period for each thing a peer can make this node warn about.
const WARN_PERIOD: Duration = Duration::from_secs(10);

type Reply1<T> = oneshot::Sender<Result<T, NetworkError>>;

struct PendingDial {
    addr: Multiaddr,
    reply: Option<Reply1<PeerId>>,
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    /// Events waiting for room in `events`, oldest first. Gossip messages never wait here.
    backlog: VecDeque<NetworkEvent>,
    dropped_gossip: u64,
    listeners: HashSet<ListenerId>,
    listen_waiters: Vec<Reply1<Vec<Multiaddr>>>,
    pending_dials: HashMap<ConnectionId, PendingDial>,
    pending_requests: HashMap<OutboundRequestId, (PeerId, Reply1<Vec<u8>>)>,
    loopback_only: bool,
    max_gossip_bytes: usize,
    guard: GuardSlot,
    /// Inbound requests handed to the node and not answered yet, and their peers.
    answering: HashMap<InboundRequestId, PeerId>,
    answering_per_peer: HashMap<PeerId, usize>,
    warn_rejected_gossip: RateLimited,
    warn_slow_peer: RateLimited,
    warn_dropped_gossip: RateLimited,
    warn_refused_request: RateLimited,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        listeners: HashSet<ListenerId>,
        loopback_only: bool,
        max_gossip_bytes: usize,
        guard: GuardSlot,
    ) -> Self {
        Self {
            swarm,
            commands,
            events,
            backlog: VecDeque::new(),
            dropped_gossip: 0,
            listeners,
            listen_waiters: Vec::new(),
            pending_dials: HashMap::new(),
            pending_requests: HashMap::new(),
            loopback_only,
            max_gossip_bytes,
            guard,
            answering: HashMap::new(),
            answering_per_peer: HashMap::new(),
            warn_rejected_gossip: RateLimited::new(WARN_PERIOD),
            warn_slow_peer: RateLimited::new(WARN_PERIOD),
            warn_dropped_gossip: RateLimited::new(WARN_PERIOD),
            warn_refused_request: RateLimited::new(WARN_PERIOD),
        }
    }

    /// Starts a dial nobody waits for (bootstrap); the outcome is only logged.
    pub(crate) fn dial_in_background(&mut self, addr: Multiaddr) {
        self.dial(addr, None);
    }

    /// Runs until shutdown or until every client is dropped.
    pub(crate) async fn run(mut self) {
        let done = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(done)) => break Some(done),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                open = has_room(&self.events), if !self.backlog.is_empty() => {
                    if open { self.flush_backlog() } else { self.receiver_gone() }
                }
            }
        };
        tracing::debug!(peer = %self.swarm.local_peer_id(), "network task stopping");
        drop(self);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs(reply) => {
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                if !addrs.is_empty() {
                    let _ = reply.send(Ok(addrs));
                } else if self.listeners.is_empty() {
                    let _ = reply.send(Err(NetworkError::NotListening));
                } else {
                    self.listen_waiters.push(reply);
                }
            }
            Command::Dial(addr, reply) => self.dial(addr, Some(reply)),
            Command::Subscribe(topic, reply) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .subscribe(&gossipsub::IdentTopic::new(&topic))
                    .map(|_| ())
                    .map_err(|e| NetworkError::Subscribe {
                        topic,
                        reason: e.to_string(),
                    });
                let _ = reply.send(result);
            }
            Command::Unsubscribe(topic, reply) => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .unsubscribe(&gossipsub::IdentTopic::new(topic));
                let _ = reply.send(Ok(()));
            }
            Command::Publish(topic, data, reply) => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::Request(peer, data, reply) => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, data);
                self.pending_requests.insert(id, (peer, reply));
            }
            Command::Respond(handle, data, reply) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(handle.0, Reply::Ok(data))
                    .map_err(|_| NetworkError::ResponseChannelClosed);
                let _ = reply.send(result);
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::TopicPeers(topic, reply) => {
                let hash = gossipsub::IdentTopic::new(topic).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(peer, _)| *peer)
                    .collect();
                let _ = reply.send(peers);
            }
            Command::AddAddress(peer, addr, reply) => {
                let _ = reply.send(self.add_address(peer, addr));
            }
            // Handled in `run`.
            Command::Shutdown(_) => {}
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: Option<Reply1<PeerId>>) {
        let fail = |reply: Option<Reply1<PeerId>>, error: NetworkError| match reply {
            Some(reply) => {
                tracing::debug!(%error, "dial refused");
                let _ = reply.send(Err(error));
            }
            None => tracing::warn!(%error, "bootstrap dial refused"),
        };
        if self.loopback_only && !is_loopback(&addr) {
            return fail(reply, NetworkError::NonLoopbackAddress(addr));
        }
        let opts = match peer_id_of(&addr) {
            Some(peer) if peer == *self.swarm.local_peer_id() => {
                return fail(
                    reply,
                    NetworkError::InvalidMultiaddr {
                        addr,
                        reason: "it names this node's own peer id".to_owned(),
                    },
                );
            }
            Some(peer) if self.swarm.is_connected(&peer) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(peer));
                }
                return;
            }
            Some(peer) => DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::Always)
                .build(),
            None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        let connection = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                tracing::debug!(%addr, "dialling");
                self.pending_dials
                    .insert(connection, PendingDial { addr, reply });
            }
            Err(error) => {
                let reason = dial_error_reason(&error);
                fail(reply, NetworkError::DialFailed { addr, reason });
            }
        }
    }

    fn publish(&mut self, topic: String, data: Vec<u8>) -> Result<bool, NetworkError> {
        let size = data.len();
        let topic_id = gossipsub::IdentTopic::new(&topic);
        let hash = topic_id.hash();
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        // Gossipsub signs a message before it looks for peers; a node alone
        // on a topic would sign (~20 µs) every commit for nobody.
        if !gossipsub
            .all_peers()
            .any(|(_, topics)| topics.contains(&&hash))
        {
            return Ok(false);
        }
        match gossipsub.publish(topic_id, data) {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(true),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(false),
            Err(gossipsub::PublishError::MessageTooLarge) => Err(NetworkError::MessageTooLarge {
                size,
                max: self.max_gossip_bytes,
            }),
            Err(gossipsub::PublishError::AllQueuesFull(peers)) => Err(NetworkError::Publish {
                topic,
                reason: format!("the outbound queues of all {peers} peers are full"),
            }),
            Err(error) => Err(NetworkError::Publish {
                topic,
                reason: error.to_string(),
            }),
        }
    }

    fn add_address(&mut self, peer: PeerId, addr: Multiaddr) -> Result<(), NetworkError> {
        if self.loopback_only && !is_loopback(&addr) {
            return Err(NetworkError::NonLoopbackAddress(addr));
        }
        if let Some(named) = peer_id_of(&addr)
            && named != peer
        {
            return Err(NetworkError::InvalidMultiaddr {
                reason: format!("it names peer {named}, not {peer}"),
                addr,
            });
        }
        self.swarm.add_peer_address(peer, addr);
        Ok(())
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::debug!(%address, "listening");
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                for waiter in self.listen_waiters.drain(..) {
                    let _ = waiter.send(Ok(addrs.clone()));
                }
                self.emit(NetworkEvent::Listening(address));
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                tracing::warn!(?reason, "listener closed");
                self.listeners.remove(&listener_id);
                if self.listeners.is_empty() {
                    for waiter in self.listen_waiters.drain(..) {
                        let _ = waiter.send(Err(NetworkError::NotListening));
                    }
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                if let Some(dial) = self.pending_dials.remove(&connection_id) {
                    tracing::debug!(addr = %dial.addr, peer = %peer_id, "dial succeeded");
                    if let Some(reply) = dial.reply {
                        let _ = reply.send(Ok(peer_id));
                    }
                }
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, "peer connected");
                    self.emit(NetworkEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "peer disconnected");
                self.emit(NetworkEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                let reason = dial_error_reason(&error);
                if let Some(dial) = self.pending_dials.remove(&connection_id) {
                    match dial.reply {
                        Some(reply) => {
                            tracing::debug!(addr = %dial.addr, %reason, "dial failed");
                            let _ = reply.send(Err(NetworkError::DialFailed {
                                addr: dial.addr,
                                reason,
                            }));
                        }
                        None => tracing::warn!(addr = %dial.addr, %reason, "bootstrap dial failed"),
                    }
                } else {
                    tracing::debug!(%reason, "outgoing connection failed");
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "incoming connection failed");
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(event) => self.on_gossip_event(event),
            BehaviourEvent::Sync(event) => self.on_sync_event(event),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs {
                    if self.loopback_only && !is_loopback(&addr) {
                        tracing::debug!(peer = %peer_id, %addr, "ignoring non-loopback address");
                    } else {
                        self.swarm.add_peer_address(peer_id, addr);
                    }
                }
            }
            BehaviourEvent::Identify(_) | BehaviourEvent::Ping(_) => {}
        }
    }

    fn on_gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let source = message.source.unwrap_or(propagation_source);
                let topic = message.topic.into_string();
                let verdict = self
                    .guard
                    .get()
                    .check_gossip(&source, &topic, &message.data);
                let acceptance = match verdict {
                    GossipVerdict::Accept => gossipsub::MessageAcceptance::Accept,
                    GossipVerdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                    GossipVerdict::Reject => gossipsub::MessageAcceptance::Reject,
                };
                // Forwarded (on Accept) or dropped from the cache here.
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                match verdict {
                    GossipVerdict::Accept => self.emit(NetworkEvent::Message {
                        source,
                        topic,
                        data: message.data,
                    }),
                    GossipVerdict::Ignore => {}
                    GossipVerdict::Reject => {
                        if let Some(held) = self.warn_rejected_gossip.allow() {
                            tracing::warn!(
                                peer = %source,
                                via = %propagation_source,
                                %topic,
                                similar_since_last = held,
                                "invalid gossip rejected, not forwarded"
                            );
                        }
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                self.emit(NetworkEvent::Subscribed {
                    peer: peer_id,
                    topic: topic.into_string(),
                });
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, %topic, "peer unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %peer_id, "peer does not support gossipsub");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                // A peer that reads slowly (or not at all) reports this on
                // every heartbeat: one line per period, with how many were held.
                if let Some(held) = self.warn_slow_peer.allow() {
                    tracing::warn!(peer = %peer_id, ?failed_messages, similar_since_last = held, "slow gossip peer");
                }
            }
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<Vec<u8>, Reply>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => {
                    let open = self.answering_per_peer.entry(peer).or_default();
                    if *open >= REQUESTS_PER_PEER {
                        // Refused before the node sees it: a peer cannot queue unbounded
                        // work (or memory) on this node.
                        if let Some(held) = self.warn_refused_request.allow() {
                            tracing::warn!(
                                %peer,
                                similar_since_last = held,
                                "refusing a request: too many of this peer's are open"
                            );
                        }
                        let reason = format!("over {REQUESTS_PER_PEER} requests open");
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, Reply::Refused(reason));
                        return;
                    }
                    *open += 1;
                    self.answering.insert(request_id, peer);
                    self.emit(NetworkEvent::Request {
                        peer,
                        data: request,
                        handle: ResponseHandle(channel),
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((peer, reply)) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(match response {
                            Reply::Ok(data) => Ok(data),
                            Reply::Refused(reason) => Err(NetworkError::Rejected { peer, reason }),
                        });
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "outbound request failed");
                if let Some((peer, reply)) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(match error {
                        OutboundFailure::DialFailure => NetworkError::PeerUnreachable { peer },
                        OutboundFailure::Timeout => NetworkError::RequestTimeout { peer },
                        OutboundFailure::ConnectionClosed => {
                            NetworkError::ConnectionClosed { peer }
                        }
                        OutboundFailure::UnsupportedProtocols => {
                            NetworkError::UnsupportedProtocol { peer }
                        }
                        OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            NetworkError::ConnectionClosed { peer }
                        }
                        OutboundFailure::Io(e) => NetworkError::RequestFailed {
                            peer,
                            reason: e.to_string(),
                        },
                    }));
                }
            }
            request_response::Event::InboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                tracing::debug!(%peer, %error, "inbound request failed");
                self.answered(request_id);
            }
            request_response::Event::ResponseSent { request_id, .. } => self.answered(request_id),
        }
    }

    /// An inbound request is over (answered, dropped or failed): its peer may open another.
    fn answered(&mut self, request_id: InboundRequestId) {
        let Some(peer) = self.answering.remove(&request_id) else {
            return;
        };
        if let Some(open) = self.answering_per_peer.get_mut(&peer) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.answering_per_peer.remove(&peer);
            }
        }
    }

    /// Hands an event to the node layer without ever blocking the swarm. Gossip messages are
    /// dropped (with a warning) when the channel is full, since anti-entropy heals them; other
    /// events wait in the backlog, and requests past the backlog cap are refused to the requester.
    fn emit(&mut self, event: NetworkEvent) {
        let event = if self.backlog.is_empty() {
            match self.events.try_send(event) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(event)) => event,
                Err(mpsc::error::TrySendError::Closed(event)) => {
                    self.discard(event, "the event receiver is gone");
                    return;
                }
            }
        } else {
            event
        };
        match event {
            NetworkEvent::Message { topic, .. } => {
                self.dropped_gossip += 1;
                if self.warn_dropped_gossip.allow().is_some() {
                    tracing::warn!(
                        %topic,
                        dropped_total = self.dropped_gossip,
                        "event channel full: dropping gossip message"
                    );
                }
            }
            event if self.backlog.len() < BACKLOG_CAP => self.backlog.push_back(event),
            event => self.discard(event, "the node is overloaded"),
        }
    }

    /// Moves backlogged events into the channel while it has room (this task is the only sender).
    fn flush_backlog(&mut self) {
        while let Some(event) = self.backlog.pop_front() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.backlog.push_front(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(event)) => {
                    self.backlog.push_front(event);
                    return self.receiver_gone();
                }
            }
        }
    }

    /// The event receiver was dropped: nothing can be delivered any more.
    fn receiver_gone(&mut self) {
        let backlog = std::mem::take(&mut self.backlog);
        for event in backlog {
            self.discard(event, "the event receiver is gone");
        }
    }

    fn discard(&mut self, event: NetworkEvent, why: &str) {
        match event {
            NetworkEvent::Request { peer, handle, .. } => {
                if let Some(held) = self.warn_refused_request.allow() {
                    tracing::warn!(%peer, why, similar_since_last = held, "refusing inbound request");
                }
                let reason = format!("request not accepted: {why}");
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(handle.0, Reply::Refused(reason));
            }
            event => tracing::warn!(?event, why, "dropping network event"),
        }
    }
}

/// Resolves once the event channel has room (true) or its receiver is gone (false).
async fn has_room(events: &mpsc::Sender<NetworkEvent>) -> bool {
    events.reserve().await.is_ok()
}

/// A dial error with every address's underlying cause spelled out.
fn dial_error_reason(error: &DialError) -> String {
    match error {
        DialError::Transport(attempts) => attempts
            .iter()
            .map(|(addr, error)| format!("{addr}: {}", chain(error)))
            .collect::<Vec<_>>()
            .join("; "),
        other => chain(other),
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
