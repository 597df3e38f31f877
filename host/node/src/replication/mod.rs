//! The replication driver: the node's side of [`crate::sync`], over the
//! executor, the store and libp2p. It owns its tasks (see [`Tasks`]):
//!
//! - [`gossip`]: the network's event loop (gossip in, requests in, peers
//!   connecting), merging gossiped deltas in arrival order, publishing this
//!   node's committed deltas;
//! - [`catch_up`]: fetching parents still missing after a grace period,
//!   periodic anti-entropy with every writer connected, governance pulls;
//! - [`requests`]: answering peers' requests (after asking `authz`);
//! - [`replay`]: running again the migrations a snapshot's state crossed,
//!   to prove it;
//! - [`view`]: a store snapshot of one context seen as a sync DAG.
//!
//! Each session's decisions are [`Session`]'s; this module only carries
//! its steps out and records how a context's replication is doing.

mod catch_up;
mod gossip;
mod replay;
mod requests;
mod view;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mero_crdt::{ContextId, Delta, DeltaId, SignedDelta, StateSnapshot};
use mero_executor::{Applied, ExecError, Executor};
use mero_network::{NetworkEvent, PeerId};
use mero_store::{ContextMeta, Store};

use crate::authz;
use crate::events::{EventBus, Scope};
use crate::governance::{Denial, Namespace, OpId};
use crate::membership::Membership;
use crate::peers::Peers;
use crate::sync::frontier::{covers, holds_writes_of, unheard_removal};
use crate::sync::history::{self, Halted, Proof};
use crate::sync::{Authority, Ingested, Outcome, Pending, Session, Step, key_of};
use crate::tasks::Tasks;

pub(crate) use requests::MAX_BLOB_CHUNK;
pub use view::StoreView;

/// Gossiped deltas waiting to be merged.
const INBOX: usize = 8192;

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
    /// Attempts failed in a row (0 once one succeeds).
    pub failures: u32,
}

impl SyncStatus {
    /// Upstream's `SyncState`, `{"state": ...}` (with `retryInSecs` when
    /// backing off), given whether the context has state yet and how soon
    /// anti-entropy tries again.
    pub fn sync_state(&self, initialized: bool, retry_in_secs: u64) -> serde_json::Value {
        match self.state {
            "failed" => serde_json::json!({"state": "backingOff", "retryInSecs": retry_in_secs}),
            "syncing" => serde_json::json!({"state": "syncing"}),
            "waitingForPeers" => serde_json::json!({"state": "waitingForPeers"}),
            // Nothing in flight, no state yet: waiting for a member to serve it.
            _ if !initialized => serde_json::json!({"state": "waitingForPeers"}),
            _ => serde_json::json!({"state": "idle"}),
        }
    }
}

/// What the driver needs of the node.
pub(crate) struct Parts {
    pub(crate) exec: Executor,
    pub(crate) store: Store,
    pub(crate) members: Arc<Membership>,
    pub(crate) peers: Arc<Peers>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) presence: Arc<crate::presence::Presences>,
    pub(crate) heartbeats: Arc<crate::heartbeats::Heartbeats>,
    pub(crate) blobs: Arc<crate::blobstore::BlobStore>,
    /// The deterministic runtime migrations run on.
    pub(crate) migrations: Arc<mero_runtime::Runtime>,
    /// Whether a snapshot that cannot be proven is taken on its sender's
    /// word (`snapshots.take_unproven`).
    pub(crate) take_unproven: bool,
    pub(crate) me: [u8; 32],
    /// How often anti-entropy runs.
    pub(crate) every: Duration,
}

/// The anti-entropy rounds asked for since the last one began.
#[derive(Debug, Default)]
pub(crate) struct Asked {
    all: bool,
    some: HashSet<ContextId>,
}

impl Asked {
    /// Which contexts the next round compares (`None`: every one), and
    /// forgets the asks it answers. A periodic round, an ask for all, or a
    /// bare wake-up (a peer connecting) covers every context.
    fn take(&mut self, timer: bool) -> Option<HashSet<ContextId>> {
        let some = std::mem::take(&mut self.some);
        let all = std::mem::take(&mut self.all);
        (!timer && !all && !some.is_empty()).then_some(some)
    }
}

/// The replication driver of one node.
pub(crate) struct Replicator {
    parts: Parts,
    tasks: Tasks,
    pending: Pending,
    /// Contexts whose missing parents are being fetched.
    resolving: Mutex<HashSet<ContextId>>,
    status: Mutex<HashMap<ContextId, SyncStatus>>,
    /// Peers that sent snapshots failing verification, and how many.
    marks: Mutex<HashMap<PeerId, u32>>,
    sync_now: tokio::sync::Notify,
    /// What the wake-ups of `sync_now` asked for.
    asked: Mutex<Asked>,
    /// Deltas from gossip, merged in arrival order by one task.
    inbox: tokio::sync::mpsc::Sender<(PeerId, SignedDelta)>,
    inbox_rx: Mutex<Option<tokio::sync::mpsc::Receiver<(PeerId, SignedDelta)>>>,
    /// Gossip messages the network refused on this node's word (malformed,
    /// or from a key no namespace here admitted: unsealed deltas, or sealed
    /// bytes no key here opens), since start: what an operator looks at
    /// when a stranger floods.
    refused_gossip: AtomicU64,
}

