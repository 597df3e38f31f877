//! Replication between member nodes: the wire messages, serving peers'
//! requests, ingesting deltas (fetching missing parents, falling back to a
//! snapshot when far behind) and periodic anti-entropy.
//!
//! Gossip carries each committed local delta on its context's topic and
//! each governance op on its namespace's topic. Everything else is a
//! request to one peer. Receivers never trust a sender: deltas are verified
//! and their author must be a member that may write at the governance the
//! delta names; requests about a context or namespace are answered only for
//! members.

use std::collections::HashMap;
use std::sync::Mutex;

use borsh::{BorshDeserialize, BorshSerialize};
use mero_crdt::{ContextId, Delta, DeltaId, Hash, SignedDelta};
use mero_network::PeerId;
use mero_runtime::{Applied, ExecError, Executor, StateSnapshot};

use crate::governance::{Denial, SignedOp};
use crate::invitation::SignedInvitation;

/// Judges whether a delta's author may write it, given the delta and the
/// governance heads its parents named (those of parents known here); `Err`
/// says why not, or that it cannot tell yet.
pub type Authority<'a> = dyn Fn(&Delta, &[Vec<[u8; 32]>]) -> Result<(), Denial> + Sync + 'a;

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
    /// An encoded signed delta.
    Delta(Vec<u8>),
    /// Several, in commit order.
    Deltas(Vec<Vec<u8>>),
    /// Gossip sealed with the namespace key: only members read it.
    Sealed(crate::keys::Sealed),
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

/// Most bytes of deltas one answer carries.
const MAX_ANSWER_BYTES: usize = 32 << 20;
/// Most deltas one answer carries.
pub const MAX_FETCHED: usize = 2_000;
/// Most deltas fetched in one catch-up before joining a snapshot instead.
pub const MAX_WALK: usize = 20_000;
/// Most deltas held while their parents are fetched, per context.
const MAX_PENDING: usize = 10_000;

/// Deltas waiting for parents, per context, indexed by what they wait for
/// so a merged delta releases exactly the deltas waiting on it.
#[derive(Debug, Default)]
pub struct Pending {
    inner: Mutex<HashMap<ContextId, Held>>,
}

#[derive(Debug, Default)]
struct Held {
    deltas: HashMap<DeltaId, SignedDelta>,
    by_parent: HashMap<DeltaId, Vec<DeltaId>>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContextId, Held>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(&self, id: DeltaId, d: SignedDelta, missing: &[DeltaId]) {
        let mut all = self.lock();
        let held = all.entry(d.delta.context).or_default();
        if held.deltas.len() >= MAX_PENDING && !held.deltas.contains_key(&id) {
            return;
        }
        for m in missing {
            let waiting = held.by_parent.entry(*m).or_default();
            if !waiting.contains(&id) {
                waiting.push(id);
            }
        }
        held.deltas.insert(id, d);
    }

    /// Takes the held deltas that waited on any of `merged`.
    fn released(&self, ctx: &ContextId, merged: &[DeltaId]) -> Vec<SignedDelta> {
        let mut all = self.lock();
        let Some(held) = all.get_mut(ctx) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for m in merged {
            for child in held.by_parent.remove(m).unwrap_or_default() {
                out.extend(held.deltas.remove(&child));
            }
        }
        out
    }

    /// Takes the held deltas among `ids`.
    fn take_some(&self, ctx: &ContextId, ids: &[DeltaId]) -> Vec<SignedDelta> {
        let mut all = self.lock();
        let Some(held) = all.get_mut(ctx) else {
            return Vec::new();
        };
        ids.iter().filter_map(|id| held.deltas.remove(id)).collect()
    }

    fn take(&self, ctx: &ContextId) -> Vec<SignedDelta> {
        self.lock()
            .remove(ctx)
            .map(|h| h.deltas.into_values().collect())
            .unwrap_or_default()
    }

