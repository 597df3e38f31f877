//! The node's link to the swarm, once networking has started: publishing
//! and subscribing to gossip topics, asking one peer, dialling members.
//! Everything here is a thin, typed use of the network crate's client;
//! what to say and to whom is decided by its callers.

use std::sync::OnceLock;

use mero_network::{Multiaddr, NetworkClient, PeerId};

use crate::error::{NodeError, Result};
use crate::sync::{Gossip, Request, Response, peer_of};

/// How many of an invitation's hinted addresses a joiner dials.
const MAX_HINTED_ADDRS: usize = 8;

/// The network client, set when networking starts.
#[derive(Default)]
pub(crate) struct Peers {
    client: OnceLock<NetworkClient>,
}

/// "No member could be reached" (504).
pub(crate) fn unreachable(message: impl Into<String>) -> NodeError {
    NodeError::Unreachable {
        kind: "MembersUnreachable",
        message: message.into(),
    }
}

impl Peers {
    /// Installs the client; false if networking had started already.
    pub(crate) fn start(&self, client: NetworkClient) -> bool {
        self.client.set(client).is_ok()
    }

    /// The client, or why there is none.
    pub(crate) fn client(&self) -> Result<&NetworkClient> {
        self.client
            .get()
            .ok_or_else(|| unreachable("this node's networking is not running"))
    }

    /// Why networking does not run now, if it does not.
    pub(crate) fn not_running(&self) -> Option<&'static str> {
        match self.client.get() {
            None => Some("networking has not started"),
            Some(c) if !c.is_running() => Some("the network task has stopped"),
            Some(_) => None,
        }
    }

    /// Whether networking runs.
    pub(crate) fn started(&self) -> bool {
        self.client.get().is_some()
    }

    /// Sends `req` to `peer` and decodes its answer.
    pub(crate) async fn fetch(&self, peer: PeerId, req: &Request) -> Result<Response, String> {
        let client = self.client().map_err(|e| e.to_string())?;
        let bytes = borsh::to_vec(req).map_err(|e| e.to_string())?;
        let answer = client
            .request(peer, bytes)
            .await
            .map_err(|e| e.to_string())?;
        borsh::from_slice(&answer).map_err(|e| format!("undecodable answer: {e}"))
    }

    /// Publishes on a topic; a failure is logged (anti-entropy delivers
    /// what gossip missed).
    pub(crate) async fn publish(&self, topic: &str, msg: &Gossip) {
        let Ok(client) = self.client() else { return };
        let bytes = match borsh::to_vec(msg) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%topic, error = %e, "gossip could not be encoded");
                return;
            }
        };
        if let Err(e) = client.publish(topic, bytes).await {
            tracing::warn!(%topic, error = %e, "publishing failed; anti-entropy will deliver it");
        }
    }

    /// Whether a connected peer is known to be on `topic` (none without
    /// networking).
    pub(crate) async fn anyone_on(&self, topic: &str) -> bool {
        match self.client() {
            Ok(client) => client.topic_peers(topic).await.is_ok_and(|p| !p.is_empty()),
            Err(_) => false,
        }
    }

    /// Subscribes to a topic (nothing without networking).
    pub(crate) async fn subscribe(&self, topic: &str) {
        if let Ok(client) = self.client()
            && let Err(e) = client.subscribe(topic).await
        {
            tracing::warn!(%topic, error = %e, "subscribing failed");
        }
    }

    /// Unsubscribes from a topic (nothing without networking).
    pub(crate) async fn unsubscribe(&self, topic: &str) {
        if let Ok(client) = self.client()
            && let Err(e) = client.unsubscribe(topic).await
        {
            tracing::debug!(%topic, error = %e, "unsubscribing failed");
        }
    }

    /// Peers connected now (none without networking).
    pub(crate) async fn connected(&self) -> Vec<PeerId> {
        match self.client() {
            Ok(c) => c.connected_peers().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// This node's listen addresses, as strings.
    pub(crate) async fn listen_addrs(&self) -> Vec<String> {
        match self.client() {
            Ok(c) => c
                .listen_addrs()
                .await
                .map(|a| a.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Connects to the node of member `key` at one of `addrs`, unless it
    /// is this node or connected already.
    pub(crate) async fn dial_member(&self, me: &[u8; 32], key: &[u8; 32], addrs: &[String]) {
        let Ok(client) = self.client() else { return };
        if key == me {
            return;
        }
        let Some(peer) = peer_of(key) else { return };
        if client
            .connected_peers()
            .await
            .is_ok_and(|p| p.contains(&peer))
        {
            return;
        }
        for a in addrs {
            if let Ok(addr) = a.parse::<Multiaddr>() {
                let _ = client.add_address(peer, addr.clone()).await;
                match client.dial(addr).await {
                    Ok(_) => return,
                    Err(e) => tracing::debug!(error = %e, "dialling a member failed"),
                }
            }
        }
    }

    /// Dials `addrs` until one answers as `peer`; true if it did, or if it
    /// is connected already.
    pub(crate) async fn reach(&self, peer: PeerId, addrs: &[String]) -> Result<bool> {
        let client = self.client()?;
        // The addresses are an unsigned hint a pasted invitation carries:
        // dial a few, never as many as it lists.
        for a in addrs.iter().take(MAX_HINTED_ADDRS) {
            let Ok(addr) = a.parse::<Multiaddr>() else {
                continue;
            };
            match client.dial(addr).await {
                Ok(p) if p == peer => return Ok(true),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, addr = %a, "dialling the inviter failed"),
            }
        }
        Ok(client
            .connected_peers()
            .await
            .is_ok_and(|p| p.contains(&peer)))
    }

    /// Stops networking.
    pub(crate) async fn shutdown(&self) {
        if let Some(c) = self.client.get() {
            c.shutdown().await;
        }
    }
}