fn now_millis() -> u64 {
    mero_crdt::hlc::wall_millis()
}

impl Replicator {
    /// A driver, not yet running.
    pub(crate) fn new(parts: Parts) -> Arc<Replicator> {
        let (inbox, rx) = tokio::sync::mpsc::channel(INBOX);
        Arc::new(Replicator {
            parts,
            tasks: Tasks::default(),
            pending: Pending::default(),
            resolving: Mutex::default(),
            status: Mutex::default(),
            marks: Mutex::default(),
            sync_now: tokio::sync::Notify::new(),
            asked: Mutex::default(),
            inbox,
            inbox_rx: Mutex::new(Some(rx)),
            refused_gossip: AtomicU64::new(0),
        })
    }

    /// Gossip messages refused since start (see [`Replicator::refused_gossip`]).
    pub(crate) fn refused_gossip(&self) -> u64 {
        self.refused_gossip.load(Ordering::Relaxed)
    }

    /// Starts the driver's tasks over the network's events: dials the
    /// members it knows, then gossip, merging, publishing and anti-entropy.
    pub(crate) fn start(self: &Arc<Self>, events: tokio::sync::mpsc::Receiver<NetworkEvent>) {
        let inbox = self
            .inbox_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let me = self.clone();
        self.tasks.spawn(async move {
            let members: Vec<([u8; 32], Vec<String>)> = me
                .parts
                .members
                .all()
                .iter()
                .flat_map(|s| s.members.iter().map(|(k, m)| (*k, m.addrs.clone())))
                .collect();
            for (k, addrs) in members {
                me.parts.peers.dial_member(&me.parts.me, &k, &addrs).await;
            }
        });
        let me = self.clone();
        self.tasks.spawn(async move { me.drive(events).await });
        if let Some(inbox) = inbox {
            let me = self.clone();
            self.tasks
                .spawn(async move { me.merge_gossip(inbox).await });
        }
        let me = self.clone();
        self.tasks
            .spawn(async move { me.publish_committed().await });
        let me = self.clone();
        self.tasks.spawn(async move { me.anti_entropy().await });
    }

    /// Stops every task of the driver and waits for them.
    pub(crate) async fn shutdown(&self) {
        self.tasks.shutdown().await;
    }

