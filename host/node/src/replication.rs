//! The node on the network: governance state, invitations and joining,
//! and the task that drives replication (gossip in and out, requests from
//! peers, anti-entropy).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mero_crdt::{ContextId, Delta, SignedDelta};
use mero_network::{Multiaddr, NetworkClient, NetworkConfig, NetworkEvent, PeerId};
use mero_store::{ContextMeta, GroupRecord, MemberRecord, Role};

use crate::events::{EventBus, Scope};
use crate::governance::{AppInfo, Body, Denial, Namespace, OpId, Refused, SignedOp};
use crate::invitation::{Invitation, SignedInvitation, parse_pasted, role};
use crate::sync::{
    self, Fetch, Gossip, Pending, Request, Response, SyncStatus, context_topic, key_of,
    namespace_topic, peer_of,
};
use crate::{Node, NodeError, Result, Subgroup, blocking, caps, now_millis};

/// Largest message on the wire: a snapshot of a large context is one message.
const MAX_MESSAGE_BYTES: usize = 256 << 20;
/// Gossiped deltas waiting to be merged.
const INBOX: usize = 8192;
/// Where a node keeps its namespace keys: private storage of the
/// namespace id (never replicated).
const KEYS_SLOT: &[u8] = b"mero.namespace-keys";
/// Most bytes of deltas gossiped in one message.
const GOSSIP_BATCH_BYTES: usize = 1 << 20;
/// How long gossip gets to deliver a missing parent before it is fetched.
const PARENT_GRACE: Duration = Duration::from_millis(150);

/// The network side of a node.
pub(crate) struct Net {
    pub(crate) client: NetworkClient,
    /// Deltas from gossip, merged in arrival order by one task.
    pub(crate) inbox: tokio::sync::mpsc::Sender<(PeerId, SignedDelta)>,
    pub(crate) pending: Pending,
    /// Contexts whose missing parents are being fetched.
    pub(crate) resolving: std::sync::Mutex<std::collections::HashSet<ContextId>>,
    pub(crate) status: std::sync::Mutex<HashMap<ContextId, SyncStatus>>,
    pub(crate) sync_now: tokio::sync::Notify,
}

impl Fetch for NetworkClient {
    async fn fetch(&self, peer: PeerId, req: Request) -> std::result::Result<Response, String> {
        let bytes = borsh::to_vec(&req).map_err(|e| e.to_string())?;
        let answer = self.request(peer, bytes).await.map_err(|e| e.to_string())?;
        borsh::from_slice(&answer).map_err(|e| format!("undecodable answer: {e}"))
    }
}

fn role_of(r: u8) -> Role {
    match r {
        role::ADMIN => Role::Admin,
        role::READ_ONLY => Role::ReadOnly,
        _ => Role::Member,
    }
}

/// Every namespace's governance state this node holds, by namespace id.
pub(crate) type Governance = Arc<std::sync::Mutex<HashMap<[u8; 32], Namespace>>>;

/// Whether `me` may call views (`mutating` false) or mutating methods in a
/// namespace whose state is `ns`.
fn check_standing(
    ns: Option<&Namespace>,
    me: &[u8; 32],
    ctx: &ContextId,
    mutating: bool,
) -> std::result::Result<(), mero_runtime::ExecError> {
    let denied = |kind, message: &str| mero_runtime::ExecError::Denied {
        kind,
        message: message.into(),
    };
    let (member, writer) = ns.map_or((false, false), |s| {
        let reads = s.may_read(me, &ctx.0);
        (reads, reads && s.may_write(me))
    });
    if !member {
        return Err(denied(
            "NotAMember",
            "this node is not (or no longer) a member of the context's namespace or group",
        ));
    }
    if mutating && !writer {
        return Err(denied(
            "ReadOnlyMember",
            "this node is a read-only member of the context's namespace: it may call views, not mutating methods",
        ));
    }
    Ok(())
}

/// The executor's [`Standing`](mero_runtime::Standing): a delta this node
/// authors in a namespace names the namespace's current governance heads,
/// and is refused if this node may no longer write there.
pub(crate) fn standing(gov: Governance, me: [u8; 32]) -> mero_runtime::Standing {
    Arc::new(move |meta| {
        let Some(ns) = meta.group else {
            return Ok(Vec::new());
        };
        let g = gov.lock().unwrap_or_else(|p| p.into_inner());
        let state = g.get(&ns);
        check_standing(state, &me, &meta.id, true)?;
        Ok(state
            .map(|s| s.heads.iter().copied().collect())
            .unwrap_or_default())
    })
}

/// The event a governance op makes for subscribers of its group, if any.
fn publish_governance(bus: &EventBus, ns: &[u8; 32], op: &SignedOp) {
    let account = |k: &[u8; 32]| serde_json::Value::String(hex::encode(k));
    let (group, kind, data) = match &op.op.body {
        Body::MemberJoined {
            member, invitation, ..
        } => (
            *ns,
            "MemberJoined",
            serde_json::json!({
                "memberAccount": account(member),
                "role": format!("{:?}", role_of(invitation.invitation.invited_role)),
            }),
        ),
        Body::MemberRemoved { member } => (
            *ns,
            "MemberRemoved",
            serde_json::json!({ "memberAccount": account(member) }),
        ),
        Body::RoleSet { member, role } => (
            *ns,
            "MemberRoleSet",
            serde_json::json!({
                "memberAccount": account(member),
                "role": format!("{:?}", role_of(*role)),
            }),
        ),
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
        Body::GroupVisibilitySet { group, open } => (
            *group,
            "SubgroupVisibilitySet",
            serde_json::json!({ "subgroupVisibility": if *open { "open" } else { "restricted" } }),
        ),
        Body::Create { .. } | Body::KeyShared { .. } | Body::ContextDetached { .. } => return,
    };
    bus.publish(Scope::Group(group), kind, None, data);
}

fn unreachable(message: impl Into<String>) -> NodeError {
    NodeError::Unreachable {
        kind: "MembersUnreachable",
        message: message.into(),
    }
}

impl Node {
    pub(crate) fn net(&self) -> Result<&Net> {
        self.inner
            .net
            .get()
            .ok_or_else(|| unreachable("this node's networking is not running"))
    }

