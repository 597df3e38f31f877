//! Replication between member nodes: the wire messages, serving peers'
//! requests, ingesting deltas (fetching missing parents, falling back to a
//! snapshot when far behind) and periodic anti-entropy.
//!
//! Gossip carries each committed local delta on its context's topic and
//! each governance op on its namespace's topic. Everything else is a
//! request to one peer. Receivers never trust a sender: deltas are verified
//! and their author must be a namespace member; requests about a context or
//! namespace are answered only for members.

use std::collections::HashMap;
use std::sync::Mutex;

use borsh::{BorshDeserialize, BorshSerialize};
use mero_crdt::{ContextId, DeltaId, Hash, SignedDelta};
use mero_network::PeerId;
use mero_runtime::{Applied, ExecError, Executor, StateSnapshot};

use crate::governance::SignedOp;
use crate::invitation::SignedInvitation;

/// A request from one node to another.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Request {
    /// "I hold this invitation": answered with the namespace's governance log.
    JoinNamespace {
        /// The invitation.
        invitation: SignedInvitation,
    },
    /// "Apply and spread this op" (a joiner's `MemberJoined`).
    Submit {
        /// The op.
        op: SignedOp,
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
    /// Deltas by id.
    Deltas {
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
    /// Signed deltas (encoded); ids the responder has no body for are left
    /// out (they came to it folded into a snapshot).
    Deltas(Vec<Vec<u8>>),
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
    /// An encoded signed delta.
    Delta(Vec<u8>),
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

/// How a context's replication is doing, for the API and the logs.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// `idle`, `syncing`, `waitingForPeers` or `failed`.
    pub state: &'static str,
    /// When a peer was last compared with, Unix milliseconds.
    pub last_sync_millis: Option<u64>,
    /// Deltas merged from peers.
    pub merged: u64,
    /// Deltas refused, and the last reason.
    pub rejected: u64,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Asks one peer; the node implements it over libp2p, tests over a
/// simulated network.
pub trait Fetch: Send + Sync {
    /// Sends `req` to `peer` and waits for its answer.
    fn fetch(
        &self,
        peer: PeerId,
        req: Request,
    ) -> impl std::future::Future<Output = Result<Response, String>> + Send;
}

/// Most deltas fetched one by one before switching to a snapshot.
pub const MAX_FETCHED: usize = 2_000;
/// Most deltas held while their parents are fetched, per context.
const MAX_PENDING: usize = 10_000;

/// Deltas waiting for parents, per context.
#[derive(Debug, Default)]
pub struct Pending {
    inner: Mutex<HashMap<ContextId, HashMap<DeltaId, SignedDelta>>>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContextId, HashMap<DeltaId, SignedDelta>>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(&self, id: DeltaId, d: SignedDelta) {
        let mut all = self.lock();
        let slot = all.entry(d.delta.context).or_default();
        if slot.len() < MAX_PENDING {
            slot.insert(id, d);
        }
    }

    /// Takes the held deltas among `ids`.
    fn take_some(&self, ctx: &ContextId, ids: &[DeltaId]) -> Vec<SignedDelta> {
        let mut all = self.lock();
        let Some(slot) = all.get_mut(ctx) else {
            return Vec::new();
        };
        ids.iter().filter_map(|id| slot.remove(id)).collect()
    }

    fn take(&self, ctx: &ContextId) -> Vec<SignedDelta> {
        self.lock()
            .remove(ctx)
            .map(|m| m.into_values().collect())
            .unwrap_or_default()
    }

    /// How many deltas wait, per context.
    pub fn waiting(&self, ctx: &ContextId) -> usize {
        self.lock().get(ctx).map_or(0, HashMap::len)
    }
}

/// What ingesting did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Deltas merged.
    pub merged: u64,
    /// Deltas refused, with the last reason.
    pub rejected: u64,
    /// The last reason a delta was refused.
    pub last_rejection: Option<String>,
    /// Whether a snapshot was joined.
    pub snapshot: bool,
}

/// Merges `deltas` from `peer` into the node: fetches missing parents from
/// the same peer, retries deltas that waited for them, and joins the peer's
/// snapshot when the gap is too wide to walk. `member` says whether a key
/// may author deltas in the context.
pub async fn ingest(
    exec: &Executor,
    net: &impl Fetch,
    pending: &Pending,
    peer: PeerId,
    ctx: ContextId,
    deltas: Vec<SignedDelta>,
    member: &(dyn Fn(&[u8; 32]) -> bool + Sync),
) -> Ingested {
    let mut out = Ingested::default();
    let mut queue = deltas;
    let mut fetched = 0usize;
    let mut snapshot = false;
    while let Some(d) = queue.pop() {
        if d.delta.context != ctx {
            out.rejected += 1;
            out.last_rejection = Some("a delta of another context".into());
            continue;
        }
        if !member(&d.delta.author.0) {
            out.rejected += 1;
            let why = format!(
                "author {} is not a member of the context's namespace",
                hex::encode(d.delta.author.0)
            );
            tracing::warn!(context = %bs58::encode(ctx.0).into_string(), %why, "delta rejected");
            out.last_rejection = Some(why);
            continue;
        }
        let id = d.delta.id();
        match exec.apply_delta(d.clone()).await {
            Ok(Applied::Merged { .. }) => {
                out.merged += 1;
                // Whatever waited on it may apply now.
                queue.extend(pending.take(&ctx));
            }
            Ok(Applied::Duplicate) => {}
            Ok(Applied::MissingParents(missing)) => {
                tracing::info!(
                    context = %bs58::encode(ctx.0).into_string(),
                    delta = %bs58::encode(id.0).into_string(),
                    missing = missing.len(),
                    "delta waits for its parents; fetching them"
                );
                pending.hold(id, d);
                // Parents held from an earlier, interrupted walk go on from
                // where it stopped instead of being fetched again.
                let held = pending.take_some(&ctx, &missing);
                let missing: Vec<DeltaId> = missing
                    .into_iter()
                    .filter(|m| !held.iter().any(|h| h.delta.id() == *m))
                    .collect();
                queue.extend(held);
                if missing.is_empty() {
                    continue;
                }
                if fetched >= MAX_FETCHED {
                    snapshot = true;
                    break;
                }
                match net
                    .fetch(
                        peer,
                        Request::Deltas {
                            context: ctx.0,
                            ids: missing.clone(),
                        },
                    )
                    .await
                {
                    Ok(Response::Deltas(list)) => {
                        if list.len() < missing.len() {
                            // The peer holds them only folded into its state.
                            snapshot = true;
                        }
                        for bytes in list {
                            match SignedDelta::from_bytes(&bytes) {
                                Ok(p) => queue.push(p),
                                Err(e) => {
                                    out.rejected += 1;
                                    out.last_rejection = Some(format!("undecodable delta: {e}"));
                                }
                            }
                            fetched += 1;
                        }
                        if snapshot {
                            break;
                        }
                    }
                    Ok(other) => {
                        tracing::debug!(?other, "peer would not send deltas");
                        hold_all(pending, std::mem::take(&mut queue));
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "fetching parents failed; anti-entropy retries");
                        hold_all(pending, std::mem::take(&mut queue));
                        break;
                    }
                }
            }
            Err(ExecError::ContextNotFound) => break,
            Err(e) => {
                out.rejected += 1;
                tracing::warn!(
                    context = %bs58::encode(ctx.0).into_string(),
                    error = %e,
                    "delta rejected"
                );
                out.last_rejection = Some(e.to_string());
            }
        }
    }
    if snapshot {
        match join_snapshot(exec, net, peer, ctx).await {
            Ok(()) => {
                out.snapshot = true;
                // Deltas held for parents now find them as stubs.
                let retry = pending.take(&ctx);
                for d in retry {
                    if let Ok(Applied::Merged { .. }) = exec.apply_delta(d).await {
                        out.merged += 1;
                    }
                }
            }
            Err(e) => {
                out.last_rejection = Some(e);
            }
        }
    }
    out
}