    /// Asks for an anti-entropy round of every context now.
    pub(crate) fn trigger(&self) {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).all = true;
        self.sync_now.notify_one();
    }

    /// Asks for an anti-entropy round of `ctx` alone now.
    pub(crate) fn trigger_one(&self, ctx: ContextId) {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .some
            .insert(ctx);
        self.sync_now.notify_one();
    }

    /// Which contexts the round about to start compares: `None` for all.
    pub(super) fn take_asked(&self, timer: bool) -> Option<HashSet<ContextId>> {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(timer)
    }

    /// A context's replication status.
    pub(crate) fn status(&self, ctx: &ContextId) -> SyncStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(ctx)
            .cloned()
            .unwrap_or_default();
        if s.state.is_empty() {
            s.state = "idle";
        }
        s
    }

    /// Updates a context's sync status; a change of state, or a new error,
    /// is a `SyncStatus` event.
    pub(crate) fn set_status(&self, ctx: &ContextId, f: impl FnOnce(&mut SyncStatus)) {
        if !self.parts.peers.started() {
            return;
        }
        let changed = {
            let mut all = self.status.lock().unwrap_or_else(|p| p.into_inner());
            let s = all.entry(*ctx).or_default();
            let before = (s.state, s.last_error.clone());
            f(s);
            (before != (s.state, s.last_error.clone())).then(|| s.clone())
        };
        if let Some(s) = changed {
            let initialized = self
                .parts
                .store
                .snapshot()
                .and_then(|snap| snap.heads(ctx))
                .is_ok_and(|h| !h.is_empty());
            self.parts.events.publish(
                Scope::Context(*ctx),
                "SyncStatus",
                None,
                serde_json::json!({
                    "syncState": s.sync_state(initialized, self.parts.every.as_secs().max(1)),
                    "failureCount": s.failures,
                    "lastError": s.last_error,
                }),
            );
        }
    }

    /// Records what a session did.
    fn record(&self, ctx: &ContextId, r: Result<Ingested, String>) {
        if matches!(&r, Ok(i) if i.snapshot) {
            self.publish_snapshot_joined(ctx);
        }
        self.set_status(ctx, |s| {
            s.last_sync_millis = Some(now_millis());
            match r {
                Ok(i) => {
                    s.state = "idle";
                    s.failures = 0;
                    s.last_error = None;
                    s.merged += i.merged;
                    s.rejected += i.rejected;
                    if i.last_rejection.is_some() {
                        s.last_error = i.last_rejection;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "anti-entropy round failed");
                    s.state = "failed";
                    s.failures = s.failures.saturating_add(1);
                    s.last_error = Some(e);
                }
            }
        });
    }

    /// A joined snapshot changes state without deltas: subscribers get a
    /// `StateMutation` with the new root, no app events, and
    /// `"snapshot": true` (the events of the deltas it folds are not
    /// replayed).
    pub(crate) fn publish_snapshot_joined(&self, ctx: &ContextId) {
        let root = self
            .parts
            .store
            .snapshot()
            .and_then(|s| s.root_hash(ctx))
            .unwrap_or_default();
        self.parts.events.publish(
            Scope::Context(*ctx),
            "StateMutation",
            None,
            serde_json::json!({
                "newRoot": bs58::encode(root).into_string(),
                "events": [],
                "snapshot": true,
            }),
        );
    }

    /// The connected members other than `sender` that may read `ctx`: any
    /// of them may hold the signed deltas a snapshot's sender lacks.
    async fn body_sources(&self, ctx: &ContextId, sender: PeerId) -> Vec<PeerId> {
        let Some(ns) = self.namespace_of(ctx) else {
            return Vec::new();
        };
        let Ok(connected) = self.parts.peers.client() else {
            return Vec::new();
        };
        let mut peers: Vec<PeerId> = connected
            .connected_peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|p| *p != sender)
            .filter(|p| {
                key_of(p)
                    .is_some_and(|k| k != self.parts.me && authz::may_read(&ns, &k, ctx).is_ok())
            })
            .collect();
        self.by_trust(&mut peers);
        peers
    }

    /// Marks `peer` as having sent a snapshot that failed verification
    /// (it is asked last from now on, see [`Replicator::by_trust`]); returns
    /// why, for the session.
    fn refused_snapshot(&self, peer: PeerId, why: String) -> String {
        let refused = self.mark(peer);
        tracing::warn!(%peer, refused, reason = %why, "refused a peer's snapshot; the peer is marked");
        why
    }

    /// Marks `peer` as having lied; returns how often it has.
    fn mark(&self, peer: PeerId) -> u32 {
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let n = marks.entry(peer).or_default();
        *n += 1;
        *n
    }

    /// `peers`, those that sent fewer refused snapshots first (in their
    /// order otherwise).
    pub(crate) fn by_trust(&self, peers: &mut [PeerId]) {
        let marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        peers.sort_by_key(|p| marks.get(p).copied().unwrap_or(0));
    }

    /// Why `snapshot` of `ctx` may not be joined (see [`never_wrote`]).
    fn refuse_authors(&self, ctx: &ContextId, snapshot: &StateSnapshot) -> Option<String> {
        let ns = self.namespace_of(ctx)?;
        never_wrote(&ns, snapshot)
    }

    /// The namespace a context of this node belongs to, if any.
    fn namespace_of(&self, ctx: &ContextId) -> Option<Arc<Namespace>> {
        let ns = self.meta(ctx).and_then(|m| m.group)?;
        self.parts.members.get(&ns)
    }

    /// The context's metadata as committed now.
    fn meta(&self, ctx: &ContextId) -> Option<mero_store::ContextMeta> {
        self.parts
            .store
            .snapshot()
            .ok()
            .and_then(|s| s.context_meta(ctx).ok().flatten())
    }

    /// Judges deltas of `ctx` against its namespace's governance and the
    /// state layout the context runs here, as of now (a snapshot of both:
    /// later changes do not reach this judge).
    fn authority(
        &self,
        ctx: &ContextId,
    ) -> impl Fn(&Delta, &[Vec<OpId>]) -> Result<(), Denial> + Send + Sync + use<> {
        let layout = self.meta(ctx).map(|m| m.state_version);
        let judge = self.governance_judge(ctx);
        move |d: &Delta, parents: &[Vec<OpId>]| {
            judge(d, parents)?;
            authz::judge_layout(layout, d)
        }
    }

    /// Judges deltas of `ctx` against its namespace's governance alone.
    fn governance_judge(
        &self,
        ctx: &ContextId,
    ) -> impl Fn(&Delta, &[Vec<OpId>]) -> Result<(), Denial> + Send + Sync + use<> {
        let ns = self.namespace_of(ctx);
        let cuts = authz::Cuts::default();
        move |d: &Delta, parents: &[Vec<OpId>]| authz::judge(ns.as_deref(), &cuts, d, parents)
    }

    /// Whether a key may author deltas in `ctx` now.
    fn writer(&self, ctx: &ContextId) -> impl Fn(&[u8; 32]) -> bool + Sync + use<> {
        let ns = self.namespace_of(ctx);
        let ctx = *ctx;
        move |k| ns.as_deref().is_some_and(|s| authz::may_author(s, k, &ctx))
    }

    /// `preferred` if it is a connected member that may write in `ctx`,
    /// else another such peer.
    async fn writer_peer(&self, ctx: &ContextId, preferred: PeerId) -> Option<PeerId> {
        let writer = self.writer(ctx);
        if key_of(&preferred).is_some_and(|k| writer(&k)) {
            return Some(preferred);
        }
        self.parts
            .peers
            .connected()
            .await
            .into_iter()
            .find(|p| key_of(p).is_some_and(|k| k != self.parts.me && writer(&k)))
    }

    /// Carries a session's steps out with `peer` until it is done.
    async fn run(
        &self,
        session: &mut Session<'_>,
        step: Step,
        peer: PeerId,
        ctx: ContextId,
        authority: &Authority<'_>,
    ) -> Result<Ingested, String> {
        self.run_replacing(session, step, peer, ctx, authority, Joining::default())
            .await
    }

    /// [`run`](Self::run), joining a snapshot as `joining` says; when it
    /// replaces the context's state, that is dropped (and the record made
    /// its own) once the peer's snapshot is here, right before it is
    /// joined: a peer that sends none leaves it as it was, and so does one
    /// whose snapshot is not taken.
    async fn run_replacing(
        &self,
        session: &mut Session<'_>,
        mut step: Step,
        peer: PeerId,
        ctx: ContextId,
        authority: &Authority<'_>,
        mut joining: Joining<'_>,
    ) -> Result<Ingested, String> {
        loop {
            step = match step {
                Step::Apply(batch) => {
                    let outcomes = self.apply(batch).await;
                    session.applied(outcomes, &self.view(ctx)?, authority)
                }
                Step::Fetch(req) => {
                    let answer = self.parts.peers.fetch(peer, &req).await;
                    session.answered(answer, &self.view(ctx)?, authority)
                }
                Step::Refuse(deltas) => {
                    let recorded = self
                        .parts
                        .exec
                        .record_refused(ctx, deltas)
                        .await
                        .map_err(|e| e.to_string());
                    session.recorded(recorded, &self.view(ctx)?, authority)
                }
                Step::Join(snapshot) => {
                    let joined = self.join(snapshot, peer, ctx, &mut joining).await;
                    session.joined(joined, &self.view(ctx)?, authority)
                }
                Step::Done(r) => return r,
            };
        }
    }

    /// Checks `peer`'s snapshot of `ctx` and joins it; when `joining`
    /// replaces the context's state, that is dropped first, only once the
    /// snapshot passed every check (then the replacement is taken).
    async fn join(
        &self,
        mut snapshot: StateSnapshot,
        peer: PeerId,
        ctx: ContextId,
        joining: &mut Joining<'_>,
    ) -> Result<(), String> {
        let taking = joining.replace.as_ref().map(|(_, t)| t);
        let vouched = taking.is_some_and(|t| t.roots.is_some());
        // Not the sender's fault: it has not caught up, or has not healed.
        if let Some(why) = self.not_yet(&ctx, &snapshot, taking) {
            return Err(why.into());
        }
        // Checked before anything is dropped: a state no member vouched
        // for is not taken.
        if taking
            .and_then(|t| t.roots)
            .is_some_and(|r| !holds_a_root(&snapshot, &vouching(r, key_of(&peer))))
        {
            return Err(self.refused_snapshot(
                peer,
                "the snapshot's state is not one the members reported (its root is none of the roots in their signed reports)".into(),
            ));
        }
        tracing::info!(
            context = %bs58::encode(ctx.0).into_string(),
            entries = snapshot.ops.len(),
            deltas = snapshot.deltas.len(),
            "joining a peer's snapshot"
        );
        // The sender's governance first: a delta this node authors on the
        // joined heads must name governance covering what their deltas
        // named. Not the sender's fault if it is behind: it may hear soon.
        if let Some(ns) = self.namespace_of(&ctx) {
            let theirs = self.parts.members.pull(ns.id, peer).await;
            if let Some(why) = unheard_removal(&ns, &ctx, theirs.as_ref()) {
                return Err(why);
            }
        }
        // Proven from the signed deltas it carries, and those it left out
        // for its size, fetched from it now; else refused, unless members
        // vouched for its root or the operator takes such a state on its
        // sender's word: then only its entries are kept (a delta kept with
        // its body is one this node judged).
        let started = std::time::Instant::now();
        let mut filling = history::Filling::new(ctx, &snapshot);
        while let Some(page) = filling.next() {
            let answer = self.parts.peers.fetch(peer, &page).await;
            match filling.answered(&mut snapshot, answer) {
                Ok(()) => {}
                Err(Halted::Forged(why)) => return Err(self.refused_snapshot(peer, why)),
                Err(Halted::NotYet(why)) => return Err(why),
            }
        }
        if filling.fetched() > 0 {
            tracing::info!(
                context = %bs58::encode(ctx.0).into_string(),
                fetched = filling.fetched(),
                elapsed_ms = started.elapsed().as_millis(),
                "fetched the signed deltas the snapshot left out for its size"
            );
        }
        // Those its sender holds by id alone (it joined a snapshot that
        // could not be proven) may be held whole by another member: a
        // signed delta is checked the same whoever sends it.
        if filling.ask_elsewhere() {
            let before = filling.fetched();
            for other in self.body_sources(&ctx, peer).await {
                while let Some(page) = filling.next() {
                    let answer = self.parts.peers.fetch(other, &page).await;
                    match filling.answered(&mut snapshot, answer) {
                        Ok(()) => {}
                        Err(Halted::Forged(why)) => {
                            let refused = self.mark(other);
                            tracing::warn!(peer = %other, refused, reason = %why, "refused a peer's answer for a snapshot's deltas; the peer is marked");
                            break;
                        }
                        Err(Halted::NotYet(_)) => break,
                    }
                }
                if !filling.ask_elsewhere() {
                    break;
                }
            }
            if filling.fetched() > before {
                tracing::info!(
                    context = %bs58::encode(ctx.0).into_string(),
                    fetched = filling.fetched() - before,
                    "fetched from other members the signed deltas the snapshot's sender holds by id alone"
                );
            }
        }
        // Work in proportion to the deltas (a signature each, the state
        // rebuilt): off the async threads. Judged by the governance as it
        // is now, with the sender's just pulled.
        let started = std::time::Instant::now();
        // The state versions its deltas were written under are the
        // prover's to judge, against the upgrades it crossed.
        let judge = self.governance_judge(&ctx);
        let latest = mero_executor::latest_allowed();
        let crossings = self.crossings(&ctx);
        let upgrades: Vec<history::Crossing> = crossings.iter().map(|(c, _)| c.clone()).collect();
        let (mut snapshot, proof) = tokio::task::spawn_blocking(move || {
            let proof = history::prove(&ctx, &snapshot, latest, &judge, &upgrades);
            (snapshot, proof)
        })
        .await
        .map_err(|e| format!("proving the snapshot failed: {e}"))?;
        let proof = match proof {
            Proof::Replay(replay) => self.replay(ctx, peer, *replay, &crossings).await,
            other => other,
        };
        match proof {
            Proof::Proven => tracing::info!(
                context = %bs58::encode(ctx.0).into_string(),
                deltas = snapshot.bodies.len(),
                elapsed_ms = started.elapsed().as_millis(),
                "proved the snapshot's entries from its signed deltas"
            ),
            Proof::Unproven(why) if joining.proven => {
                return Err(format!(
                    "its entries cannot be proven from signed deltas ({why}); a member whose can is asked first"
                ));
            }
            // Taken only if the members' signed reports vouched for its
            // root (checked above), or the operator said so.
            Proof::Unproven(why) if !self.parts.take_unproven && !vouched => {
                tracing::warn!(
                    context = %bs58::encode(ctx.0).into_string(),
                    %why,
                    "refused a snapshot whose entries cannot be proven from signed deltas (`snapshots.take_unproven` takes it on its sender's word)"
                );
                return Err(format!(
                    "its entries cannot be proven from signed deltas ({why}); this node refuses such a snapshot"
                ));
            }
            Proof::Unproven(why) => {
                tracing::info!(
                    context = %bs58::encode(ctx.0).into_string(),
                    %why,
                    "the snapshot's entries cannot be proven from signed deltas; taken on its sender's word"
                );
                snapshot.bodies.clear();
                snapshot.refused.clear();
            }
            Proof::NotYet(why) => return Err(why),
            Proof::Forged(why) => return Err(self.refused_snapshot(peer, why)),
            Proof::Replay(_) => return Err("its migrations were not run again".into()),
        }
        // Verified before anything is dropped: an entry stamped by a key
        // that never could write is refused as on the delta path, and so
        // is a state that could not be a replica's.
        let checked = match self.refuse_authors(&ctx, &snapshot) {
            Some(why) => Err(why),
            None => Executor::check_snapshot(snapshot).map_err(|e| e.to_string()),
        };
        let snapshot = checked.map_err(|why| self.refused_snapshot(peer, why))?;
        if let Some((meta, _)) = joining.replace.take() {
            self.parts
                .exec
                .reset_context(meta)
                .await
                .map_err(|e| format!("dropping the replicated state failed: {e}"))?;
        }
        self.parts
            .exec
            .join_snapshot(ctx, snapshot)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Why a snapshot is not taken yet, through no fault of its sender:
    /// when replacing, it lacks what the deltas offered again build on, or
    /// holds writes of deltas being dropped; in any join, it holds writes
    /// of deltas refused for good here (the sender merged them before it
    /// learned of a removal, and has not healed yet).
    fn not_yet(
        &self,
        ctx: &ContextId,
        snapshot: &StateSnapshot,
        taking: Option<&Taking<'_>>,
    ) -> Option<&'static str> {
        const HOLDS_REFUSED: &str = "the snapshot holds writes of deltas refused for good here (a removed member's beside its removal's frontier)";
        let refused = self.refused_for_good(ctx);
        if let Some(t) = taking {
            if !covers(snapshot, t.kept, &[t.dropping, &refused].concat()) {
                return Some("the snapshot lacks deltas the ones this node holds build on");
            }
            if holds_writes_of(snapshot, t.dropping) {
                return Some(HOLDS_REFUSED);
            }
        }
        holds_writes_of(snapshot, &refused).then_some(HOLDS_REFUSED)
    }

    fn view(&self, ctx: ContextId) -> Result<StoreView<'_>, String> {
        StoreView::new(&self.parts.exec, ctx).map_err(|e| e.to_string())
    }

    /// Merges `batch`, but for the deltas of members whose frontier this
    /// node is naming now: those are refused for now, and judged again
    /// once the op naming it is folded (see [`crate::withheld`]).
    async fn apply(&self, batch: Vec<SignedDelta>) -> Vec<Outcome> {
        let (_merging, withheld) = self.parts.members.withheld().merging().await;
        let held: Vec<bool> = batch
            .iter()
            .map(|d| withheld.contains(&d.delta.author.0))
            .collect();
        if !held.contains(&true) {
            return apply_through(&self.parts.exec, batch).await;
        }
        let merged = batch
            .into_iter()
            .zip(&held)
            .filter(|(_, h)| !**h)
            .map(|(d, _)| d)
            .collect();
        let mut applied = apply_through(&self.parts.exec, merged).await.into_iter();
        let withheld = || {
            Outcome::Refused(
                "its author's frontier is being named here: judged again once it is".into(),
            )
        };
        held.into_iter()
            .map(|h| {
                if h {
                    withheld()
                } else {
                    applied.next().unwrap_or_else(withheld)
                }
            })
            .collect()
    }

    /// Fetches `peer`'s snapshot of `ctx` and joins it (a new replica's
    /// first state); with `replace`, the context's replicated state is
    /// dropped first, once a snapshot `taking` allows arrived (a resync).
    /// Deltas `taking` drops are then recorded refused, and, if it says
    /// so, the other deltas this node held are offered again: what the
    /// snapshot lacked is merged back, or refused as it would be now.
    pub(crate) async fn join_from(
        &self,
        peer: PeerId,
        ctx: ContextId,
        replace: Option<ContextMeta>,
        taking: Taking<'_>,
    ) -> Result<(), String> {
        let kept = if taking.rejudges() {
            self.held_except(&ctx, taking.dropping)?
        } else {
            Vec::new()
        };
        let taking = Taking {
            kept: &kept,
            ..taking
        };
        let mut session = Session::catch_up(ctx, &self.pending);
        let first = session.snapshot();
        let authority = self.authority(&ctx);
        // Checked only when the state is replaced: a join into a state of
        // its own keeps what this node had.
        let joining = Joining {
            replace: replace.map(|meta| (meta, taking)),
            proven: taking.proven,
        };
        self.run_replacing(&mut session, first, peer, ctx, &authority, joining)
            .await?;
        if !taking.rejudges() {
            return Ok(());
        }
        if !taking.dropping.is_empty() {
            self.parts
                .exec
                .record_refused(ctx, taking.dropping.to_vec())
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut session = Session::gossip(ctx, &self.pending);
        let step = session.offer(kept, &self.view(ctx)?, &authority);
        self.run(&mut session, step, peer, ctx, &authority).await?;
        Ok(())
    }

    /// The deltas of `ctx` this node refused for good (unreadable: none).
    fn refused_for_good(&self, ctx: &ContextId) -> Vec<SignedDelta> {
        self.parts
            .store
            .snapshot()
            .and_then(|s| s.refused_deltas(ctx))
            .unwrap_or_default()
    }

    /// Every delta of `ctx` stored here with its body, but `dropping`,
    /// oldest first.
    fn held_except(
        &self,
        ctx: &ContextId,
        dropping: &[SignedDelta],
    ) -> Result<Vec<SignedDelta>, String> {
        let drop: HashSet<DeltaId> = dropping.iter().map(|d| d.delta.id()).collect();
        let mut kept = Vec::new();
        let snap = self.parts.store.snapshot().map_err(|e| e.to_string())?;
        for id in snap.delta_ids(ctx).map_err(|e| e.to_string())? {
            if drop.contains(&id) {
                continue;
            }
            if let Some(d) = snap.delta(ctx, &id).map_err(|e| e.to_string())? {
                kept.push(d);
            }
        }
        kept.sort_by_key(|d| d.delta.hlc);
        Ok(kept)
    }
}

