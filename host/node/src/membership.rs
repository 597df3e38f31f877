//! Membership: the governance of every namespace this node knows, owned
//! here and handed out as [`Arc`] snapshots; applying and persisting ops,
//! authoring this node's own (changes, subgroups, keys), invitations and
//! joining, and answering peers' governance requests.
//!
//! The fold itself is pure and lives in [`crate::governance`]; the rules of
//! who may do what are asked of [`crate::authz`]. What an applied op sets
//! off is done here: keys wrapped for this node are taken, subscribers get
//! an event, new members are dialled, and a member that left has the key
//! rotated behind it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use mero_crdt::ContextId;
use mero_executor::{MAX_CLOCK_DRIFT_MILLIS, Standing};
use mero_network::PeerId;
use mero_store::{GroupRecord, Store};

use crate::authz::{self, Denied};
use crate::blocking::blocking;
use crate::chains::ChainSignature;
use crate::error::{NodeError, Result};
use crate::events::{EventBus, Scope};
use crate::governance::invitation::{
    Condition, ConditionError, Invitation, SignedInvitation, WithConditions, parse_pasted,
};
use crate::governance::{
    AppInfo, Body, ContextHeads, Join, KeyWork, Namespace, OpId, Role, SignedOp, caps, metadata,
};
use crate::keyring::KeyRing;
use crate::peers::{Peers, unreachable};
use crate::sync::{Gossip, Request, Response, key_of, namespace_topic, peer_of};

fn now_millis() -> u64 {
    mero_crdt::hlc::wall_millis()
}

/// A subgroup of a namespace.
#[derive(Debug, Clone)]
pub struct Subgroup {
    /// Its id.
    pub id: [u8; 32],
    /// Its parent group.
    pub parent: [u8; 32],
    /// A human name.
    pub name: Option<String>,
    /// Open (inherits the parent's members) or restricted.
    pub open: bool,
    /// Its effective members.
    pub members: usize,
    /// Contexts attached to it.
    pub contexts: usize,
    /// Its own key's newest epoch, if it is restricted and has one.
    pub key_epoch: Option<u32>,
}

/// A group (the namespace itself or a subgroup) as its members see it.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    /// Its id.
    pub id: [u8; 32],
    /// Its namespace.
    pub namespace: [u8; 32],
    /// A human name.
    pub name: Option<String>,
    /// Its parent group (`None` for the namespace).
    pub parent: Option<[u8; 32]>,
    /// The application its contexts run.
    pub app: AppInfo,
    /// Its effective members.
    pub members: usize,
    /// Contexts registered in it.
    pub contexts: usize,
    /// Capabilities members get by default.
    pub default_capabilities: u32,
    /// Open or restricted (`None` for the namespace).
    pub open: Option<bool>,
    /// A digest of the governance it is folded from: equal on nodes that
    /// hold the same.
    pub state_hash: [u8; 32],
}

fn group_not_found() -> NodeError {
    NodeError::not_found("GroupNotFound", "Group not found")
}

fn namespace_not_found() -> NodeError {
    NodeError::not_found("NamespaceNotFound", "Namespace not found")
}

fn join_refused(why: impl std::fmt::Display) -> NodeError {
    let message = format!("the inviter refused the join: {why}");
    NodeError::Forbidden {
        kind: ConditionError::kind_of_message(&message).unwrap_or("JoinRefused"),
        message,
    }
}

/// A join refused for its invitation's conditions, with the condition's
/// own kind (a peer's refusal, text, is read back to it).
fn condition_refused(e: ConditionError) -> NodeError {
    NodeError::Forbidden {
        kind: e.kind(),
        message: format!("join refused: {e}"),
    }
}

/// The governance of every namespace this node knows.
pub struct Membership {
    identity: SigningKey,
    store: Store,
    state: Mutex<HashMap<[u8; 32], Arc<Namespace>>>,
    keys: KeyRing,
    events: Arc<EventBus>,
    peers: Arc<Peers>,
    /// Groups whose upgrade was folded and is still to be run here.
    upgrades: UpgradeQueue,
    /// Contexts this node follows and may not hold yet.
    follows: ContextQueue,
    /// Contexts a removal named a frontier for: this node may have merged
    /// the removed member's deltas beside it.
    heals: ContextQueue,
    /// Those of them not checked (or healed) yet: their snapshots are not
    /// served meanwhile, as they may hold what the removal refuses.
    unhealed: Mutex<std::collections::HashSet<ContextId>>,
    /// Members whose frontier this node is naming now: their deltas are
    /// not merged meanwhile.
    withheld: crate::withheld::Withheld,
    /// What the chains say, for joins gated by a token balance; set by
    /// the node once it has read its config.
    relayers: std::sync::OnceLock<crate::relayer::Relayers>,
    /// Held by the one pass of [`Membership::keep_group_keys`] running.
    key_work: tokio::sync::Mutex<()>,
    /// Set when governance changed since that pass began.
    key_work_due: AtomicBool,
}

/// Passes of [`Membership::keep_group_keys`] one call makes at most.
const KEY_WORK_PASSES: usize = 4;

/// At most this many contexts are queued at once when a member starts
/// following a group (upstream's backfill cap); later ones arrive as they
/// are registered.
pub(crate) const BACKFILL_LIMIT: usize = 1000;

/// Contexts for one of the node's tasks (auto-follow's joins, heals
/// after a removal): queued in order, each once until taken.
#[derive(Default)]
pub(crate) struct ContextQueue {
    due: Mutex<(
        std::collections::VecDeque<ContextId>,
        std::collections::HashSet<ContextId>,
    )>,
    wake: tokio::sync::Notify,
}

impl ContextQueue {
    pub(crate) fn push(&self, ctxs: impl IntoIterator<Item = ContextId>) {
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        let (order, queued) = &mut *due;
        let mut any = false;
        for c in ctxs {
            if queued.insert(c) {
                order.push_back(c);
                any = true;
            }
        }
        drop(due);
        if any {
            self.wake.notify_one();
        }
    }

    /// Waits for queued contexts and takes them, oldest first.
    pub(crate) async fn next(&self) -> Vec<ContextId> {
        loop {
            let taken: Vec<ContextId> = {
                let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
                let (order, queued) = &mut *due;
                queued.clear();
                order.drain(..).collect()
            };
            if !taken.is_empty() {
                return taken;
            }
            self.wake.notified().await;
        }
    }
}

/// Groups with a folded upgrade, for the node's upgrade task: a set (a
/// group folded twice is run once) and a wake-up.
#[derive(Default)]
pub(crate) struct UpgradeQueue {
    due: Mutex<std::collections::BTreeSet<([u8; 32], [u8; 32])>>,
    wake: tokio::sync::Notify,
}

impl UpgradeQueue {
    pub(crate) fn push(&self, ns: [u8; 32], group: [u8; 32]) {
        self.due
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((ns, group));
        self.wake.notify_one();
    }

    /// Waits for due groups and takes them (namespace, group).
    pub(crate) async fn next(&self) -> Vec<([u8; 32], [u8; 32])> {
        loop {
            let due: Vec<_> =
                std::mem::take(&mut *self.due.lock().unwrap_or_else(|p| p.into_inner()))
                    .into_iter()
                    .collect();
            if !due.is_empty() {
                return due;
            }
            self.wake.notified().await;
        }
    }
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").finish_non_exhaustive()
    }
}

