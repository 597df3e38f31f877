//! What replicas say to each other: requests to one peer and their answers,
//! what travels on gossip topics, the topic names, and the mapping between
//! node keys and libp2p peer ids. Borsh-encoded on the wire.

use borsh::{BorshDeserialize, BorshSerialize};
use mero_crdt::{ContextId, DeltaId, Hash, StateSnapshot};
use mero_network::PeerId;

use crate::governance::SignedOp;
use crate::governance::invitation::{SignedInvitation, WithConditions};
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
    /// Deltas by id, these alone (no ancestors), in the order asked, as
    /// many as fit: the bodies a snapshot names but left out for its size.
    Bodies {
        /// The context.
        context: [u8; 32],
        /// Their ids.
        ids: Vec<DeltaId>,
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
    /// The size of a blob of a context (asked by a member of it).
    BlobMeta {
        /// Its SHA-256.
        hash: [u8; 32],
        /// The context it belongs to.
        context: [u8; 32],
    },
    /// A chunk of a blob of a context.
    BlobChunk {
        /// Its SHA-256.
        hash: [u8; 32],
        /// The context it belongs to.
        context: [u8; 32],
        /// Where the chunk starts.
        offset: u64,
        /// Its length (the last one may be shorter).
        len: u32,
    },
    /// [`Request::JoinNamespace`] with an invitation that sets conditions
    /// (the plain request's encoding leaves them out).
    JoinNamespaceWithConditions {
        /// The invitation with its conditions.
        invitation: Box<WithConditions>,
    },
}

impl Request {
    /// The context a request is about, for the requests that are.
    pub fn context(&self) -> Option<ContextId> {
        match self {
            Request::Heads { context }
            | Request::Deltas { context, .. }
            | Request::Bodies { context, .. }
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
    /// A blob's size.
    BlobMeta {
        /// Bytes.
        size: u64,
    },
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
    /// A member's transient state in a context.
    Presence(Box<Presence>),
    /// A member's report of where its contexts of a namespace stand.
    Heartbeat(Box<Heartbeat>),
    /// Deltas of one context too large to gossip, by id: a member that
    /// lacks one catches the context up from its members, one answer per
    /// asker, instead of every mesh peer's queue and every gossip cache
    /// holding a copy.
    Announced {
        /// The context.
        context: ContextId,
        /// The deltas.
        deltas: Vec<DeltaId>,
    },
}

/// A member's migration report for one namespace (upstream's
/// `SignedMigrationHeartbeat`), sealed for the namespace's members, with
/// restricted subgroups' roots sealed again for theirs. Unlike upstream,
/// every counter is inside the signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Heartbeat {
    /// The namespace.
    pub namespace: [u8; 32],
    /// Who reports, and signs.
    pub author: [u8; 32],
    /// Increases with every report by this author.
    pub seq: u64,
    /// The author's clock when sent, Unix milliseconds.
    pub sent_millis: u64,
    /// The report.
    pub report: MigrationReport,
    /// Ed25519 over "mero.heartbeat.v1" ++ the Borsh encoding of the rest.
    pub signature: Vec<u8>,
}

/// Where a member's contexts of a namespace stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct MigrationReport {
    /// The lowest state version among its contexts (its group's target
    /// when it holds none).
    pub schema_version: u32,
    /// Its contexts not yet on their group's target, as it judged them.
    pub residue_auto: u32,
    /// Entries of its own it has not rewritten for the new version.
    pub authored_remaining: u64,
    /// Rewrites no peer has acknowledged yet.
    pub authored_unacknowledged: u64,
    /// Why a migration failed here, while a context is below target:
    /// `check_aborted`, `apply_failed` or `no_migration_path`.
    pub migration_failed: Option<String>,
    /// How many governance ops of the namespace it has applied.
    pub governance_ops: u64,
    /// Each of its contexts in the namespace: readers judge them against
    /// their own governance, so a report made before an upgrade was
    /// heard of never counts as migrated to it.
    pub contexts: Vec<ReportedContext>,
    /// The roots withheld from `contexts` (those of restricted subgroups'
    /// contexts), sealed with each subgroup's key: the report is sealed
    /// with the namespace's, and a root is the subgroup's to see (see
    /// [`crate::sync::sealed_roots`]).
    pub sealed_roots: Vec<Sealed>,
}

/// One context as a member reports it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ReportedContext {
    /// The context.
    pub context: [u8; 32],
    /// The component it runs.
    pub blob: [u8; 32],
    /// The state version of its layout.
    pub state_version: u32,
    /// Its root hash; `None` where it was withheld: as sent, for a
    /// context of a restricted subgroup (its root is in `sealed_roots`),
    /// and as read, where this node holds no key that opens it.
    pub root: Option<[u8; 32]>,
}

