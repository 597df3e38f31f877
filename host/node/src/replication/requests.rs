//! Answering peers: catch-up about a context (to members that may read
//! it), components (to members of a namespace running them), blobs of a
//! context (to its members, in chunks), and membership requests (handed to
//! [`crate::membership`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use mero_crdt::SignedDelta;
use mero_network::{GossipVerdict, PeerGuard, PeerId};

use super::{Replicator, StoreView};
use crate::authz;
use crate::sync::{Gossip, Request, Response, key_of, serve};

/// What the network asks the node before it reads a large request or
/// passes gossip on: whether a peer is a member of a namespace held here,
/// and whether a gossip message decodes and comes from a key admitted
/// here (or, sealed, opens). It holds the replicator weakly:
/// the network outlives nothing of the node's.
struct Guard(Weak<Replicator>);

impl PeerGuard for Guard {
    fn is_member(&self, peer: &PeerId) -> bool {
        let (Some(me), Some(key)) = (self.0.upgrade(), key_of(peer)) else {
            return false;
        };
        me.parts.members.all().iter().any(|ns| ns.is_member(&key))
    }

    fn check_gossip(&self, source: &PeerId, _: &str, data: &[u8]) -> GossipVerdict {
        let Some(me) = self.0.upgrade() else {
            return GossipVerdict::Ignore;
        };
        let verdict = match borsh::from_slice::<Gossip>(data) {
            // Every entry must decode: one bad entry is what a flood is made
            // of, and the node would warn about each.
            Ok(Gossip::Deltas(list)) => {
                if list.iter().all(|d| SignedDelta::from_bytes(d).is_ok()) && me.admitted(source) {
                    GossipVerdict::Accept
                } else {
                    GossipVerdict::Reject
                }
            }
            // What a key admitted here sealed is passed on unopened: only
            // the holders of its key can judge it. Anyone else's is opened
            // first (a joiner this node has not heard of yet holds the key;
            // a stranger does not), and refused unless it opens.
            Ok(Gossip::Sealed(sealed)) => {
                if me.admitted(source) || me.parts.members.keys().open(&sealed).is_some() {
                    GossipVerdict::Accept
                } else {
                    GossipVerdict::Reject
                }
            }
            // Members seal these; unsealed, the node ignores them anyway.
            Ok(
                Gossip::Gov(_)
                | Gossip::Presence(_)
                | Gossip::Heartbeat(_)
                | Gossip::Announced { .. },
            ) => GossipVerdict::Ignore,
            Err(_) => GossipVerdict::Reject,
        };
        if verdict == GossipVerdict::Reject {
            me.refused_gossip.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }
}

impl Replicator {
    /// Whether unsealed deltas from `source` are judged here: members seal
    /// what they gossip, so these come only from a key a namespace here
    /// admitted (a member, or one since removed, whose late deltas are
    /// refused by rule and recorded). A stranger's are neither judged nor
    /// passed on: each would cost every member a signature check and a
    /// warning.
    pub(super) fn admitted(&self, source: &PeerId) -> bool {
        key_of(source).is_some_and(|key| {
            self.parts
                .members
                .all()
                .iter()
                .any(|ns| ns.is_member(&key) || ns.removed.contains(&key))
        })
    }
}

/// Largest blob chunk served in one answer.
pub(crate) const MAX_BLOB_CHUNK: u32 = 1 << 20;

impl Replicator {
    /// The size of blob `hash` of `context` if `asker` may fetch it here: it
    /// may read the context, this node holds it, and the blob was announced
    /// to it.
    fn blob_servable(
        &self,
        asker: Option<[u8; 32]>,
        hash: &[u8; 32],
        context: &[u8; 32],
    ) -> Result<u64, String> {
        let ctx = mero_crdt::ContextId(*context);
        let member = asker.is_some_and(|k| {
            self.namespace_of(&ctx)
                .is_some_and(|ns| authz::may_read(&ns, &k, &ctx).is_ok())
        });
        if !member {
            return Err("not a member of this blob's context".into());
        }
        let blobs = &self.parts.blobs;
        match (blobs.announced(hash, &ctx), blobs.get(hash)) {
            (Ok(true), Ok(Some(meta))) => Ok(meta.size),
            (Ok(_), Ok(_)) => Err("no such blob of this context here".into()),
            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
        }
    }

    /// Gives the network this node's [`Guard`], once networking runs.
    ///
    /// Networking starts in `node.rs`, which should call this right after
    /// `peers.start`; until it does, the first request installs it (and
    /// before that the network trusts no peer with a large request and
    /// passes all gossip on).
    pub(crate) fn guard_network(self: &Arc<Self>) {
        if let Ok(client) = self.parts.peers.client()
            && !client.has_guard()
        {
            client.set_guard(Arc::new(Guard(Arc::downgrade(self))));
        }
    }

    pub(super) async fn on_request(self: &Arc<Self>, peer: PeerId, data: &[u8]) -> Response {
        self.guard_network();
        let req: Request = match borsh::from_slice(data) {
            Ok(r) => r,
            Err(e) => return Response::Refused(format!("undecodable request: {e}")),
        };
        let asker = key_of(&peer);
        if let Some(ctx) = req.context() {
            let allowed = asker.is_some_and(|k| {
                self.namespace_of(&ctx)
                    .is_some_and(|ns| authz::may_read(&ns, &k, &ctx).is_ok())
            });
            if !allowed {
                return Response::Refused("not a member of this context's namespace".into());
            }
            if matches!(req, Request::Snapshot { .. }) && self.parts.members.healing(&ctx) {
                return Response::Refused(
                    "this node is checking the context after a removal; ask another member".into(),
                );
            }
            let me = self.clone();
            // Reading a whole snapshot is blocking store work.
            return tokio::task::spawn_blocking(move || {
                let view = match StoreView::new(&me.parts.exec, ctx) {
                    Ok(v) => v,
                    Err(e) => return Response::Refused(e.to_string()),
                };
                match view.exists() {
                    Ok(true) => serve(&req, &view),
                    Ok(false) => Response::Refused("no such context here".into()),
                    Err(e) => Response::Refused(e.to_string()),
                }
            })
            .await
            .unwrap_or_else(|e| Response::Refused(e.to_string()));
        }
        match &req {
            Request::Blob { hash } => {
                let members = self.parts.members.all();
                let allowed = asker
                    .is_some_and(|k| authz::may_fetch_blob(members.iter().map(|s| &**s), &k, hash));
                if !allowed {
                    return Response::Refused("not a member of a namespace running it".into());
                }
                match self.parts.store.snapshot().and_then(|s| s.blob(hash)) {
                    Ok(Some(b)) => Response::Blob(b),
                    Ok(None) => Response::Refused("not stored here".into()),
                    Err(e) => Response::Refused(e.to_string()),
                }
            }
            Request::BlobMeta { hash, context } => match self.blob_servable(asker, hash, context) {
                Ok(size) => Response::BlobMeta { size },
                Err(why) => Response::Refused(why),
            },
            Request::BlobChunk {
                hash,
                context,
                offset,
                len,
            } => {
                let size = match self.blob_servable(asker, hash, context) {
                    Ok(size) => size,
                    Err(why) => return Response::Refused(why),
                };
                if *len > MAX_BLOB_CHUNK || *offset >= size {
                    return Response::Refused("chunk out of range".into());
                }
                match self.parts.blobs.read_at(hash, *offset, *len).await {
                    Ok(bytes) => Response::Blob(bytes),
                    Err(e) => Response::Refused(e.to_string()),
                }
            }
            _ => self.parts.members.answer(asker, &req).await,
        }
    }
}