impl Membership {
    /// Loads every namespace's governance log (and this node's keys) from
    /// the store.
    pub(crate) fn load(
        store: Store,
        identity: SigningKey,
        events: Arc<EventBus>,
        peers: Arc<Peers>,
    ) -> Result<Membership> {
        let snap = store.snapshot()?;
        let mut state = HashMap::new();
        for group in snap.groups()? {
            let mut ops = Vec::new();
            for bytes in snap.governance(&group.id)? {
                match borsh::from_slice::<SignedOp>(&bytes) {
                    Ok(op) => ops.push(op),
                    Err(e) => tracing::warn!(error = %e, "undecodable governance op in the store"),
                }
            }
            if ops.is_empty() {
                continue;
            }
            let mut ns = Namespace::new(group.id);
            let (_, invalid) = ns.apply_all(ops);
            for why in invalid {
                tracing::warn!(namespace = %hex::encode(group.id), %why, "stored governance op not applied");
            }
            state.insert(group.id, Arc::new(ns));
        }
        drop(snap);
        let keys = KeyRing::load(store.clone(), identity.clone())?;
        Ok(Membership {
            identity,
            store,
            state: Mutex::new(state),
            keys,
            events,
            peers,
            upgrades: UpgradeQueue::default(),
            follows: ContextQueue::default(),
            heals: ContextQueue::default(),
            unhealed: Mutex::default(),
            withheld: Default::default(),
            relayers: std::sync::OnceLock::new(),
            key_work: tokio::sync::Mutex::new(()),
            key_work_due: AtomicBool::new(false),
        })
    }

    /// Groups whose folded upgrade this node still has to run.
    pub(crate) fn upgrades(&self) -> &UpgradeQueue {
        &self.upgrades
    }

    /// Contexts this node follows and is to join on its own.
    pub(crate) fn follows(&self) -> &ContextQueue {
        &self.follows
    }

    /// Contexts a removal named a frontier for, to check for deltas of the
    /// removed member this node merged beside it.
    pub(crate) fn heals(&self) -> &ContextQueue {
        &self.heals
    }

    /// Members whose frontier this node is naming now (see
    /// [`crate::withheld`]).
    pub(crate) fn withheld(&self) -> &crate::withheld::Withheld {
        &self.withheld
    }

    /// Queues contexts for the heal task, and serves no snapshot of them
    /// until [`Membership::healed`].
    pub(crate) fn queue_heal(&self, ctxs: impl IntoIterator<Item = ContextId>) {
        let ctxs: Vec<ContextId> = ctxs.into_iter().collect();
        self.unhealed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(ctxs.iter().copied());
        self.heals.push(ctxs);
    }