    pub(crate) fn gov<T>(&self, f: impl FnOnce(&mut HashMap<[u8; 32], Namespace>) -> T) -> T {
        let mut g = self.inner.gov.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Loads every namespace's governance log from the store.
    pub(crate) fn load_governance(&self) -> Result<()> {
        let snap = self.inner.store.snapshot()?;
        for group in snap.groups()? {
            let mut ops = Vec::new();
            for bytes in snap.governance(&group.id)? {
                match borsh::from_slice::<SignedOp>(&bytes) {
                    Ok(op) => ops.push(op),
                    Err(e) => tracing::warn!(error = %e, "undecodable governance op in the store"),
                }
            }
            let mut ns = Namespace::new(group.id);
            let (_, invalid) = ns.apply_all(ops);
            for why in invalid {
                tracing::warn!(namespace = %hex::encode(group.id), %why, "stored governance op not applied");
            }
            self.gov(|g| g.insert(group.id, ns));
        }
        Ok(())
    }

    /// Applies ops to a namespace's state, stores those applied and writes
    /// the group and member records they imply. Returns the applied ops.
    pub(crate) async fn apply_governance(
        &self,
        ns: [u8; 32],
        ops: Vec<SignedOp>,
    ) -> Result<Vec<(OpId, SignedOp)>> {
        let (applied, state) = self.gov(|g| {
            let state = g.entry(ns).or_insert_with(|| Namespace::new(ns));
            let (applied, invalid) = state.apply_all(ops);
            for why in invalid {
                tracing::warn!(namespace = %hex::encode(ns), %why, "governance op refused");
            }
            (applied, state.clone())
        });
        if applied.is_empty() {
            return Ok(applied);
        }
        let Some(app) = state.app.clone() else {
            return Ok(applied);
        };
        let store = self.inner.store.clone();
        let to_store: Vec<(OpId, Vec<u8>)> = applied
            .iter()
            .map(|(id, op)| (*id, borsh::to_vec(op).unwrap_or_default()))
            .collect();
        let group = GroupRecord {
            id: ns,
            name: state.name.clone(),
            application: app.id,
            blob: app.blob,
            parent: None,
            creator: state.creator,
            default_capabilities: state.default_capabilities,
            created_at_millis: state.created_millis,
        };
        let members: Vec<([u8; 32], MemberRecord)> = state
            .members
            .iter()
            .map(|(k, m)| {
                (
                    *k,
                    MemberRecord {
                        role: role_of(m.role),
                        capabilities: m.capabilities,
                        joined_at_millis: m.joined_millis,
                    },
                )
            })
            .collect();
        let subgroups: Vec<GroupRecord> = state
            .groups
            .iter()
            .map(|(id, sub)| GroupRecord {
                id: *id,
                name: sub.name.clone(),
                parent: Some(sub.parent),
                created_at_millis: sub.millis,
                creator: sub.creator,
                ..group.clone()
            })
            .collect();
        let removed: Vec<[u8; 32]> = applied
            .iter()
            .filter_map(|(_, op)| match &op.op.body {
                Body::MemberRemoved { member } => Some(*member),
                _ => None,
            })
            .filter(|m| !state.members.contains_key(m))
            .collect();
        blocking(move || {
            let mut w = store.write()?;
            for (id, bytes) in &to_store {
                w.put_governance(&ns, id, bytes)?;
            }
            w.put_group(&group)?;
            for sub in &subgroups {
                w.put_group(sub)?;
            }
            for (k, m) in &members {
                w.put_member(&ns, k, m)?;
            }
            for k in &removed {
                w.delete_member(&ns, k)?;
            }
            w.commit()?;
            Ok(())
        })
        .await?;
        self.take_keys(&ns, &applied).await;
        self.rotate_after_leaving(&ns, &applied);
        for (_, op) in &applied {
            publish_governance(&self.inner.events, &ns, op);
        }
        // New members: connect to them.
        for (_, op) in &applied {
            match &op.op.body {
                Body::MemberJoined { member, addrs, .. } => self.dial_member(member, addrs).await,
                Body::Create { addrs, .. } => self.dial_member(&op.op.author, addrs).await,
                _ => {}
            }
        }
        Ok(applied)
    }

    async fn dial_member(&self, key: &[u8; 32], addrs: &[String]) {
        let Ok(net) = self.net() else { return };
        if *key == self.public_key() {
            return;
        }
        let Some(peer) = peer_of(key) else { return };
        if net
            .client
            .connected_peers()
            .await
            .is_ok_and(|p| p.contains(&peer))
        {
            return;
        }
        for a in addrs {
            if let Ok(addr) = a.parse::<Multiaddr>() {
                let _ = net.client.add_address(peer, addr.clone()).await;
                match net.client.dial(addr).await {
                    Ok(_) => return,
                    Err(e) => tracing::debug!(error = %e, "dialling a member failed"),
                }
            }
        }
    }

    /// This node's listen addresses, as strings.
    async fn my_addrs(&self) -> Vec<String> {
        match self.net() {
            Ok(net) => net
                .client
                .listen_addrs()
                .await
                .map(|a| a.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Makes, applies, stores and publishes an op of this node.
    pub(crate) async fn author_op(&self, ns: [u8; 32], body: Body) -> Result<()> {
        let op = self.gov(|g| {
            let state = g.entry(ns).or_insert_with(|| Namespace::new(ns));
            state.make(&self.inner.identity, now_millis(), body)
        });
        // Sealed with the key members hold now: a rotation's new key is
        // in the op itself, for the members it is wrapped for.
        let key = self.current_key(&ns);
        let applied = self.apply_governance(ns, vec![op.clone()]).await?;
        if applied.is_empty() {
            return Err(NodeError::Internal(
                "this node's own governance op was refused".into(),
            ));
        }
        // Membership is nobody else's business: without a key (a brand-new
        // namespace has no other member yet) nothing is published; members
        // that miss it pull it with anti-entropy.
        let Some((epoch, key)) = key else {
            return Ok(());
        };
        let sealed = borsh::to_vec(&Gossip::Gov(Box::new(op)))
            .ok()
            .and_then(|bytes| crate::keys::seal(&ns, epoch, &key, &bytes));
        if let Some(sealed) = sealed {
            self.publish(&namespace_topic(&ns), Gossip::Sealed(sealed))
                .await;
        }
        Ok(())
    }

    /// The root op of a new namespace created by this node; returns its id.
    pub(crate) async fn create_governance(
        &self,
        name: Option<String>,
        app: AppInfo,
    ) -> Result<[u8; 32]> {
        let nonce: [u8; 32] = rand::random();
        let addrs = self.my_addrs().await;
        let (state, op) = Namespace::create(
            &self.inner.identity,
            now_millis(),
            Body::Create {
                nonce,
                name,
                app,
                default_capabilities: caps::DEFAULT,
                addrs,
            },
        );
        let ns = state.id;
        self.gov(|g| g.insert(ns, state));
        // Nobody else holds the namespace yet: nothing to publish.
        if self.apply_governance(ns, vec![op]).await?.is_empty() {
            return Err(NodeError::Internal(
                "this node's Create op was refused".into(),
            ));
        }
        self.share_key(&ns, &[self.public_key()], true).await?;
        self.subscribe(&namespace_topic(&ns)).await;
        Ok(ns)
    }

    async fn publish(&self, topic: &str, msg: Gossip) {
        let Ok(net) = self.net() else { return };
        let bytes = borsh::to_vec(&msg).unwrap_or_default();
        if let Err(e) = net.client.publish(topic, bytes).await {
            tracing::warn!(%topic, error = %e, "publishing failed; anti-entropy will deliver it");
        }
    }

    pub(crate) async fn subscribe(&self, topic: &str) {
        if let Ok(net) = self.net()
            && let Err(e) = net.client.subscribe(topic).await
        {
            tracing::warn!(%topic, error = %e, "subscribing failed");
        }
    }

    // --------------------------------------------------------- invitations

    /// An invitation to namespace `ns`, valid for `valid_secs`, granting
    /// `invited_role`, signed by this node.
    pub async fn invite(
        &self,
        ns: &[u8; 32],
        valid_secs: Option<u64>,
        invited_role: u8,
    ) -> Result<(SignedInvitation, Option<String>)> {
        let (known, allowed, name, app) = self.gov(|g| match g.get(ns) {
            Some(s) => (
                true,
                s.allowed(&self.public_key(), caps::INVITE_MEMBERS)
                    && (invited_role != role::ADMIN || s.is_admin(&self.public_key())),
                s.name.clone(),
                s.app.clone(),
            ),
            None => (false, false, None, None),
        });
        if !known {
            return Err(NodeError::not_found(
                "NamespaceNotFound",
                "Namespace not found",
            ));
        }
        if !allowed {
            return Err(NodeError::Forbidden {
                kind: "MissingCapability",
                message: "this node's member may not invite (it needs the invite-members capability; only admins invite admins)".into(),
            });
        }
        if invited_role > role::READ_ONLY {
            return Err(NodeError::bad(
                "InvalidRole",
                "role must be admin, member or read-only",
            ));
        }
        let net = self.net()?;
        let secs = valid_secs.unwrap_or(365 * 24 * 3600);
        let mut signed = SignedInvitation::sign(
            Invitation {
                inviter_identity: self.public_key(),
                group_id: *ns,
                expiration_timestamp: now_millis() / 1000 + secs,
                secret_salt: rand::random(),
                invited_role,
                inviter_peer_id: net.client.peer_id().to_base58(),
                inviter_addrs: self.my_addrs().await,
            },
            &self.inner.identity,
        );
        signed.application_id = app.as_ref().map(|a| a.id);
        signed.app_key = app.as_ref().map(|a| a.blob);
        Ok((signed, name))
    }

    /// Joins namespace `ns` with a pasted invitation: verifies it, reaches
    /// the inviter, learns the namespace's governance and becomes a member.
    pub async fn join_namespace(&self, ns: &[u8; 32], pasted: &serde_json::Value) -> Result<()> {
        let invitation = parse_pasted(pasted)?;
        invitation.verify(ns, now_millis() / 1000)?;
        let inv = &invitation.invitation;
        if self.gov(|g| g.get(ns).is_some_and(|s| s.is_member(&self.public_key()))) {
            return Ok(());
        }
        let net = self.net()?;
        let inviter = peer_of(&inv.inviter_identity)
            .ok_or_else(|| NodeError::bad("InvalidInvitation", "bad inviter key"))?;
        let mut reached = false;
        for a in &inv.inviter_addrs {
            let Ok(addr) = a.parse::<Multiaddr>() else {
                continue;
            };
            match net.client.dial(addr).await {
                Ok(p) if p == inviter => {
                    reached = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, addr = %a, "dialling the inviter failed"),
            }
        }
        if !reached
            && !net
                .client
                .connected_peers()
                .await
                .is_ok_and(|p| p.contains(&inviter))
        {
            return Err(unreachable(
                "could not reach any member of this namespace to complete the join; make sure the inviting node is online and retry",
            ));
        }
        let refused = |why: String| NodeError::Forbidden {
            kind: "JoinRefused",
            message: format!("the inviter refused the join: {why}"),
        };
        let ops = match net
            .client
            .fetch(
                inviter,
                Request::JoinNamespace {
                    invitation: invitation.clone(),
                },
            )
            .await
            .map_err(unreachable)?
        {
            Response::Governance(ops) => ops,
            Response::Refused(why) => return Err(refused(why)),
            other => return Err(NodeError::Internal(format!("unexpected answer: {other:?}"))),
        };
        // Learn the namespace first (in memory only, until we are in).
        let mut state = Namespace::new(*ns);
        state.apply_all(ops.clone());
        if !state.allowed(&inv.inviter_identity, caps::INVITE_MEMBERS) {
            return Err(refused("the inviter may not invite members".into()));
        }
        // A request signed with this node's key (proving it holds it); the
        // inviter admits it with an op of its own.
        let addrs = self.my_addrs().await;
        let op = state.make(
            &self.inner.identity,
            now_millis(),
            Body::MemberJoined {
                member: self.public_key(),
                invitation: invitation.clone(),
                addrs,
            },
        );
        // The answer carries the namespace key wrapped for this node.
        let shared = match net
            .client
            .fetch(inviter, Request::Submit { op: op.clone() })
            .await
            .map_err(unreachable)?
        {
            Response::Ok => Vec::new(),
            Response::Governance(more) => more,
            Response::Refused(why) => return Err(refused(why)),
            other => return Err(NodeError::Internal(format!("unexpected answer: {other:?}"))),
        };
        let mut all = ops;
        all.extend(shared);
        self.apply_governance(*ns, all).await?;
        if !self.gov(|g| g.get(ns).is_some_and(|s| s.is_member(&self.public_key()))) {
            return Err(refused("the inviter did not admit this node".into()));
        }
        self.subscribe(&namespace_topic(ns)).await;
        tracing::info!(namespace = %hex::encode(ns), "joined namespace");
        Ok(())
    }

    /// Members of a group (a namespace, or a subgroup: its effective
    /// members): key and role.
    pub fn group_members(&self, group: &[u8; 32]) -> Result<Vec<([u8; 32], Role)>> {
        let me = self.public_key();
        self.with_group(group, |s| {
            if !s.is_member(&me) {
                return Err(NodeError::Forbidden {
                    kind: "NotAGroupMember",
                    message: "this node is not a member of the group's namespace".into(),
                });
            }
            Ok(s.members
                .iter()
                .filter(|(k, _)| s.in_group(k, group))
                .map(|(k, m)| (*k, role_of(m.role)))
                .collect())
        })
        .unwrap_or_else(|| Err(NodeError::not_found("GroupNotFound", "Group not found")))
    }

    /// Contexts registered in a group (whether or not this node holds
    /// them): id and name.
    pub fn group_contexts(&self, group: &[u8; 32]) -> Result<Vec<([u8; 32], Option<String>)>> {
        self.with_group(group, |s| {
            s.contexts
                .iter()
                .filter(|(_, r)| r.group == *group)
                .map(|(id, r)| (*id, r.name.clone()))
                .collect()
        })
        .ok_or_else(|| NodeError::not_found("GroupNotFound", "Group not found"))
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
        let group = crate::governance::scoped_id(&ns, &self.public_key(), &salt);
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

    /// The subgroups of a namespace.
    pub fn subgroups(&self, ns: &[u8; 32]) -> Result<Vec<Subgroup>> {
        self.gov(|g| {
            let s = g
                .get(ns)
                .ok_or_else(|| NodeError::not_found("NamespaceNotFound", "Namespace not found"))?;
            Ok(s.groups
                .iter()
                .map(|(id, sub)| Subgroup {
                    id: *id,
                    parent: sub.parent,
                    name: sub.name.clone(),
                    open: sub.open,
                    members: s.members.keys().filter(|k| s.in_group(k, id)).count(),
                    contexts: s.contexts.values().filter(|r| r.group == *id).count(),
                })
                .collect())
        })
    }

    /// The namespace of a subgroup, or a clear error if `group` is not one.
    fn subgroup_namespace(&self, group: &[u8; 32]) -> Result<[u8; 32]> {
        match self.namespace_of_group(group) {
            Some(ns) if ns != *group => Ok(ns),
            Some(_) => Err(NodeError::bad(
                "NotASubgroup",
                "that is a namespace: members join it with an invitation",
            )),
            None => Err(NodeError::not_found("GroupNotFound", "Group not found")),
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

    /// Joins a context of a namespace this node is a member of: fetches the
    /// app if missing, creates the local replica and pulls a snapshot.
    pub async fn join_context(&self, ctx: &ContextId) -> Result<()> {
        let me = self.public_key();
        let found = self.gov(|g| {
            g.values()
                .find(|s| s.contexts.contains_key(&ctx.0))
                .map(|s| (s.id, s.may_read(&me, &ctx.0), s.app.clone(), s.clone()))
        });
        let Some((ns, member, app, state)) = found else {
            if self.inner.store.snapshot()?.context_meta(ctx)?.is_some() {
                return Ok(());
            }
            return Err(NodeError::not_found(
                "ContextNotFound",
                "no namespace this node belongs to has that context",
            ));
        };
        if !member {
            return Err(NodeError::Forbidden {
                kind: "NotAGroupMember",
                message: "this node is not a member of the context's namespace or group".into(),
            });
        }
        let app = app.ok_or_else(|| NodeError::Internal("namespace without app".into()))?;
        let net = self.net()?;
        let connected = net.client.connected_peers().await.unwrap_or_default();
        // Snapshots are trusted state: take them only from members that may
        // write.
        let peers: Vec<PeerId> = state
            .members
            .iter()
            .filter(|(k, _)| **k != me && state.may_write_in(k, &ctx.0))
            .filter_map(|(k, _)| peer_of(k))
            .filter(|p| connected.contains(p))
            .collect();
        self.ensure_app(&app, &peers).await?;
        let registered = state.contexts.get(&ctx.0).cloned();
        let snap = self.inner.store.snapshot()?;
        let record = snap
            .application(&app.id)?
            .ok_or_else(|| NodeError::Internal("application vanished".into()))?;
        drop(snap);
        let loaded = self
            .inner
            .exec
            .app(&self.inner.store.snapshot()?, &app.blob)
            .await?;
        self.inner
            .exec
            .create_replica(ContextMeta {
                id: *ctx,
                application: app.id,
                blob: app.blob,
                app_version: record.version,
                state_version: loaded.description().state_version,
                group: Some(ns),
                name: registered.and_then(|r| r.name),
                last_hlc: Default::default(),
                delta_count: 0,
                created_at_millis: now_millis(),
            })
            .await?;
        self.subscribe(&context_topic(ctx)).await;
        let mut last = None;
        for p in &peers {
            match sync::join_snapshot(&self.inner.exec, &net.client, *p, *ctx).await {
                Ok(()) => {
                    self.publish_snapshot_joined(ctx);
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            // Anti-entropy keeps trying; the context exists already.
            tracing::warn!(error = %e, "no peer sent a snapshot yet");
        }
        self.set_status(ctx, |s| {
            s.state = "idle";
            s.last_sync_millis = Some(now_millis());
        });
        Ok(())
    }

    async fn ensure_app(&self, app: &AppInfo, peers: &[PeerId]) -> Result<()> {
        if self.inner.store.snapshot()?.application(&app.id)?.is_some() {
            return Ok(());
        }
        let net = self.net()?;
        for p in peers {
            match net.client.fetch(*p, Request::Blob { hash: app.blob }).await {
                Ok(Response::Blob(bytes)) => {
                    if crate::sha256(&bytes) != app.blob {
                        tracing::warn!("a peer sent a component whose hash does not match");
                        continue;
                    }
                    self.install_replicated(app, bytes).await?;
                    return Ok(());
                }
                Ok(other) => tracing::debug!(?other, "peer did not send the component"),
                Err(e) => tracing::debug!(error = %e, "fetching the component failed"),
            }
        }
        Err(unreachable(
            "could not fetch the context's application from any member",
        ))
    }

    /// Peers connected now.
    pub async fn peer_count(&self) -> usize {
        match self.net() {
            Ok(n) => n.client.connected_peers().await.map_or(0, |p| p.len()),
            Err(_) => 0,
        }
    }

    /// Asks for an anti-entropy round now.
    pub fn trigger_sync(&self) -> Result<()> {
        self.net()?.sync_now.notify_one();
        Ok(())
    }

    /// A context's replication status.
    pub fn sync_status(&self, ctx: &ContextId) -> SyncStatus {
        let mut s = self
            .inner
            .net
            .get()
            .and_then(|n| {
                n.status
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(ctx)
                    .cloned()
            })
            .unwrap_or_default();
        if s.state.is_empty() {
            s.state = "idle";
        }
        s
    }

    /// Updates a context's sync status; a change of state, or a new error,
    /// is a `SyncStatus` event.
    fn set_status(&self, ctx: &ContextId, f: impl FnOnce(&mut SyncStatus)) {
        let Some(n) = self.inner.net.get() else {
            return;
        };
        let changed = {
            let mut all = n.status.lock().unwrap_or_else(|p| p.into_inner());
            let s = all.entry(*ctx).or_default();
            let before = (s.state, s.last_error.clone());
            f(s);
            (before != (s.state, s.last_error.clone())).then(|| s.clone())
        };
        if let Some(s) = changed {
            self.inner.events.publish(
                Scope::Context(*ctx),
                "SyncStatus",
                None,
                serde_json::json!({
                    "syncState": s.state,
                    "failureCount": s.rejected,
                    "lastError": s.last_error,
                }),
            );
        }
    }

    /// Whether a key may author deltas in `ctx` now: a member of its group
    /// that is not read-only (read-only members read but do not author).
    fn may_author(&self, ctx: &ContextId) -> impl Fn(&[u8; 32]) -> bool + Sync + use<> {
        let group = self.namespace_of(ctx);
        let writers: Vec<[u8; 32]> = group
            .map(|ns| {
                self.gov(|g| {
                    g.get(&ns)
                        .map(|s| {
                            s.members
                                .keys()
                                .filter(|k| s.may_write(k) && s.may_read(k, &ctx.0))
                                .copied()
                                .collect()
                        })
                        .unwrap_or_default()
                })
            })
            .unwrap_or_default();
        move |k| writers.contains(k)
    }

    /// Judges deltas of `ctx` (see [`sync::Authority`]) against the
    /// namespace's governance as of now: each author must be a member that
    /// may write at the governance heads its delta names, and those heads
    /// must cover what its parents named (no citing an older view to write
    /// over newer state). Every node with the same ops judges alike, in any
    /// order of arrival.
    fn authority(
        &self,
        ctx: &ContextId,
    ) -> impl Fn(&Delta, &[Vec<OpId>]) -> std::result::Result<(), Denial> + Sync + use<> {
        let state = self
            .namespace_of(ctx)
            .and_then(|ns| self.gov(|g| g.get(&ns).cloned()));
        move |d: &Delta, parents: &[Vec<OpId>]| match &state {
            Some(ns) => ns.judge(&d.author.0, &d.context.0, &d.governance, parents),
            None => Err(Denial::NotYet(
                "the context's namespace is not known here".into(),
            )),
        }
    }

    /// The namespace a group (the namespace itself or a subgroup) is in,
    /// if this node knows it.
    pub fn namespace_of_group(&self, group: &[u8; 32]) -> Option<[u8; 32]> {
        self.with_group(group, |s| s.id)
    }

    /// `f` of the namespace that holds `group` (the namespace itself or one
    /// of its subgroups), if this node knows it.
    pub(crate) fn with_group<T>(
        &self,
        group: &[u8; 32],
        f: impl FnOnce(&Namespace) -> T,
    ) -> Option<T> {
        self.gov(|g| match g.get(group) {
            Some(s) => Some(f(s)),
            None => g.values().find(|s| s.has_group(group)).map(f),
        })
    }

    /// The namespace of a context, if it has one.
    pub(crate) fn namespace_of(&self, ctx: &ContextId) -> Option<[u8; 32]> {
        self.inner
            .store
            .snapshot()
            .ok()
            .and_then(|s| s.context_meta(ctx).ok().flatten())
            .and_then(|m| m.group)
    }

    /// `preferred` if it is a connected member that may write in `ctx`'s
    /// namespace, else another such peer.
    async fn writer_peer(&self, ctx: &ContextId, preferred: PeerId) -> Option<PeerId> {
        let writer = self.may_author(ctx);
        if key_of(&preferred).is_some_and(|k| writer(&k)) {
            return Some(preferred);
        }
        let net = self.net().ok()?;
        let peers = net.client.connected_peers().await.ok()?;
        peers
            .into_iter()
            .find(|p| key_of(p).is_some_and(|k| k != self.public_key() && writer(&k)))
    }

    fn peer_is_member_of_context(&self, peer: &PeerId, ctx: &ContextId) -> bool {
        let (Some(key), Some(ns)) = (key_of(peer), self.namespace_of(ctx)) else {
            return false;
        };
        self.gov(|g| g.get(&ns).is_some_and(|s| s.may_read(&key, &ctx.0)))
    }

    /// Whether this node may run a call on a context of namespace `ns`:
    /// members run views, members that are not read-only run mutating calls.
    pub(crate) fn check_call(
        &self,
        ns: Option<&[u8; 32]>,
        ctx: &ContextId,
        mutating: bool,
    ) -> std::result::Result<(), mero_runtime::ExecError> {
        let Some(ns) = ns else {
            return Ok(());
        };
        let me = self.public_key();
        self.gov(|g| check_standing(g.get(ns), &me, ctx, mutating))
    }

    // ------------------------------------------------------ member management

    /// Runs a governance change by this node: checked on a copy first (so a
    /// refusal changes nothing and says why), then signed, applied, stored
    /// and published.
    pub(crate) async fn change(&self, ns: &[u8; 32], body: Body) -> Result<()> {
        let me = self.public_key();
        let check = self.gov(|g| {
            g.get(ns).map(|s| {
                if !s.is_member(&me) {
                    return Err(Refused::Invalid("this node is not a member".into()));
                }
                s.clone()
                    .apply(&s.make(&self.inner.identity, now_millis(), body.clone()))
                    .map(|_| ())
            })
        });
        match check {
            None => Err(NodeError::not_found("GroupNotFound", "Group not found")),
            Some(Err(Refused::Invalid(why))) => Err(NodeError::Forbidden {
                kind: "GovernanceRefused",
                message: why,
            }),
            Some(Err(other)) => Err(NodeError::Internal(format!("{other:?}"))),
            Some(Ok(())) => self.author_op(*ns, body).await,
        }
    }

    /// Sets a member's role.
    pub async fn set_member_role(&self, ns: &[u8; 32], member: &[u8; 32], r: Role) -> Result<()> {
        let r = match r {
            Role::Admin => role::ADMIN,
            Role::Member => role::MEMBER,
            Role::ReadOnly => role::READ_ONLY,
        };
        self.change(
            ns,
            Body::RoleSet {
                member: *member,
                role: r,
            },
        )
        .await
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
        self.gov(|g| match g.get(ns) {
            None => Err(NodeError::not_found("GroupNotFound", "Group not found")),
            Some(s) => s
                .capabilities(member)
                .ok_or_else(|| NodeError::not_found("MemberNotFound", "no such member")),
        })
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
            self.change(ns, Body::MemberRemoved { member: *m }).await?;
        }
        // Those removed must not read what is written from now on.
        let remaining: Vec<[u8; 32]> = self.gov(|g| {
            g.get(ns)
                .map(|s| s.members.keys().copied().collect())
                .unwrap_or_default()
        });
        self.share_key(ns, &remaining, true).await
    }

    /// This node leaves a namespace: it stops being a member (what it wrote
    /// stays) and cannot rejoin; a remaining manager rotates the key.
    pub async fn leave_namespace(&self, ns: &[u8; 32]) -> Result<()> {
        let me = self.public_key();
        self.change(ns, Body::MemberRemoved { member: me }).await
    }

    /// A member that left still holds the namespace key: one remaining
    /// manager (the one with the smallest key, so that usually only one
    /// does) rotates it for the others.
    fn rotate_after_leaving(&self, ns: &[u8; 32], applied: &[(OpId, SignedOp)]) {
        let left = applied.iter().any(|(_, op)| {
            matches!(&op.op.body, Body::MemberRemoved { member } if *member == op.op.author)
        });
        if !left {
            return;
        }
        let me = self.public_key();
        let remaining = self.gov(|g| {
            g.get(ns).and_then(|s| {
                let rotator = s
                    .members
                    .keys()
                    .find(|k| s.allowed(k, caps::MANAGE_MEMBERS))
                    .copied();
                (rotator == Some(me)).then(|| s.members.keys().copied().collect::<Vec<_>>())
            })
        });
        let Some(remaining) = remaining else { return };
        let node = self.clone();
        let ns = *ns;
        tokio::spawn(async move {
            if let Err(e) = node.share_key(&ns, &remaining, true).await {
                tracing::warn!(error = %e, "rotating the key after a member left failed");
            }
        });
    }

    // ------------------------------------------------------------ keys

    /// The newest namespace key this node holds, with its epoch.
    fn current_key(&self, ns: &[u8; 32]) -> Option<(u32, [u8; 32])> {
        let keys = self.inner.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(ns)?
            .iter()
            .next_back()
            .and_then(|(e, list)| list.last().map(|k| (*e, *k)))
    }

    fn keys_of(&self, ns: &[u8; 32], epoch: u32) -> Vec<[u8; 32]> {
        let keys = self.inner.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(ns)
            .and_then(|m| m.get(&epoch))
            .cloned()
            .unwrap_or_default()
    }

    /// Remembers a namespace key, here and in the store (node-local).
    async fn remember_key(&self, ns: &[u8; 32], epoch: u32, key: [u8; 32]) -> Result<()> {
        // One writer at a time, so an older copy never overwrites a newer.
        let _writing = self.inner.keys_written.lock().await;
        let all = {
            let mut keys = self.inner.keys.lock().unwrap_or_else(|p| p.into_inner());
            let list = keys.entry(*ns).or_default().entry(epoch).or_default();
            if list.contains(&key) {
                return Ok(());
            }
            list.push(key);
            keys.get(ns).cloned().unwrap_or_default()
        };
        let bytes = borsh::to_vec(&all).unwrap_or_default();
        let store = self.inner.store.clone();
        let ns = *ns;
        blocking(move || {
            let mut w = store.write()?;
            w.private_put(&ContextId(ns), KEYS_SLOT, Some(&bytes))?;
            w.commit()?;
            Ok(())
        })
        .await
    }

    /// Loads the namespace keys this node holds.
    pub(crate) fn load_keys(&self) -> Result<()> {
        let snap = self.inner.store.snapshot()?;
        let mut keys = self.inner.keys.lock().unwrap_or_else(|p| p.into_inner());
        for group in snap.groups()? {
            if let Some(bytes) = snap.private_get(&ContextId(group.id), KEYS_SLOT)? {
                match borsh::from_slice(&bytes) {
                    Ok(k) => {
                        keys.insert(group.id, k);
                    }
                    Err(e) => tracing::warn!(error = %e, "undecodable namespace keys"),
                }
            }
        }
        Ok(())
    }

    /// Shares the namespace key with `members`: the current one, or a new
    /// epoch (`rotate`), wrapped for each.
    pub(crate) async fn share_key(
        &self,
        ns: &[u8; 32],
        members: &[[u8; 32]],
        rotate: bool,
    ) -> Result<()> {
        let newest = self.gov(|g| g.get(ns).map_or(0, |s| s.key_epoch));
        let (epoch, key) = match (self.current_key(ns), rotate) {
            (Some((e, k)), false) => (e, k),
            (Some((e, _)), true) => (
                e.max(newest)
                    .checked_add(1)
                    .ok_or_else(|| NodeError::Internal("key epochs exhausted".into()))?,
                rand::random(),
            ),
            // The namespace's first key, made by its creator.
            (None, true) if newest == 0 => (0, rand::random()),
            (None, _) => {
                return Err(NodeError::Internal(
                    "this node holds no key of the namespace to share".into(),
                ));
            }
        };
        let wrapped = members
            .iter()
            .filter_map(|m| crate::keys::wrap(&self.inner.identity, m, ns, epoch, &key))
            .collect();
        // Published under the key members hold now; remembered after, so
        // the op is not sealed with the key it brings.
        self.author_op(*ns, Body::KeyShared { epoch, wrapped })
            .await?;
        self.remember_key(ns, epoch, key).await?;
        if rotate && epoch > 0 {
            tracing::info!(namespace = %hex::encode(ns), epoch, "namespace key rotated");
        }
        Ok(())
    }

    /// Takes the keys wrapped for this node in applied ops.
    async fn take_keys(&self, ns: &[u8; 32], applied: &[(OpId, SignedOp)]) {
        for (_, op) in applied {
            if let Body::KeyShared { epoch, wrapped } = &op.op.body
                && let Some(w) = wrapped.iter().find(|w| w.member == self.public_key())
            {
                match crate::keys::unwrap(&self.inner.identity, &op.op.author, ns, *epoch, w) {
                    Some(key) => {
                        if let Err(e) = self.remember_key(ns, *epoch, key).await {
                            tracing::warn!(error = %e, "storing a namespace key failed");
                        }
                    }
                    None => tracing::warn!("a namespace key wrapped for this node does not open"),
                }
            }
        }
    }

    /// Seals gossip for a context's namespace with its current key.
    fn seal_for(&self, ctx: &ContextId, msg: &Gossip) -> Option<Gossip> {
        let ns = self.namespace_of(ctx)?;
        let (epoch, key) = self.current_key(&ns)?;
        let bytes = borsh::to_vec(msg).ok()?;
        crate::keys::seal(&ns, epoch, &key, &bytes).map(Gossip::Sealed)
    }

    /// Opens sealed gossip with any key this node holds for its epoch.
    fn open_sealed(&self, sealed: &crate::keys::Sealed) -> Option<Gossip> {
        self.keys_of(&sealed.namespace, sealed.epoch)
            .iter()
            .find_map(|k| crate::keys::open(k, sealed))
            .and_then(|b| borsh::from_slice(&b).ok())
    }

    // --------------------------------------------------------------- driver

    /// Starts networking: listens, dials bootstrap peers and known members,
    /// subscribes to every namespace and context held, and starts the task
    /// that drives replication.
    pub async fn start_network(&self) -> Result<()> {
        let cfg = &self.inner.config;
        let secret = self.inner.identity.to_bytes();
        let keypair = mero_network::Keypair::ed25519_from_bytes(secret)
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let mut nc = NetworkConfig::new(keypair);
        nc.listen = parse_addrs(&cfg.swarm.listen)?;
        nc.bootstrap = parse_addrs(&cfg.bootstrap.nodes)?;
        nc.max_message_bytes = MAX_MESSAGE_BYTES;
        let (client, events) =
            mero_network::spawn(nc).map_err(|e| NodeError::Internal(format!("networking: {e}")))?;
        let (inbox, inbox_rx) = tokio::sync::mpsc::channel(INBOX);
        let net = Net {
            client,
            inbox,
            pending: Pending::default(),
            resolving: Default::default(),
            status: Default::default(),
            sync_now: tokio::sync::Notify::new(),
        };
        if self.inner.net.set(net).is_err() {
            return Err(NodeError::Internal("networking started twice".into()));
        }
        let (namespaces, members) = self.gov(|g| {
            let ns: Vec<[u8; 32]> = g.keys().copied().collect();
            let m: Vec<([u8; 32], Vec<String>)> = g
                .values()
                .flat_map(|s| s.members.iter().map(|(k, m)| (*k, m.addrs.clone())))
                .collect();
            (ns, m)
        });
        for ns in &namespaces {
            self.subscribe(&namespace_topic(ns)).await;
        }
        for meta in self.inner.store.snapshot()?.contexts()? {
            self.subscribe(&context_topic(&meta.id)).await;
        }
        let node = self.clone();
        tokio::spawn(async move {
            for (k, addrs) in members {
                node.dial_member(&k, &addrs).await;
            }
        });
        let node = self.clone();
        tokio::spawn(async move { node.drive(events).await });
        let node = self.clone();
        tokio::spawn(async move { node.merge_gossip(inbox_rx).await });
        let node = self.clone();
        tokio::spawn(async move { node.publish_committed().await });
        let node = self.clone();
        tokio::spawn(async move { node.anti_entropy().await });
        Ok(())
    }

    /// Stops networking.
    pub(crate) async fn stop_network(&self) {
        if let Some(n) = self.inner.net.get() {
            n.client.shutdown().await;
        }
    }

    /// Publishes this node's committed deltas: everything committed since
    /// the last round goes out as one message per context, so a busy node
    /// sends a few large messages rather than many small ones.
    async fn publish_committed(self) {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let mut rx = self.inner.exec.subscribe();
        loop {
            let mut ready = Vec::new();
            match rx.recv().await {
                Ok(c) => ready.push(c),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "publisher lagged; anti-entropy delivers the rest"
                    );
                }
                Err(RecvError::Closed) => break,
            }
            loop {
                match rx.try_recv() {
                    Ok(c) => ready.push(c),
                    Err(TryRecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "publisher lagged; anti-entropy delivers the rest"
                        );
                    }
                    Err(_) => break,
                }
            }
            let mut by_ctx: Vec<(ContextId, Vec<Vec<u8>>, usize)> = Vec::new();
            for c in ready.into_iter().filter(|c| c.local) {
                let ctx = c.delta.delta.context;
                let bytes = c.delta.to_bytes();
                match by_ctx.last_mut() {
                    // Consecutive deltas of one context share a message, up
                    // to a size well under the gossip limit.
                    Some((last, list, size)) if *last == ctx && *size < GOSSIP_BATCH_BYTES => {
                        *size += bytes.len();
                        list.push(bytes);
                    }
                    _ => by_ctx.push((ctx, vec![bytes.clone()], bytes.len())),
                }
            }
            for (ctx, list, _) in by_ctx {
                match self.seal_for(&ctx, &Gossip::Deltas(list)) {
                    Some(sealed) => self.publish(&context_topic(&ctx), sealed).await,
                    None => tracing::warn!(
                        context = %bs58::encode(ctx.0).into_string(),
                        "no namespace key to seal deltas with; anti-entropy delivers them"
                    ),
                }
            }
        }
    }

    async fn anti_entropy(self) {
        let every = Duration::from_millis(self.inner.config.sync.frequency_ms.max(100));
        let Ok(net) = self.net() else { return };
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = net.sync_now.notified() => {}
            }
            if self.inner.net.get().is_none() {
                break;
            }
            let Ok(peers) = net.client.connected_peers().await else {
                break;
            };
            self.sync_governance(&peers).await;
            let Ok(contexts) = self.inner.store.snapshot().and_then(|s| s.contexts()) else {
                continue;
            };
            for meta in contexts {
                let ctx = meta.id;
                let member = self.may_author(&ctx);
                let candidates: Vec<PeerId> = peers
                    .iter()
                    .filter(|p| key_of(p).is_some_and(|k| member(&k)))
                    .copied()
                    .collect();
                if candidates.is_empty() {
                    self.set_status(&ctx, |s| s.state = "waitingForPeers");
                    continue;
                }
                let authority = self.authority(&ctx);
                for peer in candidates {
                    let r = sync::sync_with(
                        &self.inner.exec,
                        &net.client,
                        &net.pending,
                        peer,
                        ctx,
                        &authority,
                    )
                    .await;
                    self.record(&ctx, r);
                }
            }
        }
    }

    /// Pulls each namespace's governance log from one connected member, so
    /// ops missed while offline (joins, removals, keys) arrive.
    async fn sync_governance(&self, peers: &[PeerId]) {
        let Ok(net) = self.net() else { return };
        let me = self.public_key();
        let namespaces: Vec<([u8; 32], Vec<PeerId>)> = self.gov(|g| {
            g.values()
                .filter(|s| s.is_member(&me))
                .map(|s| {
                    let members: Vec<PeerId> = peers
                        .iter()
                        .filter(|p| key_of(p).is_some_and(|k| k != me && s.is_member(&k)))
                        .copied()
                        .collect();
                    (s.id, members)
                })
                .collect()
        });
        for (ns, members) in namespaces {
            let Some(peer) = members.first() else {
                continue;
            };
            if let Ok(Response::Governance(ops)) = net
                .client
                .fetch(*peer, Request::Governance { namespace: ns })
                .await
                && let Err(e) = self.apply_governance(ns, ops).await
            {
                tracing::warn!(error = %e, "storing governance failed");
            }
        }
    }

    fn record(&self, ctx: &ContextId, r: std::result::Result<sync::Ingested, String>) {
        if matches!(&r, Ok(i) if i.snapshot) {
            self.publish_snapshot_joined(ctx);
        }
        self.set_status(ctx, |s| {
            s.last_sync_millis = Some(now_millis());
            match r {
                Ok(i) => {
                    s.state = "idle";
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
            .inner
            .store
            .snapshot()
            .and_then(|s| s.root_hash(ctx))
            .unwrap_or_default();
        self.inner.events.publish(
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

    async fn drive(self, mut events: tokio::sync::mpsc::Receiver<NetworkEvent>) {
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::Message { source, data, .. } => match borsh::from_slice(&data) {
                    // Deltas keep their arrival order: queued here, not in a task.
                    Ok(Gossip::Delta(bytes)) => self.queue_delta(source, &bytes),
                    Ok(Gossip::Deltas(list)) => {
                        for bytes in list {
                            self.queue_delta(source, &bytes);
                        }
                    }
                    Ok(Gossip::Sealed(sealed)) => match self.open_sealed(&sealed) {
                        Some(Gossip::Deltas(list)) => {
                            for bytes in list {
                                self.queue_delta(source, &bytes);
                            }
                        }
                        Some(Gossip::Delta(bytes)) => self.queue_delta(source, &bytes),
                        Some(Gossip::Gov(op)) => {
                            let node = self.clone();
                            tokio::spawn(async move { node.on_governance(source, *op).await });
                        }
                        Some(_) => tracing::warn!(peer = %source, "unexpected sealed gossip"),
                        None => tracing::debug!(
                            peer = %source,
                            epoch = sealed.epoch,
                            "sealed gossip under a key this node does not hold"
                        ),
                    },
                    // Members seal governance; anything else is not a member's.
                    Ok(Gossip::Gov(_)) => {
                        tracing::debug!(peer = %source, "unsealed governance gossip ignored");
                    }
                    Err(e) => tracing::warn!(peer = %source, error = %e, "undecodable gossip"),
                },
                NetworkEvent::Request { peer, data, handle } => {
                    let node = self.clone();
                    tokio::spawn(async move {
                        let answer = node.on_request(peer, &data).await;
                        if let Ok(net) = node.net() {
                            let bytes = borsh::to_vec(&answer).unwrap_or_default();
                            if let Err(e) = net.client.respond(handle, bytes).await {
                                tracing::debug!(error = %e, "answering a peer failed");
                            }
                        }
                    });
                }
                NetworkEvent::PeerConnected(p) => {
                    tracing::debug!(peer = %p, "peer connected");
                    if let Ok(net) = self.net() {
                        net.sync_now.notify_one();
                    }
                }
                _ => {}
            }
        }
    }

    fn queue_delta(&self, source: PeerId, bytes: &[u8]) {
        let Ok(net) = self.net() else { return };
        let Ok(delta) = SignedDelta::from_bytes(bytes) else {
            tracing::warn!(peer = %source, "undecodable delta on gossip");
            return;
        };
        if net.inbox.try_send((source, delta)).is_err() {
            tracing::warn!("gossip inbox full; a delta is left to anti-entropy");
        }
    }

    async fn on_governance(&self, source: PeerId, op: SignedOp) {
        let Ok(net) = self.net() else { return };
        let ns = op.op.namespace;
        if !self.gov(|g| g.get(&ns).is_some_and(|s| s.is_member(&self.public_key()))) {
            return;
        }
        let waiting = self.gov(|g| {
            g.get(&ns)
                .map(|s| matches!(s.clone().apply(&op), Err(Refused::Waiting(_))))
                .unwrap_or(false)
        });
        let mut ops = vec![op];
        if waiting
            && let Ok(Response::Governance(more)) = net
                .client
                .fetch(source, Request::Governance { namespace: ns })
                .await
        {
            ops.extend(more);
        }
        if let Err(e) = self.apply_governance(ns, ops).await {
            tracing::warn!(error = %e, "storing governance failed");
        }
    }

    /// Merges gossiped deltas: everything waiting is taken at once and
    /// merged per context in arrival order, so consecutive deltas share
    /// commits and rarely find their parents missing.
    async fn merge_gossip(self, mut inbox: tokio::sync::mpsc::Receiver<(PeerId, SignedDelta)>) {
        let Ok(net) = self.net() else { return };
        while let Some(first) = inbox.recv().await {
            let mut all = vec![first];
            while all.len() < INBOX {
                match inbox.try_recv() {
                    Ok(m) => all.push(m),
                    Err(_) => break,
                }
            }
            // Per context, in order; the first sender answers parent requests.
            let mut by_ctx: Vec<(ContextId, PeerId, Vec<SignedDelta>)> = Vec::new();
            for (peer, d) in all {
                let ctx = d.delta.context;
                match by_ctx.iter_mut().find(|(c, _, _)| *c == ctx) {
                    Some((_, _, list)) => list.push(d),
                    None => by_ctx.push((ctx, peer, vec![d])),
                }
            }
            for (ctx, peer, deltas) in by_ctx {
                if !matches!(
                    self.inner
                        .store
                        .snapshot()
                        .and_then(|s| s.context_meta(&ctx)),
                    Ok(Some(_))
                ) {
                    continue;
                }
                let mut authority = self.authority(&ctx);
                let member = self.may_author(&ctx);
                if deltas
                    .iter()
                    .any(|d| member(&d.delta.author.0) && authority(&d.delta, &[]).is_err())
                {
                    // A member's delta may name governance newer than ours
                    // (a stranger's cannot make this node wait).
                    self.refresh_governance(&ctx).await;
                    authority = self.authority(&ctx);
                }
                let r = sync::ingest_held(
                    &self.inner.exec,
                    &net.pending,
                    peer,
                    ctx,
                    deltas,
                    &authority,
                )
                .await;
                self.record(&ctx, Ok(r));
                // Parents and snapshots come only from a member that may
                // write, never from whoever happened to relay the gossip.
                if net.pending.waiting(&ctx) > 0
                    && let Some(writer) = self.writer_peer(&ctx, peer).await
                {
                    self.resolve_later(writer, ctx);
                }
            }
        }
    }

    /// Fetches missing parents of held deltas if gossip has not brought
    /// them within a grace period. One resolver per context at a time.
    fn resolve_later(&self, peer: PeerId, ctx: ContextId) {
        let Ok(net) = self.net() else { return };
        if !net
            .resolving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ctx)
        {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PARENT_GRACE).await;
            let Ok(net) = node.net() else { return };
            if net.pending.waiting(&ctx) > 0 {
                let authority = node.authority(&ctx);
                let r = sync::resolve_pending(
                    &node.inner.exec,
                    &net.client,
                    &net.pending,
                    peer,
                    ctx,
                    &authority,
                )
                .await;
                node.record(&ctx, Ok(r));
            }
            net.resolving
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&ctx);
        });
    }

    /// Refreshes the governance of `ctx`'s namespace from a member it is
    /// connected to (never from the sender of an unknown author's delta,
    /// which may be an impostor), waiting briefly: ingestion goes on either
    /// way, and anti-entropy pulls governance regularly.
    async fn refresh_governance(&self, ctx: &ContextId) {
        let Ok(net) = self.net() else { return };
        let Some(ns) = self.namespace_of(ctx) else {
            return;
        };
        let me = self.public_key();
        let peers = net.client.connected_peers().await.unwrap_or_default();
        let member = self.gov(|g| {
            g.get(&ns).and_then(|s| {
                peers
                    .iter()
                    .find(|p| key_of(p).is_some_and(|k| k != me && s.is_member(&k)))
                    .copied()
            })
        });
        let Some(peer) = member else { return };
        let ask = net
            .client
            .fetch(peer, Request::Governance { namespace: ns });
        if let Ok(Ok(Response::Governance(ops))) =
            tokio::time::timeout(Duration::from_secs(2), ask).await
            && let Err(e) = self.apply_governance(ns, ops).await
        {
            tracing::warn!(error = %e, "storing governance failed");
        }
    }

    async fn on_request(&self, peer: PeerId, data: &[u8]) -> Response {
        let req: Request = match borsh::from_slice(data) {
            Ok(r) => r,
            Err(e) => return Response::Refused(format!("undecodable request: {e}")),
        };
        let asker = key_of(&peer);
        match &req {
            Request::JoinNamespace { invitation } => {
                let ns = invitation.invitation.group_id;
                if let Err(e) = invitation.verify(&ns, now_millis() / 1000) {
                    return Response::Refused(e.to_string());
                }
                self.gov(|g| match g.get(&ns) {
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
                })
            }
            Request::Submit { op } => {
                let ns = op.op.namespace;
                // The joiner's signed request: it holds the key it joins with.
                let Body::MemberJoined {
                    member,
                    invitation,
                    addrs,
                } = &op.op.body
                else {
                    return Response::Refused("only join requests are accepted".into());
                };
                if op.verify().is_err() || *member != op.op.author || Some(op.op.author) != asker {
                    return Response::Refused("a join request must be signed by the joiner".into());
                }
                // Checked against this node's clock, not the joiner's.
                if let Err(e) = invitation.verify(&ns, now_millis() / 1000) {
                    return Response::Refused(e.to_string());
                }
                let body = Body::MemberJoined {
                    member: *member,
                    invitation: invitation.clone(),
                    addrs: addrs.clone(),
                };
                if let Err(e) = self.change(&ns, body).await {
                    return Response::Refused(e.to_string());
                }
                // Give the new member the current key.
                if let Err(e) = self.share_key(&ns, &[*member], false).await {
                    tracing::warn!(error = %e, "sharing the namespace key failed");
                }
                self.gov(|g| match g.get(&ns) {
                    Some(s) => Response::Governance(s.ordered_ops()),
                    None => Response::Ok,
                })
            }
            Request::Governance { namespace } => self.gov(|g| match g.get(namespace) {
                Some(s) if asker.is_some_and(|k| s.is_member(&k)) => {
                    Response::Governance(s.ordered_ops())
                }
                _ => Response::Refused("not a member of that namespace".into()),
            }),
            Request::Heads { context }
            | Request::Deltas { context, .. }
            | Request::Snapshot { context } => {
                let ctx = ContextId(*context);
                let allowed = self.peer_is_member_of_context(&peer, &ctx);
                let exec = self.inner.exec.clone();
                let req = req.clone();
                tokio::task::spawn_blocking(move || sync::serve_context(&exec, &req, allowed))
                    .await
                    .unwrap_or_else(|e| Response::Refused(e.to_string()))
            }
            Request::Blob { hash } => {
                let allowed = asker.is_some_and(|k| {
                    self.gov(|g| {
                        g.values().any(|s| {
                            s.is_member(&k) && s.app.as_ref().is_some_and(|a| a.blob == *hash)
                        })
                    })
                });
                if !allowed {
                    return Response::Refused("not a member of a namespace running it".into());
                }
                match self.inner.store.snapshot().and_then(|s| s.blob(hash)) {
                    Ok(Some(b)) => Response::Blob(b),
                    Ok(None) => Response::Refused("not stored here".into()),
                    Err(e) => Response::Refused(e.to_string()),
                }
            }
        }
    }
}

fn parse_addrs(list: &[String]) -> Result<Vec<Multiaddr>> {
    list.iter()
        .map(|a| {
            a.parse::<Multiaddr>().map_err(|e| {
                NodeError::bad("InvalidMultiaddr", format!("`{a}` is not a multiaddr: {e}"))
            })
        })
        .collect()
}