/// What a replacing join asks of a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Taking<'a> {
    /// Its state must be one of these roots (the members' signed reports,
    /// by reporter; see [`vouching`]), if given.
    pub(crate) roots: Option<&'a [([u8; 32], mero_crdt::Hash)]>,
    /// It must hold nothing these deltas wrote: they are being dropped.
    pub(crate) dropping: &'a [SignedDelta],
    /// Only this member's (when given).
    pub(crate) from: Option<[u8; 32]>,
    /// Whether the deltas held here are offered again once it is joined
    /// (then judged as if they arrived now); always so when dropping.
    pub(crate) rejudge: bool,
    /// The deltas to offer again (set by [`Replicator::join_from`]): a
    /// snapshot lacking what they build on is not taken.
    pub(crate) kept: &'a [SignedDelta],
    /// Only a snapshot proven from the signed deltas it carries (a first
    /// pass over several members), whether replacing or not.
    pub(crate) proven: bool,
}

/// How a session joins the peer's snapshot.
#[derive(Default)]
struct Joining<'a> {
    /// The context's replicated state is replaced: its record, and what
    /// the snapshot must hold.
    replace: Option<(ContextMeta, Taking<'a>)>,
    /// Only a snapshot proven from the signed deltas it carries.
    proven: bool,
}