    /// The heal task is done with `ctx`.
    pub(crate) fn healed(&self, ctx: &ContextId) {
        self.unhealed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ctx);
    }

    /// Whether `ctx` waits for the heal task.
    pub(crate) fn healing(&self, ctx: &ContextId) -> bool {
        self.unhealed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(ctx)
    }

    /// Every context of `state` this node follows (see
    /// [`Namespace::follows`]) but did not create, up to
    /// [`BACKFILL_LIMIT`]: a joiner's or a newly following member's
    /// backfill. Those held already are skipped by the follow task.
    pub(crate) fn followed(&self, state: &Namespace) -> Vec<ContextId> {
        let me = self.me();
        if !state.is_member(&me) {
            return Vec::new();
        }
        state
            .contexts
            .iter()
            .filter(|(id, r)| r.creator != me && state.follows(&me, id))
            .map(|(id, _)| ContextId(*id))
            .take(BACKFILL_LIMIT)
            .collect()
    }

    /// What applied ops make this node follow: every context of the
    /// namespace once it joins (or turns auto-follow on, or is admitted to
    /// a subgroup), and each context registered by another member.
    fn queue_follows(&self, state: &Namespace, applied: &[(OpId, SignedOp)]) {
        let me = self.me();
        if !state.is_member(&me) {
            return;
        }
        let backfill = applied.iter().any(|(_, op)| match &op.op.body {
            Body::MemberJoined { member, .. }
            | Body::MemberJoinedWithProofs { member, .. }
            | Body::GroupMemberAdded { member, .. } => *member == me,
            Body::AutoFollowSet {
                member, contexts, ..
            } => *member == me && *contexts,
            Body::GroupVisibilitySet { open, .. } => *open,
            _ => false,
        });
        if backfill {
            self.follows.push(self.followed(state));
            return;
        }
        let mut due = Vec::new();
        for (_, op) in applied {
            let Body::ContextRegistered { context, group, .. } = &op.op.body else {
                continue;
            };
            if op.op.author == me || !state.in_group(&me, group) {
                continue;
            }
            if state.follows(&me, context) {
                due.push(ContextId(*context));
            } else {
                tracing::info!(
                    context = %bs58::encode(context).into_string(),
                    "auto-follow: not joining context: auto-follow is off for this member in its group"
                );
            }
        }
        self.follows.push(due);
    }

    fn me(&self) -> [u8; 32] {
        self.identity.verifying_key().to_bytes()
    }

    /// This node's key and its (deterministic, ed25519) signature of `msg`:
    /// chain challenges derive their nonces from it (see `crate::chains`).
    pub(crate) fn own_signature(&self, msg: &[u8]) -> ([u8; 32], [u8; 64]) {
        let sig = ed25519_dalek::Signer::sign(&self.identity, msg);
        (self.me(), sig.to_bytes())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Namespace>>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The namespace keys this node holds.
    pub(crate) fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// A namespace's governance as it stands now.
    pub fn get(&self, ns: &[u8; 32]) -> Option<Arc<Namespace>> {
        self.lock().get(ns).cloned()
    }

    /// Every namespace's governance.
    pub(crate) fn all(&self) -> Vec<Arc<Namespace>> {
        self.lock().values().cloned().collect()
    }

    /// The namespace holding `group` (itself, or one of its subgroups).
    pub(crate) fn containing_group(&self, group: &[u8; 32]) -> Option<Arc<Namespace>> {
        let all = self.lock();
        match all.get(group) {
            Some(s) => Some(s.clone()),
            None => all.values().find(|s| s.has_group(group)).cloned(),
        }
    }

    /// The namespace that registered context `ctx`.
    pub(crate) fn registering(&self, ctx: &ContextId) -> Option<Arc<Namespace>> {
        self.lock()
            .values()
            .find(|s| s.contexts.contains_key(&ctx.0))
            .cloned()
    }

    /// The namespace a group (the namespace itself or a subgroup) is in,
    /// if this node knows it.
    pub fn namespace_of_group(&self, group: &[u8; 32]) -> Option<[u8; 32]> {
        self.containing_group(group).map(|s| s.id)
    }

    /// The executor's [`Standing`]: a delta this node authors in a
    /// namespace names the namespace's current governance heads, and is
    /// refused if this node may no longer write there.
    pub(crate) fn standing(self: &Arc<Self>, me: [u8; 32]) -> Standing {
        let members = self.clone();
        Arc::new(move |meta| {
            let Some(ns) = meta.group else {
                return Ok(Vec::new());
            };
            let state = members.get(&ns);
            authz::may_call(state.as_deref(), &me, &meta.id, true).map_err(Denied::into_exec)?;
            Ok(state
                .map(|s| s.heads.iter().copied().collect())
                .unwrap_or_default())
        })
    }

    /// Whether this node is a member of `ns`.
    pub(crate) fn is_member(&self, ns: &[u8; 32]) -> bool {
        self.get(ns).is_some_and(|s| s.is_member(&self.me()))
    }

    /// Forgets a namespace (it is deleted from this node).
    pub(crate) fn forget(&self, ns: &[u8; 32]) {
        self.lock().remove(ns);
    }

    // ------------------------------------------------------------ applying

    /// Folds `ops` into a namespace's governance, stores those applied and
    /// the group records they imply, then sets off what they mean here
    /// (keys, events, dials, a key rotation). Returns the applied ops.
    pub(crate) async fn apply(
        &self,
        ns: [u8; 32],
        ops: Vec<SignedOp>,
    ) -> Result<Vec<(OpId, SignedOp)>> {
        let (applied, state) = {
            let mut all = self.lock();
            let entry = all
                .entry(ns)
                .or_insert_with(|| Arc::new(Namespace::new(ns)));
            // An op stamped far ahead of our clock is not taken now (nor
            // stored): a later pull offers it again. Checked here, at
            // receipt, not in the fold, which replays at load whatever the
            // clock says.
            let (ops, ahead) = within_drift(ops, now_millis());
            if !ahead.is_empty() {
                tracing::warn!(
                    namespace = %hex::encode(ns),
                    count = ahead.len(),
                    "governance ops stamped over 10 minutes ahead of this node's clock refused"
                );
            }
            // Copied only if someone holds a snapshot of the old state.
            let folded = Arc::make_mut(entry);
            let (applied, invalid) = folded.apply_all(ops);
            for why in invalid {
                tracing::warn!(namespace = %hex::encode(ns), %why, "governance op refused");
            }
            (applied, entry.clone())
        };
        if applied.is_empty() {
            return Ok(applied);
        }
        self.persist(&state, &applied).await?;
        self.keys.take_wrapped(&ns, &applied).await;
        for (_, op) in &applied {
            publish_event(&self.events, &ns, op);
            match &op.op.body {
                Body::GroupUpgraded { group, .. } => self.upgrades.push(ns, *group),
                Body::MemberRemoved { frontier, .. }
                | Body::MadeReadOnly { frontier, .. }
                | Body::FrontierNamed { frontier, .. } => {
                    self.queue_heal(frontier.iter().map(|c| ContextId(c.context)))
                }
                Body::CascadeStarted { root, .. } | Body::CascadeAborted { root } => {
                    self.upgrades.push(ns, *root)
                }
                _ => {}
            }
        }
        let me = self.me();
        for (_, op) in &applied {
            match &op.op.body {
                Body::MemberJoined { member, addrs, .. }
                | Body::MemberJoinedWithProofs { member, addrs, .. } => {
                    self.peers.dial_member(&me, member, addrs).await;
                }
                Body::Create { addrs, .. } => {
                    self.peers.dial_member(&me, &op.op.author, addrs).await;
                }
                _ => {}
            }
        }
        self.queue_follows(&state, &applied);
        Box::pin(self.rotate_after_leaving(&state, &applied)).await;
        Box::pin(self.name_frontiers(&state, &applied)).await;
        Box::pin(self.keep_group_keys()).await;
        Ok(applied)
    }

    /// Stores applied ops and the group records of `state` (a namespace's
    /// name, application and subgroups, which listings read).
    async fn persist(&self, state: &Namespace, applied: &[(OpId, SignedOp)]) -> Result<()> {
        let Some(app) = state.app.clone() else {
            return Ok(());
        };
        let ns = state.id;
        let to_store = applied
            .iter()
            .map(|(id, op)| {
                borsh::to_vec(op)
                    .map(|bytes| (*id, bytes))
                    .map_err(|e| NodeError::Internal(format!("encoding a governance op: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let root_app = state.app_of(&ns).unwrap_or(&app);
        let group = GroupRecord {
            id: ns,
            name: state.name.clone(),
            application: root_app.id,
            blob: root_app.blob,
            parent: None,
            creator: state.creator,
            default_capabilities: state.default_capabilities,
            created_at_millis: state.created_millis,
        };
        let subgroups: Vec<GroupRecord> = state
            .groups
            .iter()
            .map(|(id, sub)| {
                let app = state.app_of(id).unwrap_or(&app);
                GroupRecord {
                    id: *id,
                    name: sub.name.clone(),
                    parent: Some(sub.parent),
                    created_at_millis: sub.millis,
                    creator: sub.creator,
                    application: app.id,
                    blob: app.blob,
                    ..group.clone()
                }
            })
            .collect();
        let store = self.store.clone();
        blocking(move || {
            let mut w = store.write()?;
            for (id, bytes) in &to_store {
                w.put_governance(&ns, id, bytes)?;
            }
            w.put_group(&group)?;
            for sub in &subgroups {
                w.put_group(sub)?;
            }
            w.commit()?;
            Ok(())
        })
        .await
    }

    /// A member that left still holds the namespace key: one remaining
    /// manager (the one with the smallest key, so that usually only one
    /// does) rotates it for the others.
    async fn rotate_after_leaving(&self, state: &Namespace, applied: &[(OpId, SignedOp)]) {
        let left = applied.iter().any(|(_, op)| {
            matches!(&op.op.body, Body::MemberRemoved { member, .. } if *member == op.op.author)
        });
        if !left {
            return;
        }
        let rotator = state
            .members
            .keys()
            .find(|k| state.allowed(k, caps::MANAGE_MEMBERS))
            .copied();
        if rotator != Some(self.me()) {
            return;
        }
        let remaining: Vec<[u8; 32]> = state.members.keys().copied().collect();
        if let Err(e) = self.share_key(&state.id, &remaining, true).await {
            tracing::warn!(error = %e, "rotating the key after a member left failed");
        }
    }

    /// A removal or demotion names the member's frontier only in the
    /// contexts its remover's node holds; in the others, a member manager
    /// that holds them names it when it hears (see [`Body::FrontierNamed`];
    /// if several do at once, every node keeps the first in fold order).
    async fn name_frontiers(&self, state: &Namespace, applied: &[(OpId, SignedOp)]) {
        let me = self.me();
        if !state.allowed(&me, caps::MANAGE_MEMBERS) {
            return;
        }
        for (_, op) in applied {
            let member = match &op.op.body {
                Body::MemberRemoved { member, .. } | Body::MadeReadOnly { member, .. } => member,
                _ => continue,
            };
            let Some(removal) = state.removals.get(member) else {
                continue;
            };
            if op.op.author == me || *member == me {
                continue;
            }
            let _withheld = self.withheld.withhold(*member).await;
            let frontier: Vec<ContextHeads> = match self.frontier(&state.id) {
                Ok(all) => all
                    .into_iter()
                    .filter(|c| !removal.frontier.contains_key(&c.context))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the frontier to name failed");
                    continue;
                }
            };
            if frontier.is_empty() {
                continue;
            }
            let body = Body::FrontierNamed {
                member: *member,
                frontier,
            };
            match self.change(&state.id, body).await {
                Ok(()) => tracing::info!(
                    member = %hex::encode(member),
                    "named a member's frontier in contexts its remover did not hold"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "naming a frontier its remover did not hold failed")
                }
            }
        }
    }

    // ------------------------------------------------------------ authoring

    /// Makes, applies, stores and publishes an op of this node.
    pub(crate) async fn author(&self, ns: [u8; 32], body: Body) -> Result<()> {
        let op = {
            let mut all = self.lock();
            let state = all
                .entry(ns)
                .or_insert_with(|| Arc::new(Namespace::new(ns)));
            state.make(&self.identity, now_millis(), body)
        }
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        // Sealed with the key members hold now: a rotation's new key is in
        // the op itself, for the members it is wrapped for.
        let gossip = borsh::to_vec(&Gossip::Gov(Box::new(op.clone())))
            .map_err(|e| NodeError::Internal(format!("encoding a governance op: {e}")))?;
        let sealed = self.keys.seal(&ns, &gossip);
        if self.apply(ns, vec![op]).await?.is_empty() {
            return Err(NodeError::Internal(
                "this node's own governance op was refused".into(),
            ));
        }
        // Membership is nobody else's business: without a key (a brand-new
        // namespace has no other member yet) nothing is published; members
        // that miss it pull it with anti-entropy.
        if let Some(sealed) = sealed {
            self.peers
                .publish(&namespace_topic(&ns), &Gossip::Sealed(sealed))
                .await;
        }
        Ok(())
    }

    /// Runs a governance change by this node: checked on a copy first (so a
    /// refusal changes nothing and says why), then signed, applied, stored
    /// and published.
    pub(crate) async fn change(&self, ns: &[u8; 32], body: Body) -> Result<()> {
        let state = self.get(ns).ok_or_else(group_not_found)?;
        let trial = state
            .make(&self.identity, now_millis(), body.clone())
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        authz::may_change(&state, &self.me(), &trial)?;
        self.author(*ns, body).await
    }

    /// The root op of a new namespace created by this node; returns its id.
    pub(crate) async fn create(&self, name: Option<String>, app: AppInfo) -> Result<[u8; 32]> {
        let nonce: [u8; 32] = rand::random();
        let addrs = self.peers.listen_addrs().await;
        let (state, op) = Namespace::create(
            &self.identity,
            now_millis(),
            Body::Create {
                nonce,
                name,
                app,
                default_capabilities: caps::DEFAULT,
                addrs,
            },
        )
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        let ns = state.id;
        self.lock().insert(ns, Arc::new(state));
        // Nobody else holds the namespace yet: nothing to publish.
        if self.apply(ns, vec![op]).await?.is_empty() {
            return Err(NodeError::Internal(
                "this node's Create op was refused".into(),
            ));
        }
        self.share_key(&ns, &[self.me()], true).await?;
        self.peers.subscribe(&namespace_topic(&ns)).await;
        Ok(ns)
    }

    /// Shares the namespace key with `members`: the current one, or a new
    /// epoch (`rotate`), wrapped for each.
    pub(crate) async fn share_key(
        &self,
        ns: &[u8; 32],
        members: &[[u8; 32]],
        rotate: bool,
    ) -> Result<()> {
        let newest = self.get(ns).map_or(0, |s| s.key_epoch);
        let rotate_to = match (rotate, self.keys.current(ns)) {
            (false, _) => None,
            // The namespace's first key, made by its creator.
            (true, None) if newest == 0 => Some(0),
            (true, held) => Some(
                held.map_or(newest, |(e, _)| e.max(newest))
                    .checked_add(1)
                    .ok_or_else(|| NodeError::Internal("key epochs exhausted".into()))?,
            ),
        };
        let share = self.keys.share(ns, members, rotate_to)?;
        // Published under the key members hold now; remembered after, so
        // the op is not sealed with the key it brings.
        self.author(
            *ns,
            Body::KeyShared {
                epoch: share.epoch,
                wrapped: share.wrapped,
            },
        )
        .await?;
        self.keys.remember(ns, share.epoch, share.key).await?;
        if rotate && share.epoch > 0 {
            tracing::info!(namespace = %hex::encode(ns), epoch = share.epoch, "namespace key rotated");
        }
        Ok(())
    }

    /// Makes, shares and rotates the keys of the restricted subgroups of
    /// every namespace as [`Namespace::key_work`] says this node must.
    /// One pass at a time: a call made while one runs (its own ops
    /// applied, or another peer's) marks the work dirty and the running
    /// pass goes round again.
    async fn keep_group_keys(&self) {
        self.key_work_due.store(true, Ordering::SeqCst);
        // Each pass's ops settle what it saw; the bound keeps work that
        // would not settle (a bug) from writing op after op.
        for _ in 0..KEY_WORK_PASSES {
            if !self.key_work_due.load(Ordering::SeqCst) {
                return;
            }
            let Ok(_one) = self.key_work.try_lock() else {
                return;
            };
            if !self.key_work_due.swap(false, Ordering::SeqCst) {
                continue;
            }
            let me = self.me();
            for state in self.all() {
                for work in state.key_work(&me) {
                    if let Err(e) = Box::pin(self.share_group_key(&state, &work)).await {
                        tracing::warn!(error = %e, ?work, "keeping a subgroup key failed");
                    }
                }
            }
        }
    }

    /// Does one piece of [`Namespace::key_work`].
    async fn share_group_key(&self, state: &Namespace, work: &KeyWork) -> Result<()> {
        let (group, members, rotate_to) = match work {
            KeyWork::Rotate { group, members } => {
                let next = state
                    .group_keys
                    .get(group)
                    .map_or(Some(0), |k| k.epoch.checked_add(1));
                let next =
                    next.ok_or_else(|| NodeError::Internal("key epochs exhausted".into()))?;
                (group, members, Some(next))
            }
            KeyWork::Share { group, members } => (group, members, None),
        };
        let share = self.keys.share(group, members, rotate_to)?;
        let newest = state.group_keys.get(group).map(|k| k.epoch);
        if rotate_to.is_none() && Some(share.epoch) != newest {
            // Shared, an older key would change nothing, and the work
            // would come back with every op.
            return Err(NodeError::Internal(format!(
                "this node holds epoch {} of the subgroup key, not the newest ({newest:?})",
                share.epoch
            )));
        }
        if share.wrapped.is_empty() {
            return Err(NodeError::Internal(
                "no member's key could wrap the subgroup key".into(),
            ));
        }
        self.author(
            state.id,
            Body::GroupKeyShared {
                group: *group,
                epoch: share.epoch,
                wrapped: share.wrapped,
            },
        )
        .await?;
        // Only once governance took it: a key it refused must never seal.
        self.keys.remember(group, share.epoch, share.key).await?;
        if rotate_to.is_some() {
            tracing::info!(group = %hex::encode(group), epoch = share.epoch, "subgroup key made");
        }
        Ok(())
    }

    // --------------------------------------------------------- invitations

    /// An invitation to namespace `ns`, valid for `valid_secs`, granting
    /// `invited_role`, signed by this node, with `conditions` the joiner
    /// must meet (signed with it).
    pub async fn invite(
        &self,
        ns: &[u8; 32],
        valid_secs: u64,
        invited_role: Role,
        conditions: Vec<Condition>,
    ) -> Result<(SignedInvitation, Option<String>)> {
        let state = self.get(ns).ok_or_else(namespace_not_found)?;
        authz::may_invite(&state, &self.me(), invited_role)?;
        let secs = valid_secs;
        let mut signed = SignedInvitation::sign_with(
            Invitation {
                inviter_identity: self.me(),
                group_id: *ns,
                // `secs` is the client's: it saturates, never wraps.
                expiration_timestamp: (now_millis() / 1000).saturating_add(secs),
                secret_salt: rand::random(),
                invited_role,
            },
            conditions,
            &self.identity,
        )
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        signed.inviter_addrs = self.peers.listen_addrs().await;
        signed.application_id = state.app.as_ref().map(|a| a.id);
        signed.app_key = state.app.as_ref().map(|a| a.blob);
        Ok((signed, state.name.clone()))
    }

    /// Joins namespace `ns` with a pasted invitation: verifies it, reaches
    /// the inviter, learns the namespace's governance and becomes a member.
    /// An invitation bound to chain accounts needs `signatures` of this
    /// node's `chain-challenge` by them, which travel as proofs with the
    /// join request into the admitting op (see
    /// [`Membership::join_proofs`]); without, it is refused before the
    /// inviter is asked, saying which account.
    pub async fn join_namespace(
        &self,
        ns: &[u8; 32],
        pasted: &serde_json::Value,
        signatures: &[ChainSignature],
    ) -> Result<()> {
        let invitation = parse_pasted(pasted)?;
        invitation.verify(ns, now_millis() / 1000)?;
        let inv = &invitation.invitation;
        if self.is_member(ns) {
            return Ok(());
        }
        let proofs = self.join_proofs(&invitation, signatures)?;
        // Checked here first (against no spent nonces: the namespace's are
        // the inviter's to know), so a bad proof is refused with its reason
        // before any peer is asked.
        crate::governance::invitation::check_conditions(
            &invitation.conditions,
            &proofs,
            ns,
            &self.me(),
            now_millis() / 1000,
            |_| false,
        )
        .map_err(condition_refused)?;
        let inviter = peer_of(&inv.inviter_identity)
            .ok_or_else(|| NodeError::bad("InvalidInvitation", "bad inviter key"))?;
        if !self.peers.reach(inviter, &invitation.inviter_addrs).await? {
            return Err(unreachable(
                "could not reach any member of this namespace to complete the join; make sure the inviting node is online and retry",
            ));
        }
        let request = if invitation.conditions.is_empty() {
            Request::JoinNamespace {
                invitation: Box::new(invitation.clone()),
            }
        } else {
            Request::JoinNamespaceWithConditions {
                invitation: Box::new(WithConditions(invitation.clone())),
            }
        };
        let ops = match self
            .peers
            .fetch(inviter, &request)
            .await
            .map_err(unreachable)?
        {
            Response::Governance(ops) => ops,
            Response::Refused(why) => return Err(join_refused(why)),
            other => return Err(NodeError::Internal(format!("unexpected answer: {other:?}"))),
        };
        // Learn the namespace first (in memory only, until we are in).
        let mut state = Namespace::new(*ns);
        state.apply_all(ops.clone());
        if !state.allowed(&inv.inviter_identity, caps::INVITE_MEMBERS) {
            return Err(join_refused("the inviter may not invite members"));
        }
        // A request signed with this node's key (proving it holds it); the
        // inviter admits it with an op of its own.
        let op = state
            .make(
                &self.identity,
                now_millis(),
                Body::joining(
                    self.me(),
                    invitation.clone(),
                    proofs,
                    self.peers.listen_addrs().await,
                ),
            )
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        // The answer carries the namespace key wrapped for this node.
        let shared = match self
            .peers
            .fetch(inviter, &Request::Submit { op: Box::new(op) })
            .await
            .map_err(unreachable)?
        {
            Response::Ok => Vec::new(),
            Response::Governance(more) => more,
            Response::Refused(why) => return Err(join_refused(why)),
            other => return Err(NodeError::Internal(format!("unexpected answer: {other:?}"))),
        };
        let mut all = ops;
        all.extend(shared);
        self.apply(*ns, all).await?;
        if !self.is_member(ns) {
            return Err(join_refused("the inviter did not admit this node"));
        }
        self.peers.subscribe(&namespace_topic(ns)).await;
        tracing::info!(namespace = %hex::encode(ns), "joined namespace");
        Ok(())
    }

    // -------------------------------------------------------------- groups

    /// Members of a group (a namespace, or a subgroup: its effective
    /// members): key and role.
    pub fn group_members(&self, group: &[u8; 32]) -> Result<Vec<([u8; 32], Role)>> {
        let s = self.containing_group(group).ok_or_else(group_not_found)?;
        authz::may_read_roster(&s, &self.me())?;
        Ok(s.members
            .iter()
            .filter(|(k, _)| s.in_group(k, group))
            .map(|(k, m)| (*k, m.role))
            .collect())
    }

    /// Contexts registered in a group (whether or not this node holds
    /// them): id and name.
    pub fn group_contexts(&self, group: &[u8; 32]) -> Result<Vec<([u8; 32], Option<String>)>> {
        let s = self.containing_group(group).ok_or_else(group_not_found)?;
        authz::may_read_roster(&s, &self.me())?;
        Ok(s.contexts
            .iter()
            .filter(|(_, r)| r.group == *group)
            .map(|(id, r)| (*id, r.name.clone()))
            .collect())
    }

    /// Creates a subgroup of `parent` (the namespace or a subgroup); returns
    /// its id.
    pub async fn create_group(
        &self,
        parent: &[u8; 32],
        name: Option<String>,
        open: bool,
    ) -> Result<[u8; 32]> {
        let ns = self
            .namespace_of_group(parent)
            .ok_or_else(|| NodeError::not_found("GroupNotFound", "Namespace or group not found"))?;
        let salt: [u8; 32] = rand::random();
        let group = crate::governance::scoped_id(&ns, &self.me(), &salt);
        self.change(
            &ns,
            Body::GroupCreated {
                group,
                salt,
                parent: *parent,
                name,
                open,
            },
        )
        .await?;
        Ok(group)
    }

    /// A group (a namespace or one of its subgroups) as its members see
    /// it.
    pub fn group_info(&self, group: &[u8; 32]) -> Result<GroupInfo> {
        let s = self.containing_group(group).ok_or_else(group_not_found)?;
        authz::may_read_roster(&s, &self.me())?;
        let app = s
            .app_of(group)
            .cloned()
            .ok_or_else(|| NodeError::Internal("namespace without app".into()))?;
        let sub = s.groups.get(group);
        // Nodes that hold the same governance agree on it: a digest of the
        // namespace's heads.
        let mut digest = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut digest, b"mero.group-state.v1");
        for h in &s.heads {
            sha2::Digest::update(&mut digest, h);
        }
        Ok(GroupInfo {
            id: *group,
            namespace: s.id,
            name: match sub {
                Some(g) => g.name.clone(),
                None => s.name.clone(),
            },
            parent: sub.map(|g| g.parent),
            app,
            members: s.members.keys().filter(|k| s.in_group(k, group)).count(),
            contexts: s.contexts.values().filter(|r| r.group == *group).count(),
            default_capabilities: s.default_capabilities,
            open: sub.map(|g| g.open),
            state_hash: sha2::Digest::finalize(digest).into(),
        })
    }

    /// The direct subgroups of a group: id and name.
    pub fn child_groups(&self, group: &[u8; 32]) -> Result<Vec<([u8; 32], Option<String>)>> {
        let s = self.containing_group(group).ok_or_else(group_not_found)?;
        authz::may_read_roster(&s, &self.me())?;
        Ok(s.groups
            .iter()
            .filter(|(_, g)| g.parent == *group)
            .map(|(id, g)| (*id, g.name.clone()))
            .collect())
    }

    /// The subgroups of a namespace.
    pub fn subgroups(&self, ns: &[u8; 32]) -> Result<Vec<Subgroup>> {
        let s = self.get(ns).ok_or_else(namespace_not_found)?;
        Ok(s.groups
            .iter()
            .map(|(id, sub)| Subgroup {
                id: *id,
                parent: sub.parent,
                name: sub.name.clone(),
                open: sub.open,
                members: s.members.keys().filter(|k| s.in_group(k, id)).count(),
                contexts: s.contexts.values().filter(|r| r.group == *id).count(),
                key_epoch: s
                    .is_key_group(id)
                    .then(|| s.group_keys.get(id).map(|k| k.epoch))
                    .flatten(),
            })
            .collect())
    }

    /// The namespace of a subgroup, or a clear error if `group` is not one.
    fn subgroup_namespace(&self, group: &[u8; 32]) -> Result<[u8; 32]> {
        match self.namespace_of_group(group) {
            Some(ns) if ns != *group => Ok(ns),
            Some(_) => Err(NodeError::bad(
                "NotASubgroup",
                "that is a namespace: members join it with an invitation",
            )),
            None => Err(group_not_found()),
        }
    }

    /// Admits namespace members to a subgroup.
    pub async fn add_group_members(&self, group: &[u8; 32], members: &[[u8; 32]]) -> Result<()> {
        let ns = self.subgroup_namespace(group)?;
        for m in members {
            self.change(
                &ns,
                Body::GroupMemberAdded {
                    group: *group,
                    member: *m,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Opens or restricts a subgroup.
    pub async fn set_group_visibility(&self, group: &[u8; 32], open: bool) -> Result<()> {
        let ns = self.subgroup_namespace(group)?;
        self.change(
            &ns,
            Body::GroupVisibilitySet {
                group: *group,
                open,
            },
        )
        .await
    }

    // ----------------------------------------------------------- metadata

    /// Replaces the metadata record of `target` in `group` (a namespace or
    /// a subgroup): a payload over the limits is a bad request; one this
    /// node may not set is refused by governance.
    pub async fn set_metadata(
        &self,
        group: &[u8; 32],
        target: metadata::Target,
        name: Option<String>,
        data: BTreeMap<String, String>,
    ) -> Result<()> {
        metadata::validate(name.as_deref(), &data)
            .map_err(|why| NodeError::bad("InvalidMetadata", why))?;
        let state = self.containing_group(group).ok_or_else(group_not_found)?;
        // What the record is for must exist: a 404, not a governance refusal.
        match &target {
            metadata::Target::Group => {}
            metadata::Target::Member(m) if !state.in_group(m, group) => {
                return Err(NodeError::not_found(
                    "MemberNotFound",
                    "no member of the group has that key",
                ));
            }
            metadata::Target::Context(c) if state.group_of(c) != Some(*group) => {
                return Err(NodeError::not_found(
                    "ContextNotFound",
                    "no context of the group has that id",
                ));
            }
            _ => {}
        }
        let ns = state.id;
        drop(state);
        let body = Body::MetadataSet {
            group: *group,
            target,
            name,
            data,
        };
        self.change(&ns, body).await
    }

    /// The metadata record of `target` in `group`, if one was ever set.
    pub fn metadata(
        &self,
        group: &[u8; 32],
        target: &metadata::Target,
    ) -> Result<Option<metadata::Record>> {
        let s = self.containing_group(group).ok_or_else(group_not_found)?;
        authz::may_read_roster(&s, &self.me())?;
        Ok(s.metadata.get(&(*group, *target)).cloned())
    }

    // ------------------------------------------------------------ members

    /// Sets a member's role; a demotion to read-only names the member's
    /// accepted frontier, as a removal does (its later deltas, whatever
    /// governance they name, are refused).
    pub async fn set_member_role(
        &self,
        ns: &[u8; 32],
        member: &[u8; 32],
        role: Role,
    ) -> Result<()> {
        if role != Role::ReadOnly {
            return self
                .change(
                    ns,
                    Body::RoleSet {
                        member: *member,
                        role,
                    },
                )
                .await;
        }
        let _withheld = self.withheld.withhold(*member).await;
        let body = Body::MadeReadOnly {
            member: *member,
            frontier: self.frontier(ns)?,
        };
        self.change(ns, body).await
    }

    /// Sets a member's capability mask (absolute).
    pub async fn set_member_capabilities(
        &self,
        ns: &[u8; 32],
        member: &[u8; 32],
        capabilities: u32,
    ) -> Result<()> {
        self.change(
            ns,
            Body::CapabilitiesSet {
                member: *member,
                capabilities,
            },
        )
        .await
    }

    /// A member's effective capability mask.
    pub fn member_capabilities(&self, ns: &[u8; 32], member: &[u8; 32]) -> Result<u32> {
        self.get(ns)
            .ok_or_else(group_not_found)?
            .capabilities(member)
            .ok_or_else(|| NodeError::not_found("MemberNotFound", "no such member"))
    }

    /// Removes members; what they authored before stays.
    pub async fn remove_members(&self, ns: &[u8; 32], members: &[[u8; 32]]) -> Result<()> {
        if let Some(root) = self.namespace_of_group(ns).filter(|root| root != ns) {
            // From a subgroup: its admission is withdrawn (inherited
            // membership of an open subgroup follows the parent's).
            for m in members {
                self.change(
                    &root,
                    Body::GroupMemberRemoved {
                        group: *ns,
                        member: *m,
                    },
                )
                .await?;
            }
            return Ok(());
        }
        for m in members {
            let _withheld = self.withheld.withhold(*m).await;
            let frontier = self.frontier(ns)?;
            self.change(
                ns,
                Body::MemberRemoved {
                    member: *m,
                    frontier,
                },
            )
            .await?;
        }
        // Those removed must not read what is written from now on.
        let remaining: Vec<[u8; 32]> = self
            .get(ns)
            .map(|s| s.members.keys().copied().collect())
            .unwrap_or_default();
        self.share_key(ns, &remaining, true).await
    }

    /// Sets what `member` follows in `group` (a namespace or subgroup):
    /// the member itself or an admin may.
    pub async fn set_auto_follow(
        &self,
        group: &[u8; 32],
        member: &[u8; 32],
        contexts: bool,
        subgroups: bool,
    ) -> Result<()> {
        let ns = self.namespace_of_group(group).ok_or_else(group_not_found)?;
        self.change(
            &ns,
            Body::AutoFollowSet {
                group: *group,
                member: *member,
                contexts,
                subgroups,
            },
        )
        .await
    }

    /// This node leaves a namespace: it stops being a member (what it wrote
    /// stays) and cannot rejoin; a remaining manager rotates the key.
    pub async fn leave_namespace(&self, ns: &[u8; 32]) -> Result<()> {
        let frontier = self.frontier(ns)?;
        self.change(
            ns,
            Body::MemberRemoved {
                member: self.me(),
                frontier,
            },
        )
        .await
    }

    /// What a removal made here names as the member's accepted frontier:
    /// the DAG heads of each of the namespace's contexts this node holds.
    /// Read with the member's deltas withheld from merging until the op
    /// is folded ([`crate::withheld`]).
    fn frontier(&self, ns: &[u8; 32]) -> Result<Vec<ContextHeads>> {
        let contexts: Vec<[u8; 32]> = self
            .get(ns)
            .map(|s| s.contexts.keys().copied().collect())
            .unwrap_or_default();
        let snap = self.store.snapshot()?;
        let mut out = Vec::new();
        for context in contexts {
            let heads = snap.heads(&ContextId(context))?;
            if !heads.is_empty() {
                out.push(ContextHeads {
                    context,
                    heads: heads.into_iter().map(|h| h.0).collect(),
                });
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- peers

    /// A governance op a member gossiped: applied, after pulling the log
    /// from its sender if the op's parents are not here yet.
    pub(crate) async fn receive(&self, source: PeerId, op: SignedOp) {
        let ns = op.op.namespace;
        let Some(state) = self.get(&ns) else { return };
        if !state.is_member(&self.me()) {
            return;
        }
        let waiting = op.op.parents.iter().any(|p| !state.ops.contains_key(p));
        drop(state);
        let mut ops = vec![op];
        if waiting
            && let Ok(Response::Governance(more)) = self
                .peers
                .fetch(source, &Request::Governance { namespace: ns })
                .await
        {
            ops.extend(more);
        }
        if let Err(e) = self.apply(ns, ops).await {
            tracing::warn!(error = %e, "storing governance failed");
        }
    }

    /// Pulls `ns`'s governance log from `peer` and applies it.
    /// Returns the ids of the ops the peer sent: its whole log.
    pub(crate) async fn pull(&self, ns: [u8; 32], peer: PeerId) -> Option<HashSet<OpId>> {
        let Ok(Response::Governance(ops)) = self
            .peers
            .fetch(peer, &Request::Governance { namespace: ns })
            .await
        else {
            return None;
        };
        let ids = ops.iter().filter_map(|o| o.op.id().ok()).collect();
        if let Err(e) = self.apply(ns, ops).await {
            tracing::warn!(error = %e, "storing governance failed");
        }
        Some(ids)
    }

    /// For each namespace this node is in, one connected member to pull its
    /// governance from (so ops missed while offline arrive).
    pub(crate) fn pull_sources(&self, peers: &[PeerId]) -> Vec<([u8; 32], PeerId)> {
        let me = self.me();
        self.all()
            .iter()
            .filter(|s| s.is_member(&me))
            .filter_map(|s| {
                peers
                    .iter()
                    .find(|p| key_of(p).is_some_and(|k| k != me && s.is_member(&k)))
                    .map(|p| (s.id, *p))
            })
            .collect()
    }

    /// Answers a peer's membership request: a join with an invitation, a
    /// joiner's signed request, a member's pull of the log.
    pub(crate) async fn answer(&self, asker: Option<[u8; 32]>, req: &Request) -> Response {
        let joining = match req {
            Request::JoinNamespace { invitation } => Some(&**invitation),
            Request::JoinNamespaceWithConditions { invitation } => Some(&invitation.0),
            _ => None,
        };
        match req {
            Request::JoinNamespace { .. } | Request::JoinNamespaceWithConditions { .. } => {
                let Some(invitation) = joining else {
                    return Response::Refused("not a join".into());
                };
                let ns = invitation.invitation.group_id;
                if let Err(e) = invitation.verify(&ns, now_millis() / 1000) {
                    return Response::Refused(e.to_string());
                }
                match self.get(&ns) {
                    // One that left or was removed is never admitted again:
                    // the log is not handed back to it.
                    Some(s) if asker.is_some_and(|k| s.removed.contains(&k)) => Response::Refused(
                        "a removed member cannot rejoin: the namespace's log is not handed to it"
                            .into(),
                    ),
                    // Spent by another key: the log is not handed to a
                    // holder of someone else's invitation.
                    Some(s)
                        if s.spent_invitations
                            .get(&invitation.invitation.secret_salt)
                            .is_some_and(|holder| Some(*holder) != asker) =>
                    {
                        Response::Refused(
                            "the invitation was used by another member already: ask for a new one"
                                .into(),
                        )
                    }
                    Some(s)
                        if s.allowed(
                            &invitation.invitation.inviter_identity,
                            caps::INVITE_MEMBERS,
                        ) =>
                    {
                        Response::Governance(s.ordered_ops())
                    }
                    Some(_) => Response::Refused("the inviter may not invite members".into()),
                    None => Response::Refused("this node does not know that namespace".into()),
                }
            }
            Request::Submit { op } => self.admit(asker, op).await,
            Request::Governance { namespace } => match self.get(namespace) {
                Some(s) if asker.is_some_and(|k| authz::may_read_governance(&s, &k)) => {
                    Response::Governance(s.ordered_ops())
                }
                _ => Response::Refused("not a member of that namespace".into()),
            },
            _ => Response::Refused("not a membership request".into()),
        }
    }

    /// A joiner's signed request to join: this node admits it with an op
    /// of its own (if it may) and gives it the current key.
    /// The relayers joins gated by a token balance ask (once, at start).
    pub(crate) fn set_relayers(&self, relayers: crate::relayer::Relayers) {
        let _ = self.relayers.set(relayers);
    }

    /// For each token-balance condition of `invitation`: asks the chain
    /// whether its bound account holds enough and records this node's
    /// signed attestation; refused (saying what the chain said) if not.
    async fn attest_for_join(
        &self,
        ns: &[u8; 32],
        invitation: &SignedInvitation,
    ) -> std::result::Result<(), String> {
        use crate::relayer::attestation::{self, Attestation, Claim, Statement};
        use crate::relayer::{Amount, gate};
        for cond in &invitation.conditions {
            let Condition::TokenBalance {
                chain,
                token,
                at_least,
            } = cond
            else {
                continue;
            };
            let unattested = |why: String| ConditionError::TokenBalanceUnattested(why).to_string();
            let account = gate::bound_account(&invitation.conditions, *chain)
                .ok_or_else(|| unattested(format!("the invitation binds no {chain} account")))?;
            let min = Amount::from_decimal(at_least).map_err(|e| unattested(e.to_string()))?;
            let relayers = self.relayers.get().cloned().unwrap_or_default();
            let statement = Statement::TokenBalance {
                token: token.clone(),
                account: account.to_owned(),
                at_least: min,
            };
            let (statement, reading, holds) = attestation::observe(&relayers, *chain, statement)
                .await
                .map_err(|e| {
                    unattested(format!("the admitting node cannot read the chain: {e}"))
                })?;
            if !holds {
                return Err(ConditionError::TokenBalanceTooLow(format!(
                    "{account} holds {} of {chain} token {token} at block {} ({}); the invitation asks at least {at_least}",
                    reading.value, reading.block.number, reading.network
                ))
                .to_string());
            }
            let claim = Claim {
                chain: *chain,
                network: reading.network,
                block: reading.block,
                statement,
                observed: reading.value,
                holds,
                attested_by: self.me(),
                at_millis: now_millis(),
            };
            let attestation = Attestation::sign(claim, &self.identity);
            self.change(ns, Body::ChainAttested { attestation })
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn admit(&self, asker: Option<[u8; 32]>, op: &SignedOp) -> Response {
        let ns = op.op.namespace;
        // The joiner's signed request: it holds the key it joins with.
        let Some(Join {
            member,
            invitation,
            proofs,
            addrs,
        }) = op.op.body.join()
        else {
            return Response::Refused("only join requests are accepted".into());
        };
        if !authz::is_own_join_request(op, asker) {
            return Response::Refused("a join request must be signed by the joiner".into());
        }
        // Checked against this node's clock, not the joiner's.
        if let Err(e) = invitation.verify(&ns, now_millis() / 1000) {
            return Response::Refused(e.to_string());
        }
        // A token-balance gate: this node asks the chain and records its
        // attestation first, so that every node finds it before the join.
        if let Err(why) = self.attest_for_join(&ns, invitation).await {
            return Response::Refused(why);
        }
        // The proofs travel into the admitting op, where every node checks
        // them (this node first, as it makes it).
        let body = Body::joining(*member, invitation.clone(), proofs.to_vec(), addrs.to_vec());
        if let Err(e) = self.change(&ns, body).await {
            return Response::Refused(e.to_string());
        }
        // Give the new member the current key.
        if let Err(e) = self.share_key(&ns, &[*member], false).await {
            tracing::warn!(error = %e, "sharing the namespace key failed");
        }
        match self.get(&ns) {
            Some(s) => Response::Governance(s.ordered_ops()),
            None => Response::Ok,
        }
    }
}

/// Splits `ops` into those stamped within the clock drift allowed past
/// `now` (as a delta's clock is bounded) and those further ahead.
fn within_drift(ops: Vec<SignedOp>, now: u64) -> (Vec<SignedOp>, Vec<SignedOp>) {
    ops.into_iter()
        .partition(|op| op.op.millis <= now.saturating_add(MAX_CLOCK_DRIFT_MILLIS))
}

/// The event an applied governance op makes for subscribers of its group,
/// if any.
fn publish_event(bus: &EventBus, ns: &[u8; 32], op: &SignedOp) {
    let account = |k: &[u8; 32]| serde_json::Value::String(hex::encode(k));
    let role_set = |member: &[u8; 32], role: Role| {
        let data = serde_json::json!({
            "memberAccount": account(member),
            "role": format!("{role:?}"),
        });
        (*ns, "MemberRoleSet", data)
    };
    let (group, kind, data) = match &op.op.body {
        Body::MemberJoined { .. } | Body::MemberJoinedWithProofs { .. } => {
            let Some(Join {
                member, invitation, ..
            }) = op.op.body.join()
            else {
                return;
            };
            (
                *ns,
                "MemberJoined",
                serde_json::json!({
                    "memberAccount": account(member),
                    "role": format!("{:?}", invitation.invitation.invited_role),
                }),
            )
        }
        Body::MemberRemoved { member, .. } => (
            *ns,
            "MemberRemoved",
            serde_json::json!({ "memberAccount": account(member) }),
        ),
        Body::RoleSet { member, role } => role_set(member, *role),
        Body::MadeReadOnly { member, .. } => role_set(member, Role::ReadOnly),
        Body::CapabilitiesSet {
            member,
            capabilities,
        } => (
            *ns,
            "MemberCapabilitySet",
            serde_json::json!({ "memberAccount": account(member), "capabilities": capabilities }),
        ),
        Body::ContextRegistered { context, group, .. } => (
            *group,
            "ContextRegistered",
            serde_json::json!({ "contextId": bs58::encode(context).into_string() }),
        ),
        Body::GroupCreated { group, parent, .. } => (
            *parent,
            "SubgroupCreated",
            serde_json::json!({ "subgroupId": hex::encode(group) }),
        ),
        Body::GroupMemberAdded { group, member } => (
            *group,
            "MemberAdded",
            serde_json::json!({ "memberAccount": account(member) }),
        ),
        Body::GroupMemberRemoved { group, member } => (
            *group,
            "MemberRemoved",
            serde_json::json!({ "memberAccount": account(member) }),
        ),
        Body::MetadataSet { group, target, .. } => (
            *group,
            "MetadataSet",
            match target {
                metadata::Target::Group => serde_json::json!({ "target": "group" }),
                metadata::Target::Member(m) => {
                    serde_json::json!({ "target": "member", "memberAccount": account(m) })
                }
                metadata::Target::Context(c) => serde_json::json!({
                    "target": "context",
                    "contextId": bs58::encode(c).into_string(),
                }),
            },
        ),
        Body::GroupVisibilitySet { group, open } => (
            *group,
            "SubgroupVisibilitySet",
            serde_json::json!({ "subgroupVisibility": if *open { "open" } else { "restricted" } }),
        ),
        // Upgrades have events of their own, sent as each node migrates.
        Body::Create { .. }
        | Body::KeyShared { .. }
        | Body::GroupKeyShared { .. }
        | Body::ContextDetached { .. }
        | Body::GroupUpgraded { .. }
        | Body::CascadeStarted { .. }
        | Body::AutoFollowSet { .. }
        | Body::FrontierNamed { .. } => return,
        Body::CascadeAborted { root } => (
            *ns,
            "MigrationAborted",
            serde_json::json!({ "rootGroupId": hex::encode(root) }),
        ),
        Body::ChainIdentityProven { challenge, .. } => (
            *ns,
            "ChainIdentityProven",
            serde_json::json!({
                "memberAccount": account(&op.op.author),
                "chain": challenge.chain.as_str(),
                "account": challenge.account,
            }),
        ),
        Body::ProtocolSet { target, protocol } => (
            *ns,
            "ProtocolSet",
            serde_json::json!({ "target": hex::encode(target), "protocol": protocol.as_str() }),
        ),
        Body::ChainAttested { attestation } => (
            *ns,
            "ChainAttested",
            serde_json::json!({
                "memberAccount": account(&op.op.author),
                "chain": attestation.claim.chain.as_str(),
                "blockNumber": attestation.claim.block.number,
                "holds": attestation.claim.holds,
            }),
        ),
    };
    bus.publish(Scope::Group(group), kind, None, data);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use ed25519_dalek::SigningKey;

    use super::*;

    /// A governance op stamped over the drift allowed ahead of this node's
    /// clock is set aside (a later pull offers it again), as a delta is.
    #[test]
    fn governance_ops_stamped_past_the_drift_are_set_aside() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let ns = Namespace::new([7; 32]);
        let at = |millis| {
            ns.make(
                &key,
                millis,
                Body::RoleSet {
                    member: [2; 32],
                    role: Role::Member,
                },
            )
            .unwrap()
        };
        let now = 1_000_000;
        let edge = now + MAX_CLOCK_DRIFT_MILLIS;
        let (taken, ahead) = within_drift(vec![at(now), at(edge), at(edge + 1), at(u64::MAX)], now);
        let millis = |ops: &[SignedOp]| ops.iter().map(|o| o.op.millis).collect::<Vec<_>>();
        assert_eq!(millis(&taken), [now, edge]);
        assert_eq!(millis(&ahead), [edge + 1, u64::MAX]);
    }
}
