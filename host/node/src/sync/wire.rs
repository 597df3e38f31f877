//! What replicas say to each other: requests to one peer and their answers,
//! what travels on gossip topics, the topic names, and the mapping between
//! node keys and libp2p peer ids. Borsh-encoded on the wire.

use borsh::{BorshDeserialize, BorshSerialize};
use mero_crdt::{ContextId, DeltaId, Hash, StateSnapshot};
use mero_network::PeerId;

use crate::governance::SignedOp;
use crate::governance::invitation::SignedInvitation;
use crate::keys::Sealed;

/// A request from one node to another.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Request {
    /// "I hold this invitation": answered with the namespace's governance log.
    JoinNamespace {
        /// The invitation (boxed: it is most of the enum's size).
        invitation: Box<SignedInvitation>,
    },
    /// "Apply and spread this op" (a joiner's `MemberJoined`).
    Submit {
        /// The op.
        op: Box<SignedOp>,
    },
    /// The governance log of a namespace.
    Governance {
        /// The namespace.
        namespace: [u8; 32],
    },
    /// A context's DAG heads and root hash.
    Heads {
        /// The context.
        context: [u8; 32],
    },
    /// Deltas by id, with as many of their ancestors as fit, stopping at
    /// `have` (the asker's heads), parents first.
    Deltas {
        /// The context.
        context: [u8; 32],
        /// Their ids.
        ids: Vec<DeltaId>,
        /// The asker's heads: no need to go further back than these.
        have: Vec<DeltaId>,
    },
    /// A context's whole state.
    Snapshot {
        /// The context.
        context: [u8; 32],
    },
    /// A component by content hash.
    Blob {
        /// Its SHA-256.
        hash: [u8; 32],
    },
}

impl Request {
    /// The context a request is about, for the requests that are.
    pub fn context(&self) -> Option<ContextId> {
        match self {
            Request::Heads { context }
            | Request::Deltas { context, .. }
            | Request::Snapshot { context } => Some(ContextId(*context)),
            _ => None,
        }
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Response {
    /// A governance log, parents first.
    Governance(Vec<SignedOp>),
    /// Done.
    Ok,
    /// Heads and root hash.
    Heads {
        /// DAG heads.
        heads: Vec<DeltaId>,
        /// Root hash.
        root: Hash,
    },
    /// Signed deltas (encoded), parents first.
    Deltas {
        /// The deltas.
        deltas: Vec<Vec<u8>>,
        /// Asked-for ids the responder knows only folded into a snapshot it
        /// joined (no body to send): the asker needs a snapshot for those.
        folded: Vec<DeltaId>,
    },
    /// A whole state.
    Snapshot(StateSnapshot),
    /// Component bytes.
    Blob(Vec<u8>),
    /// Refused, and why.
    Refused(String),
}

/// What travels on gossip topics.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Gossip {
    /// Encoded signed deltas of one context, in commit order.
    Deltas(Vec<Vec<u8>>),
    /// Gossip sealed with the namespace key: only members read it.
    Sealed(Sealed),
    /// A governance op.
    Gov(Box<SignedOp>),
}

/// The gossip topic of a context.
pub fn context_topic(ctx: &ContextId) -> String {
    format!("mero/ctx/{}", bs58::encode(ctx.0).into_string())
}

/// The gossip topic of a namespace.
pub fn namespace_topic(ns: &[u8; 32]) -> String {
    format!("mero/ns/{}", hex::encode(ns))
}

/// The node key behind a peer id (ed25519 peer ids embed the key).
pub fn key_of(peer: &PeerId) -> Option<[u8; 32]> {
    let digest = peer.as_ref().digest();
    let public = libp2p_identity::PublicKey::try_decode_protobuf(digest).ok()?;
    Some(public.try_into_ed25519().ok()?.to_bytes())
}

/// The peer id of a node key.
pub fn peer_of(key: &[u8; 32]) -> Option<PeerId> {
    let ed = libp2p_identity::ed25519::PublicKey::try_from_bytes(key).ok()?;
    Some(libp2p_identity::PublicKey::from(ed).to_peer_id())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn a_peer_id_carries_its_node_key() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes();
        let peer = peer_of(&key).unwrap();
        assert_eq!(key_of(&peer), Some(key));
    }
}