impl Taking<'_> {
    fn rejudges(&self) -> bool {
        self.rejudge || !self.dropping.is_empty()
    }
}

/// Why a snapshot may not be joined into a context of `ns`, as the delta
/// path would refuse what it holds: an entry stamped by a key that never
/// had a role that writes there (a stranger, or a member read-only all
/// along), or stamped after its author lost that role (removed or made
/// read-only) by more than the clock drift deltas are allowed.
fn never_wrote(ns: &Namespace, snapshot: &StateSnapshot) -> Option<String> {
    if let Some(stranger) = snapshot
        .authors()
        .into_iter()
        .find(|a| !ns.ever_wrote(&a.0))
    {
        return Some(format!(
            "the snapshot holds an entry stamped by {}, which never had a role that writes in the namespace",
            hex::encode(stranger.0)
        ));
    }
    let (author, at, ended) = snapshot.stamps().find_map(|(author, at)| {
        let ended = ns.writes_ended_at(&author.0)?;
        (at.millis > ended.saturating_add(mero_executor::MAX_CLOCK_DRIFT_MILLIS))
            .then_some((author, at, ended))
    })?;
    Some(format!(
        "the snapshot holds an entry stamped by {} at {} ms, after it lost its role that writes at {ended} ms",
        hex::encode(author.0),
        at.millis
    ))
}