const HEARTBEAT_DOMAIN: &[u8] = b"mero.heartbeat.v1";

impl Heartbeat {
    fn message(&self) -> Result<Vec<u8>, String> {
        let body = (
            &self.namespace,
            &self.author,
            self.seq,
            self.sent_millis,
            &self.report,
        );
        signed_message(HEARTBEAT_DOMAIN, &body)
    }

    /// `report` on `namespace` by the holder of `key`, signed.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        namespace: [u8; 32],
        seq: u64,
        sent_millis: u64,
        report: MigrationReport,
    ) -> Result<Heartbeat, String> {
        let mut h = Heartbeat {
            namespace,
            author: key.verifying_key().to_bytes(),
            seq,
            sent_millis,
            report,
            signature: Vec::new(),
        };
        h.signature = sign(key, &h.message()?);
        Ok(h)
    }

    /// Whether its author signed it as it is.
    pub fn verify(&self) -> bool {
        self.message()
            .is_ok_and(|m| verify(&self.author, &self.signature, &m))
    }
}

/// `domain` ++ the Borsh encoding of `body`: what a gossiped record signs.
fn signed_message(domain: &[u8], body: &impl BorshSerialize) -> Result<Vec<u8>, String> {
    let bytes = borsh::to_vec(body).map_err(|e| e.to_string())?;
    Ok([domain, &bytes].concat())
}

fn sign(key: &ed25519_dalek::SigningKey, message: &[u8]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    key.sign(message).to_bytes().to_vec()
}

fn verify(author: &[u8; 32], signature: &[u8], message: &[u8]) -> bool {
    use ed25519_dalek::Verifier;
    let (Ok(key), Ok(sig)) = (
        ed25519_dalek::VerifyingKey::from_bytes(author),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    key.verify(message, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

/// A member's transient state in one context (upstream's ephemeral
/// presence): signed by its author, sealed for the namespace's members,
/// never stored nor part of the DAG. A later `seq` replaces an earlier one;
/// an empty `state` withdraws it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Presence {
    /// The context.
    pub context: [u8; 32],
    /// Who it is of, and who signs it.
    pub author: [u8; 32],
    /// Increases with every publication by this author.
    pub seq: u64,
    /// The author's clock when sent, Unix milliseconds.
    pub sent_millis: u64,
    /// The state; empty when withdrawn.
    pub state: Vec<u8>,
    /// Ed25519 over "mero.presence.v1" ++ the Borsh encoding of the rest.
    pub signature: Vec<u8>,
}

const PRESENCE_DOMAIN: &[u8] = b"mero.presence.v1";

impl Presence {
    fn message(&self) -> Result<Vec<u8>, String> {
        let body = (
            &self.context,
            &self.author,
            self.seq,
            self.sent_millis,
            &self.state,
        );
        signed_message(PRESENCE_DOMAIN, &body)
    }

    /// `state` of `context` by the holder of `key`, signed.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        context: [u8; 32],
        seq: u64,
        sent_millis: u64,
        state: Vec<u8>,
    ) -> Result<Presence, String> {
        let mut p = Presence {
            context,
            author: key.verifying_key().to_bytes(),
            seq,
            sent_millis,
            state,
            signature: Vec::new(),
        };
        p.signature = sign(key, &p.message()?);
        Ok(p)
    }

    /// Whether its author signed it as it is.
    pub fn verify(&self) -> bool {
        self.message()
            .is_ok_and(|m| verify(&self.author, &self.signature, &m))
    }
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
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn presence_verifies_only_as_its_author_signed_it() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let p = Presence::sign(&key, [1; 32], 7, 1_000, vec![1, 2, 3]).unwrap();
        assert!(p.verify());
        let bytes = borsh::to_vec(&Gossip::Presence(Box::new(p.clone()))).unwrap();
        match borsh::from_slice::<Gossip>(&bytes).unwrap() {
            Gossip::Presence(back) => assert_eq!(*back, p),
            other => panic!("{other:?}"),
        }
        for tampered in [
            Presence {
                seq: 8,
                ..p.clone()
            },
            Presence {
                state: vec![1, 2],
                ..p.clone()
            },
            Presence {
                author: [4; 32],
                ..p.clone()
            },
            Presence {
                signature: vec![0; 3],
                ..p
            },
        ] {
            assert!(!tampered.verify());
        }
    }

    #[test]
    fn a_peer_id_carries_its_node_key() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes();
        let peer = peer_of(&key).unwrap();
        assert_eq!(key_of(&peer), Some(key));
    }
}