/// Keeps deltas for a later walk (what was fetched is not fetched again).
fn hold_all(pending: &Pending, deltas: Vec<SignedDelta>) {
    for d in deltas {
        pending.hold(d.delta.id(), d);
    }
}

/// Fetches `peer`'s snapshot of `ctx` and joins it.
pub async fn join_snapshot(
    exec: &Executor,
    net: &impl Fetch,
    peer: PeerId,
    ctx: ContextId,
) -> Result<(), String> {
    match net
        .fetch(peer, Request::Snapshot { context: ctx.0 })
        .await?
    {
        Response::Snapshot(s) => {
            tracing::info!(
                context = %bs58::encode(ctx.0).into_string(),
                entries = s.ops.len(),
                deltas = s.deltas.len(),
                "joining a peer's snapshot"
            );
            exec.join_snapshot(ctx, s)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Response::Refused(why) => Err(format!("peer refused the snapshot: {why}")),
        other => Err(format!(
            "unexpected answer to a snapshot request: {other:?}"
        )),
    }
}

/// One anti-entropy round with one peer: compares heads, and pulls what
/// this node lacks. Returns what was ingested, or why it failed.
pub async fn sync_with(
    exec: &Executor,
    net: &impl Fetch,
    pending: &Pending,
    peer: PeerId,
    ctx: ContextId,
    member: &(dyn Fn(&[u8; 32]) -> bool + Sync),
) -> Result<Ingested, String> {
    let (heads, root) = match net.fetch(peer, Request::Heads { context: ctx.0 }).await? {
        Response::Heads { heads, root } => (heads, root),
        Response::Refused(why) => return Err(format!("peer refused: {why}")),
        other => return Err(format!("unexpected answer to a heads request: {other:?}")),
    };
    let snap = exec.store().snapshot().map_err(|e| e.to_string())?;
    if snap.root_hash(&ctx).map_err(|e| e.to_string())? == root {
        return Ok(Ingested::default());
    }
    let mut unknown = Vec::new();
    for h in heads {
        if !snap.has_delta(&ctx, &h).map_err(|e| e.to_string())? {
            unknown.push(h);
        }
    }
    drop(snap);
    if unknown.is_empty() {
        // The peer is behind or concurrent; it pulls from us.
        return Ok(Ingested::default());
    }
    let list = match net
        .fetch(
            peer,
            Request::Deltas {
                context: ctx.0,
                ids: unknown.clone(),
            },
        )
        .await?
    {
        Response::Deltas(list) => list,
        other => return Err(format!("unexpected answer to a deltas request: {other:?}")),
    };
    if list.len() < unknown.len() {
        join_snapshot(exec, net, peer, ctx).await?;
        return Ok(Ingested {
            snapshot: true,
            ..Ingested::default()
        });
    }
    let deltas = list
        .iter()
        .filter_map(|b| SignedDelta::from_bytes(b).ok())
        .collect();
    Ok(ingest(exec, net, pending, peer, ctx, deltas, member).await)
}

/// Answers a peer's request about a context's state. `member` says whether
/// the asking node may see the context.
pub fn serve_context(exec: &Executor, req: &Request, allowed: bool) -> Response {
    if !allowed {
        return Response::Refused("not a member of this context's namespace".into());
    }
    let run = || -> Result<Response, ExecError> {
        match req {
            Request::Heads { context } => {
                let snap = exec.store().snapshot()?;
                let ctx = ContextId(*context);
                if snap.context_meta(&ctx)?.is_none() {
                    return Ok(Response::Refused("no such context here".into()));
                }
                Ok(Response::Heads {
                    heads: snap.heads(&ctx)?,
                    root: snap.root_hash(&ctx)?,
                })
            }
            Request::Deltas { context, ids } => {
                let snap = exec.store().snapshot()?;
                let ctx = ContextId(*context);
                let mut out = Vec::new();
                for id in ids.iter().take(MAX_FETCHED) {
                    if let Some(d) = snap.delta(&ctx, id)? {
                        out.push(d.to_bytes());
                    }
                }
                Ok(Response::Deltas(out))
            }
            Request::Snapshot { context } => {
                Ok(Response::Snapshot(exec.snapshot_of(&ContextId(*context))?))
            }
            _ => Ok(Response::Refused("not a context request".into())),
        }
    };
    run().unwrap_or_else(|e| Response::Refused(e.to_string()))
}