/// The reported roots that vouch for a snapshot from `sender`: those of
/// the other members that reported the context, if any did (a sender's own
/// report is its word again); else the sender's own, as in a namespace of
/// two, where no other member can speak.
fn vouching(
    roots: &[([u8; 32], mero_crdt::Hash)],
    sender: Option<[u8; 32]>,
) -> Vec<mero_crdt::Hash> {
    let others: Vec<mero_crdt::Hash> = roots
        .iter()
        .filter(|(reporter, _)| Some(*reporter) != sender)
        .map(|(_, root)| *root)
        .collect();
    if others.is_empty() {
        roots.iter().map(|(_, root)| *root).collect()
    } else {
        others
    }
}

/// Whether `snapshot`'s entries, joined into an empty state (what a
/// replacing join starts from), give one of `roots`: computed here, not
/// taken from what the sender claims.
fn holds_a_root(snapshot: &StateSnapshot, roots: &[mero_crdt::Hash]) -> bool {
    let mut state = mero_crdt::MemoryBackend::default();
    mero_crdt::apply_ops(&mut state, &snapshot.ops).is_ok_and(|root| roots.contains(&root))
}

/// Applies a session's batch through the executor: submitted together, so
/// parents before children share a commit; each result as the session's
/// [`Outcome`].
pub async fn apply_through(exec: &Executor, batch: Vec<SignedDelta>) -> Vec<Outcome> {
    let results = futures::future::join_all(batch.into_iter().map(|d| exec.apply_delta(d))).await;
    results
        .into_iter()
        .map(|r| match r {
            Ok(Applied::Merged { .. }) => Outcome::Merged,
            Ok(Applied::Duplicate) => Outcome::Duplicate,
            Ok(Applied::MissingParents(m)) => Outcome::MissingParents(m),
            Err(ExecError::ContextNotFound) => Outcome::Gone,
            Err(e) => Outcome::Refused(e.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use mero_crdt::collections::Mutator;
    use mero_crdt::{Author, Clock, MemoryBackend, NodeId, Op};

    use super::*;

    fn ctx(b: u8) -> ContextId {
        ContextId([b; 32])
    }

    /// A write through the CRDT collections, as an app's call makes it.
    type Write<'a> = &'a dyn Fn(&mut Mutator<'_, MemoryBackend>);

    /// The ops `author`'s `write` makes at 1 s on an empty state.
    fn ops_by(author: [u8; 32], write: Write<'_>) -> Vec<Op> {
        ops_at(author, 1_000, write)
    }

    /// The ops `author`'s `write` makes at `millis` on an empty state.
    fn ops_at(author: [u8; 32], millis: u64, write: Write<'_>) -> Vec<Op> {
        let (mut ops, mut state, mut clock) =
            (Vec::new(), MemoryBackend::default(), Clock::default());
        write(&mut Mutator::new(
            &mut state,
            Author(author),
            &mut clock,
            millis,
            &mut ops,
        ));
        ops
    }

    fn set(m: &mut Mutator<'_, MemoryBackend>) {
        m.put_register(&NodeId::root("m"), b"k", b"v".to_vec())
            .unwrap();
    }

    fn push(m: &mut Mutator<'_, MemoryBackend>) {
        m.authored_push(&NodeId::root("v"), b"x".to_vec(), 1)
            .unwrap();
    }

    /// A snapshot of `ops` and nothing else.
    fn snapshot(ops: Vec<Op>) -> StateSnapshot {
        StateSnapshot {
            ops,
            ..StateSnapshot::default()
        }
    }

    /// Another member's report vouches for a sender's snapshot; the
    /// sender's own counts only where no other member reported.
    #[test]
    fn a_senders_own_report_vouches_only_when_no_other_member_reported() {
        let (sender, other) = ([1; 32], [2; 32]);
        let (mine, theirs) = ([0xA; 32], [0xB; 32]);
        assert_eq!(super::vouching(&[(sender, mine)], Some(sender)), vec![mine]);
        assert_eq!(
            super::vouching(&[(sender, mine), (other, theirs)], Some(sender)),
            vec![theirs]
        );
        // A sender with no key of a member's is no reporter.
        assert_eq!(super::vouching(&[(other, theirs)], None), vec![theirs]);
    }

    #[test]
    fn a_snapshot_is_taken_only_if_its_own_entries_give_a_reported_root() {
        let ops = ops_by([1; 32], &set);
        let root = mero_crdt::apply_ops(&mut MemoryBackend::default(), &ops).unwrap();
        let mut snapshot = StateSnapshot {
            ops,
            root_hash: root,
            ..StateSnapshot::default()
        };
        assert!(holds_a_root(&snapshot, &[[9; 32], root]));
        assert!(!holds_a_root(&snapshot, &[[9; 32]]));
        // A sender that claims a reported root over other entries.
        snapshot.ops.pop();
        assert!(!holds_a_root(&snapshot, &[root]));
    }

    #[test]
    fn a_snapshot_naming_an_author_that_never_wrote_is_refused() {
        let (writer, reader) = ([1; 32], [2; 32]);
        let mut ns = Namespace::new([7; 32]);
        ns.writers.insert(writer);
        let count = |m: &mut Mutator<'_, MemoryBackend>| {
            m.counter_add(&NodeId::root("c"), 1).unwrap();
        };
        for write in [&set as Write<'_>, &count, &push] {
            assert_eq!(never_wrote(&ns, &snapshot(ops_by(writer, write))), None);
            let refused = never_wrote(&ns, &snapshot(ops_by(reader, write))).unwrap();
            assert!(refused.contains(&hex::encode(reader)), "{refused}");
        }
        // One stranger's entry among a writer's is enough.
        let mut ops = ops_by(writer, &set);
        ops.extend(ops_by([3; 32], &count));
        assert!(never_wrote(&ns, &snapshot(ops)).is_some());
    }

    /// A member removed or made read-only at `ended`: its entries from
    /// before (and within the clock drift after) are taken, not later ones,
    /// as its later deltas are not.
    #[test]
    fn a_snapshot_naming_an_entry_stamped_after_its_author_lost_its_role_is_refused() {
        let (writer, ended) = ([1; 32], 1_000_000);
        let mut ns = Namespace::new([7; 32]);
        ns.writers.insert(writer);
        ns.writes_ended.insert(writer, ended);
        let late = ended + mero_executor::MAX_CLOCK_DRIFT_MILLIS + 1;
        for write in [&set as Write<'_>, &push] {
            for at in [1_000, ended, ended + mero_executor::MAX_CLOCK_DRIFT_MILLIS] {
                assert_eq!(never_wrote(&ns, &snapshot(ops_at(writer, at, write))), None);
            }
            let refused = never_wrote(&ns, &snapshot(ops_at(writer, late, write))).unwrap();
            assert!(refused.contains("after it lost its role"), "{refused}");
        }
        // Writing again (promoted back) clears it.
        ns.writes_ended.remove(&writer);
        assert_eq!(
            never_wrote(&ns, &snapshot(ops_at(writer, late, &set))),
            None
        );
    }

    #[test]
    fn a_round_asked_for_one_context_compares_only_the_contexts_asked_for() {
        let mut a = Asked::default();
        a.some.insert(ctx(1));
        a.some.insert(ctx(2));
        assert_eq!(a.take(false), Some(HashSet::from([ctx(1), ctx(2)])));
        // Answered: a bare wake-up afterwards (a peer connecting) is a full round.
        assert_eq!(a.take(false), None);
    }

    #[test]
    fn a_periodic_round_or_an_ask_for_all_covers_every_context_and_the_asks() {
        let mut a = Asked::default();
        a.some.insert(ctx(1));
        assert_eq!(a.take(true), None);
        assert!(a.some.is_empty(), "the periodic round answered the ask");
        a.some.insert(ctx(1));
        a.all = true;
        assert_eq!(a.take(false), None);
        assert!(!a.all && a.some.is_empty());
    }
}