    /// How many deltas wait, per context.
    pub fn waiting(&self, ctx: &ContextId) -> usize {
        self.lock().get(ctx).map_or(0, |h| h.deltas.len())
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
    /// Deltas set aside until the governance they name arrives.
    pub deferred: u64,
    /// Whether a snapshot was joined.
    pub snapshot: bool,
}

/// Merges `deltas` from `peer` into the node. They are applied together
/// (so they share commits); those whose parents are missing wait while the
/// parents (and their ancestors, in bulk) are fetched from the same peer;
/// when the gap is too wide, the peer's snapshot is joined instead.
/// `authority` judges whether each delta's author may write it.
pub async fn ingest(
    exec: &Executor,
    net: &impl Fetch,
    pending: &Pending,
    peer: PeerId,
    ctx: ContextId,
    deltas: Vec<SignedDelta>,
    authority: &Authority<'_>,
) -> Ingested {
    merge(exec, Some(net), pending, peer, ctx, deltas, authority).await
}

/// Merges what gossip brought without asking anyone: deltas whose parents
/// are missing are held (gossip reorders; the parents are usually a few
/// messages behind). [`resolve_pending`] fetches what is still missing.
pub async fn ingest_held(
    exec: &Executor,
    pending: &Pending,
    peer: PeerId,
    ctx: ContextId,
    deltas: Vec<SignedDelta>,
    authority: &Authority<'_>,
) -> Ingested {
    merge::<NoFetch>(exec, None, pending, peer, ctx, deltas, authority).await
}

/// Fetches from `peer` the parents that held deltas of `ctx` still miss,
/// and merges everything that then applies.
pub async fn resolve_pending(
    exec: &Executor,
    net: &impl Fetch,
    pending: &Pending,
    peer: PeerId,
    ctx: ContextId,
    authority: &Authority<'_>,
) -> Ingested {
    let held = pending.take(&ctx);
    merge(exec, Some(net), pending, peer, ctx, held, authority).await
}

/// A [`Fetch`] that never runs: the type for not fetching.
struct NoFetch;

impl Fetch for NoFetch {
    async fn fetch(&self, _: PeerId, _: Request) -> Result<Response, String> {
        Err("not fetching".into())
    }
}

async fn merge<F: Fetch>(
    exec: &Executor,
    net: Option<&F>,
    pending: &Pending,
    peer: PeerId,
    ctx: ContextId,
    deltas: Vec<SignedDelta>,
    authority: &Authority<'_>,
) -> Ingested {
    let mut out = Ingested::default();
    let mut todo = deltas;
    let mut fetched = 0usize;
    let mut snapshot = false;
    while !todo.is_empty() {
        let mut batch = Vec::with_capacity(todo.len());
        let cuts: HashMap<DeltaId, &[[u8; 32]]> = todo
            .iter()
            .map(|d| (d.delta.id(), d.delta.governance.as_slice()))
            .collect();
        let snap = exec.store().snapshot().ok();
        let judged: Vec<Result<(), Denial>> = todo
            .iter()
            .map(|d| {
                if d.delta.context != ctx {
                    return Err(Denial::Refused("a delta of another context".into()));
                }
                // A parent's governance: from this batch or the store (a
                // parent folded into a snapshot names none here).
                let parents: Vec<Vec<[u8; 32]>> = d
                    .delta
                    .parents
                    .iter()
                    .filter_map(|p| match cuts.get(p) {
                        Some(c) => Some(c.to_vec()),
                        None => snap
                            .as_ref()
                            .and_then(|s| s.delta(&ctx, p).ok().flatten())
                            .map(|x| x.delta.governance),
                    })
                    .collect();
                authority(&d.delta, &parents)
            })
            .collect();
        drop(snap);
        for (d, verdict) in std::mem::take(&mut todo).into_iter().zip(judged) {
            match verdict {
                Ok(()) => batch.push(d),
                // Not a refusal: fetched and judged again once the
                // governance it names has arrived (anti-entropy pulls it).
                Err(Denial::NotYet(why)) => {
                    out.deferred += 1;
                    tracing::debug!(context = %bs58::encode(ctx.0).into_string(), %why, "delta deferred");
                }
                Err(Denial::Refused(why)) => {
                    out.rejected += 1;
                    tracing::warn!(context = %bs58::encode(ctx.0).into_string(), %why, "delta rejected");
                    out.last_rejection = Some(why);
                }
            }
        }
        // Submitted together, in order: parents before children share a batch.
        let results =
            futures::future::join_all(batch.iter().map(|d| exec.apply_delta(d.clone()))).await;
        let mut merged = Vec::new();
        let mut missing: Vec<DeltaId> = Vec::new();
        let mut waiting = 0usize;
        for (d, r) in batch.into_iter().zip(results) {
            match r {
                Ok(Applied::Merged { .. }) => merged.push(d.delta.id()),
                Ok(Applied::Duplicate) => {}
                Ok(Applied::MissingParents(m)) => {
                    waiting += 1;
                    pending.hold(d.delta.id(), d, &m);
                    missing.extend(m);
                }
                Err(ExecError::ContextNotFound) => return out,
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
        out.merged += merged.len() as u64;
        if !merged.is_empty() {
            // What waited on these may apply now (it is held again if not).
            todo = pending.released(&ctx, &merged);
            if !todo.is_empty() {
                continue;
            }
        }
        let Some(net) = net else {
            break;
        };
        if waiting > 0 {
            tracing::info!(
                context = %bs58::encode(ctx.0).into_string(),
                waiting,
                missing = missing.len(),
                "deltas wait for their parents; fetching them"
            );
        }
        if waiting > 0 && out.rejected > 0 {
            // A parent was refused (say its author was removed since): the
            // gap cannot be walked, but a writer's snapshot closes it.
            snapshot = true;
            break;
        }
        missing.sort_unstable();
        missing.dedup();
        // Parents held from an earlier, interrupted walk carry on from there.
        let held = pending.take_some(&ctx, &missing);
        if !held.is_empty() {
            missing.retain(|m| !held.iter().any(|h| h.delta.id() == *m));
            if missing.is_empty() {
                todo = held;
                continue;
            }
            hold_all(pending, held);
        }
        if missing.is_empty() {
            break;
        }
        if fetched >= MAX_WALK {
            snapshot = true;
            break;
        }
        let have = match exec.store().snapshot().and_then(|s| s.heads(&ctx)) {
            Ok(h) => h,
            Err(e) => {
                out.last_rejection = Some(e.to_string());
                break;
            }
        };
        match net
            .fetch(
                peer,
                Request::Deltas {
                    context: ctx.0,
                    ids: missing.clone(),
                    have,
                },
            )
            .await
        {
            Ok(Response::Deltas { deltas, folded }) => {
                if !folded.is_empty() {
                    snapshot = true;
                    break;
                }
                let got: Vec<SignedDelta> = deltas
                    .iter()
                    .filter_map(|b| SignedDelta::from_bytes(b).ok())
                    .collect();
                if got.is_empty() {
                    // The peer has not seen them either; another will.
                    break;
                }
                fetched += got.len();
                todo = got;
            }
            Ok(other) => {
                tracing::debug!(?other, "peer would not send deltas");
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, "fetching parents failed; anti-entropy retries");
                break;
            }
        }
    }
    if let (true, Some(net)) = (snapshot, net) {
        match join_snapshot(exec, net, peer, ctx).await {
            Ok(()) => {
                out.snapshot = true;
                // Deltas held for parents now find them as stubs.
                let retry = pending.take(&ctx);
                let results =
                    futures::future::join_all(retry.into_iter().map(|d| exec.apply_delta(d))).await;
                out.merged += results
                    .iter()
                    .filter(|r| matches!(r, Ok(Applied::Merged { .. })))
                    .count() as u64;
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
        let parents = d.delta.parents.clone();
        pending.hold(d.delta.id(), d, &parents);
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
    authority: &Authority<'_>,
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
    let have = exec
        .store()
        .snapshot()
        .and_then(|s| s.heads(&ctx))
        .map_err(|e| e.to_string())?;
    let list = match net
        .fetch(
            peer,
            Request::Deltas {
                context: ctx.0,
                ids: unknown.clone(),
                have,
            },
        )
        .await?
    {
        Response::Deltas { deltas, folded } => (deltas, folded),
        other => return Err(format!("unexpected answer to a deltas request: {other:?}")),
    };
    let (list, folded) = list;
    let deltas: Vec<SignedDelta> = list
        .iter()
        .filter_map(|b| SignedDelta::from_bytes(b).ok())
        .collect();
    if !folded.is_empty() {
        join_snapshot(exec, net, peer, ctx).await?;
        return Ok(Ingested {
            snapshot: true,
            ..Ingested::default()
        });
    }
    Ok(ingest(exec, net, pending, peer, ctx, deltas, authority).await)
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
            Request::Deltas { context, ids, have } => {
                let snap = exec.store().snapshot()?;
                let ctx = ContextId(*context);
                // Walk back from `ids` to what the asker has, breadth first.
                let stop: std::collections::HashSet<DeltaId> = have.iter().copied().collect();
                let mut seen: std::collections::HashSet<DeltaId> = std::collections::HashSet::new();
                let mut frontier: std::collections::VecDeque<DeltaId> =
                    ids.iter().copied().collect();
                let mut found = Vec::new();
                let mut folded = Vec::new();
                let mut bytes = 0usize;
                while let Some(id) = frontier.pop_front() {
                    if found.len() >= MAX_FETCHED || bytes >= MAX_ANSWER_BYTES {
                        break;
                    }
                    if stop.contains(&id) || !seen.insert(id) {
                        continue;
                    }
                    let Some(d) = snap.delta(&ctx, &id)? else {
                        // A stub has no body: the asker needs a snapshot.
                        if snap.has_delta(&ctx, &id)? {
                            folded.push(id);
                        }
                        continue;
                    };
                    frontier.extend(d.delta.parents.iter().copied());
                    let b = d.to_bytes();
                    bytes += b.len();
                    found.push(b);
                }
                // Parents first.
                found.reverse();
                Ok(Response::Deltas {
                    deltas: found,
                    folded,
                })
            }
            Request::Snapshot { context } => {
                Ok(Response::Snapshot(exec.snapshot_of(&ContextId(*context))?))
            }
            _ => Ok(Response::Refused("not a context request".into())),
        }
    };
    run().unwrap_or_else(|e| Response::Refused(e.to_string()))
}
