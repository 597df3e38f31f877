//! Contexts as the API shows them: creating one (registered in its group's
//! governance first), joining one a member created, listing, deleting,
//! calling methods, and who may subscribe to one.

use mero_crdt::{ContextId, DeltaId, Hash};
use mero_executor::{CallOutcome, ExecError, NewContext};
use mero_network::PeerId;
use mero_runtime::Intent;
use mero_store::ContextMeta;
use sha2::{Digest, Sha256};

use crate::authz;
use crate::blocking::blocking;
use crate::error::{NodeError, Result};
use crate::governance::{AppInfo, Body, Namespace, scoped_id};
use crate::node::Node;
use crate::replication::Taking;
use crate::sync::{context_topic, key_of, peer_of};
use crate::upgrades::journal::Call;

/// The node-local records of contexts this node left.
const LEFT: &str = "left-context";

/// A context with what the API shows about it.
#[derive(Debug, Clone)]
pub struct ContextInfo {
    /// Its metadata.
    pub meta: ContextMeta,
    /// Its state root hash.
    pub root_hash: Hash,
    /// Its DAG heads.
    pub heads: Vec<DeltaId>,
}

/// A call's arguments as the JSON text a guest receives: empty for none.
pub fn args_text(args: &serde_json::Value) -> String {
    match args {
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Node {
    /// Creates a context of `group` (a namespace or one of its subgroups)
    /// running `application`, and runs its `init` with `init_params` (JSON
    /// bytes). The context is registered in the group's governance first,
    /// so its first delta names its registration.
    pub async fn create_context(
        &self,
        application: &[u8; 32],
        group: &[u8; 32],
        init_params: Vec<u8>,
        seed: Option<[u8; 32]>,
        name: Option<String>,
    ) -> Result<ContextId> {
        let members = &self.inner.members;
        let governance = members
            .containing_group(group)
            .ok_or_else(|| NodeError::not_found("GroupNotFound", "Namespace or group not found"))?;
        let ns = governance.id;
        let me = self.public_key();
        authz::may_create_context(&governance, &me, group)?;
        let snap = self.inner.store.snapshot()?;
        let group_rec = snap
            .group(&ns)?
            .ok_or_else(|| NodeError::not_found("GroupNotFound", "Namespace or group not found"))?;
        let app = snap
            .application(application)?
            .ok_or_else(|| NodeError::not_found("ApplicationNotFound", "Application not found"))?;
        if app.id != group_rec.application {
            return Err(NodeError::bad(
                "ApplicationMismatch",
                "the group runs another application; create the context with the group's application",
            ));
        }
        drop(snap);
        let args = String::from_utf8(init_params).map_err(|_| {
            NodeError::bad(
                "InvalidInitParams",
                "initializationParams must be UTF-8 JSON",
            )
        })?;
        if !args.trim().is_empty() && serde_json::from_str::<serde_json::Value>(&args).is_err() {
            return Err(NodeError::bad(
                "InvalidInitParams",
                "initializationParams must be JSON",
            ));
        }
        // Bound to the namespace and this node's key: a seed gives the same
        // id for the same creator in the same namespace.
        let salt: [u8; 32] = match seed {
            Some(s) => Sha256::digest([b"mero.context.seed".as_slice(), &s].concat()).into(),
            None => rand::random(),
        };
        let id = ContextId(scoped_id(&ns, &me, &salt));
        // A seeded id may be registered from an earlier creation.
        let registered = governance.group_of(&id.0).map(|at| at == *group);
        drop(governance);
        match registered {
            Some(true) => {}
            Some(false) => {
                return Err(NodeError::conflict(
                    "ContextExists",
                    "a context with that id is registered in another group",
                ));
            }
            None => {
                members
                    .change(
                        &ns,
                        Body::ContextRegistered {
                            context: id.0,
                            name: name.clone(),
                            group: *group,
                            salt,
                        },
                    )
                    .await?;
            }
        }
        let created = self
            .inner
            .exec
            .create_context(NewContext {
                id,
                application: app.id,
                blob: app.blob,
                app_version: app.version,
                group: Some(ns),
                name,
                init_args: args,
            })
            .await;
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                if registered.is_none() {
                    // Withdraw the registration of a context that never was.
                    let _ = members
                        .author(ns, Body::ContextDetached { context: id.0 })
                        .await;
                }
                return Err(match e {
                    ExecError::Call(c) => NodeError::bad("InitFailed", format!("init failed: {c}")),
                    other => other.into(),
                });
            }
        };
        self.inner
            .peers
            .subscribe(&context_topic(&created.id))
            .await;
        Ok(created.id)
    }

    /// Joins a context of a namespace this node is a member of: fetches the
    /// app if missing, creates the local replica and pulls a snapshot. An
    /// explicit join undoes an earlier [`leave_context`](Self::leave_context).
    pub async fn join_context(&self, ctx: &ContextId) -> Result<()> {
        let joined = self.join_replica(ctx).await;
        if joined.is_ok() {
            self.set_left(ctx, false).await?;
        }
        joined
    }

    /// Joins `ctx` unless this node holds it already (one join at a time).
    pub(crate) async fn join_replica(&self, ctx: &ContextId) -> Result<()> {
        let _one = self.inner.joining.lock().await;
        if self.inner.store.snapshot()?.context_meta(ctx)?.is_some() {
            return Ok(());
        }
        let me = self.public_key();
        let Some(state) = self.inner.members.registering(ctx) else {
            if self.inner.store.snapshot()?.context_meta(ctx)?.is_some() {
                return Ok(());
            }
            return Err(NodeError::not_found(
                "ContextNotFound",
                "no namespace this node belongs to has that context",
            ));
        };
        // Refused as a non-member of the group the context is in.
        authz::may_read(&state, &me, ctx).map_err(|_| authz::Denied::NotInGroup)?;
        // The version its group runs now (after any upgrade), which is the
        // layout the members' snapshots have.
        let group = state.contexts.get(&ctx.0).map_or(state.id, |r| r.group);
        let app = state
            .app_of(&group)
            .cloned()
            .ok_or_else(|| NodeError::Internal("namespace without app".into()))?;
        let peers = self.snapshot_peers(&state, ctx).await;
        let (app_version, state_version) = self.version_of(&app, &peers).await?;
        self.inner
            .exec
            .create_replica(ContextMeta {
                id: *ctx,
                application: app.id,
                blob: app.blob,
                app_version,
                state_version,
                group: Some(state.id),
                name: state.contexts.get(&ctx.0).and_then(|r| r.name.clone()),
                last_hlc: Default::default(),
                delta_count: 0,
                created_at_millis: mero_crdt::hlc::wall_millis(),
            })
            .await?;
        let ns = state.id;
        drop(state);
        self.inner.peers.subscribe(&context_topic(ctx)).await;
        match self
            .join_snapshot(ctx, &peers, None, Taking::default())
            .await
        {
            // Taken from a member that knew every removal known here.
            Ok(()) => {
                if let Some(state) = self.inner.members.get(&ns) {
                    self.settle_known(ctx, &state).await?;
                }
            }
            // Anti-entropy keeps trying; the context exists already.
            Err(e) => tracing::warn!(error = %e, "no peer sent a snapshot yet"),
        }
        Ok(())
    }

    /// `app`'s version and state version, installing it from `peers` if it
    /// is not here: what a context running it records.
    async fn version_of(&self, app: &AppInfo, peers: &[PeerId]) -> Result<(String, u32)> {
        self.ensure_app(app, peers).await?;
        let snap = self.inner.store.snapshot()?;
        let record = snap
            .application(&app.id)?
            .ok_or_else(|| NodeError::Internal("application vanished".into()))?;
        let loaded = self.inner.exec.app(&snap, &app.blob).await?;
        Ok((record.version, loaded.description().state_version))
    }

    /// The connected members `ctx`'s snapshots may come from: snapshots are
    /// trusted state, so only members that may write it.
    async fn snapshot_peers(&self, state: &Namespace, ctx: &ContextId) -> Vec<PeerId> {
        let me = self.public_key();
        let connected = self.inner.peers.connected().await;
        let mut peers: Vec<PeerId> = state
            .members
            .keys()
            .filter(|k| **k != me && authz::may_author(state, k, ctx))
            .filter_map(peer_of)
            .filter(|p| connected.contains(p))
            .collect();
        // One that sent a snapshot failing verification is asked last.
        self.inner.replication.by_trust(&mut peers);
        peers
    }

    /// Joins the first snapshot of `ctx` one of `peers` sends; with
    /// `replace`, dropping the context's replicated state right before (so
    /// that a peer that sends none leaves it as it was).
    async fn join_snapshot(
        &self,
        ctx: &ContextId,
        peers: &[PeerId],
        replace: Option<ContextMeta>,
        taking: Taking<'_>,
    ) -> Result<()> {
        let replication = &self.inner.replication;
        let mut last = NodeError::conflict("NoMembers", "no member that may write it is connected");
        let mut joined = false;
        // A snapshot proven from the deltas it carries is asked of every
        // member first: one that could be proven is not taken on a
        // sender's word because that sender was asked first.
        let passes: &[bool] = if peers.len() > 1 {
            &[true, false]
        } else {
            &[false]
        };
        'passes: for &proven in passes {
            for p in peers {
                let taking = Taking { proven, ..taking };
                match replication
                    .join_from(*p, *ctx, replace.clone(), taking)
                    .await
                {
                    Ok(()) => {
                        replication.publish_snapshot_joined(ctx);
                        joined = true;
                        break 'passes;
                    }
                    Err(e) => {
                        last = NodeError::conflict(
                            "SnapshotRefused",
                            format!("no member sent a snapshot this node could take: {e}"),
                        )
                    }
                }
            }
        }
        replication.set_status(ctx, |s| {
            s.state = "idle";
            s.last_sync_millis = Some(mero_crdt::hlc::wall_millis());
        });
        if joined { Ok(()) } else { Err(last) }
    }

    /// Takes a member's state of `ctx` anew (upstream's `resync`, the
    /// operator's tool for a copy that went astray). Refused while this
    /// node has DAG heads of its own unless `force`: then its replicated
    /// state (entries and DAG) is dropped once a member's snapshot arrived,
    /// its private storage kept, the context moved to the version its group
    /// runs now, and the snapshot joined. Refused, changing nothing, when
    /// no member that may write it is connected or sends one.
    pub async fn resync_context(&self, ctx: &ContextId, force: bool) -> Result<()> {
        self.resync_to(ctx, force, Taking::default()).await
    }

    /// [`Node::resync_context`], taking only a snapshot `taking` allows.
    pub(crate) async fn resync_to(
        &self,
        ctx: &ContextId,
        force: bool,
        taking: Taking<'_>,
    ) -> Result<()> {
        let _one = self.inner.joining.lock().await;
        let snap = self.inner.store.snapshot()?;
        let meta = snap
            .context_meta(ctx)?
            .ok_or_else(|| NodeError::not_found("ContextNotFound", "Context not found"))?;
        if !snap.heads(ctx)?.is_empty() && !force {
            return Err(NodeError::conflict(
                "LocalStateExists",
                "this node has DAG heads of its own for the context: pass force to drop its \
                 replicated state (private storage is kept) and take a member's",
            ));
        }
        drop(snap);
        let state = meta
            .group
            .and_then(|g| self.inner.members.get(&g))
            .ok_or_else(|| NodeError::not_found("ContextNotFound", "no namespace holds it"))?;
        authz::may_read(&state, &self.public_key(), ctx).map_err(|_| authz::Denied::NotInGroup)?;
        let mut peers = self.snapshot_peers(&state, ctx).await;
        if let Some(only) = taking.from {
            peers.retain(|p| key_of(p) == Some(only));
        }
        if peers.is_empty() {
            return Err(NodeError::conflict(
                "NoMembers",
                "no member that may write the context is connected: nothing to resync from",
            ));
        }
        let group = state.contexts.get(&ctx.0).map_or(state.id, |r| r.group);
        let app = state
            .app_of(&group)
            .cloned()
            .ok_or_else(|| NodeError::Internal("namespace without app".into()))?;
        drop(state);
        let mut replace = None;
        if force {
            let (app_version, state_version) = self.version_of(&app, &peers).await?;
            replace = Some(ContextMeta {
                application: app.id,
                blob: app.blob,
                app_version,
                state_version,
                last_hlc: Default::default(),
                delta_count: 0,
                ..meta
            });
        }
        self.join_snapshot(ctx, &peers, replace, taking).await
    }

    fn info(&self, snap: &mero_store::Snapshot, meta: ContextMeta) -> Result<ContextInfo> {
        Ok(ContextInfo {
            root_hash: snap.root_hash(&meta.id)?,
            heads: snap.heads(&meta.id)?,
            meta,
        })
    }

    /// The keys that act in `ctx`: the members of its group (each node
    /// acts as its one key). 404 if this node neither holds it nor knows
    /// its registration.
    pub fn context_identities(&self, ctx: &ContextId) -> Result<Vec<[u8; 32]>> {
        let ns = match self.inner.members.registering(ctx) {
            Some(ns) => ns,
            None => {
                let meta = self.context(ctx)?.meta;
                meta.group
                    .and_then(|g| self.inner.members.get(&g))
                    .ok_or_else(|| NodeError::not_found("ContextNotFound", "Context not found"))?
            }
        };
        authz::may_read_roster(&ns, &self.public_key())?;
        let group = ns.group_of(&ctx.0).unwrap_or(ns.id);
        Ok(ns
            .members
            .keys()
            .filter(|k| ns.in_group(k, &group))
            .copied()
            .collect())
    }

    /// The bytes this node stores of `ctx`'s state (keys and entries).
    pub async fn context_storage_size(&self, ctx: &ContextId) -> Result<u64> {
        self.context(ctx)?;
        let store = self.inner.store.clone();
        let ctx = *ctx;
        blocking(move || {
            let snap = store.snapshot()?;
            let mut total = 0u64;
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = snap.entries_page(&ctx, after.as_deref(), 4096)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                for (k, v) in &page {
                    total = total.saturating_add((k.len() + v.len()) as u64);
                }
            }
            Ok(total)
        })
        .await
    }

    /// Every context on this node.
    pub fn contexts(&self) -> Result<Vec<ContextInfo>> {
        let snap = self.inner.store.snapshot()?;
        let mut metas = snap.contexts()?;
        metas.sort_by_key(|m| m.created_at_millis);
        metas.into_iter().map(|m| self.info(&snap, m)).collect()
    }

    /// One context (404 if unknown).
    pub fn context(&self, id: &ContextId) -> Result<ContextInfo> {
        let snap = self.inner.store.snapshot()?;
        let meta = snap
            .context_meta(id)?
            .ok_or_else(|| NodeError::not_found("ContextNotFound", "Context not found"))?;
        self.info(&snap, meta)
    }

    /// Whether this node left `ctx` (and so does not follow it on its own).
    pub(crate) fn has_left(&self, ctx: &ContextId) -> Result<bool> {
        Ok(self.inner.store.snapshot()?.local(LEFT, &ctx.0)?.is_some())
    }

    /// Records (or forgets) that this node left `ctx`.
    async fn set_left(&self, ctx: &ContextId, left: bool) -> Result<()> {
        if self.has_left(ctx)? == left {
            return Ok(());
        }
        let store = self.inner.store.clone();
        let id = ctx.0;
        blocking(move || {
            let mut w = store.write()?;
            if left {
                w.put_local(LEFT, &id, &[])?;
            } else {
                w.delete_local(LEFT, &id)?;
            }
            w.commit()?;
            Ok(())
        })
        .await
    }

    /// Leaves a context on this node only (upstream's node-local opt-out):
    /// the replica is deleted and auto-follow no longer brings it back;
    /// governance and the other members are not told. Joining it again
    /// undoes it.
    pub async fn leave_context(&self, ctx: &ContextId) -> Result<()> {
        let held = self.inner.store.snapshot()?.context_meta(ctx)?.is_some();
        if !held && self.inner.members.registering(ctx).is_none() {
            return Err(NodeError::not_found("ContextNotFound", "Context not found"));
        }
        self.set_left(ctx, true).await?;
        self.delete_context(ctx).await?;
        Ok(())
    }

    /// Deletes a context and everything this node stores for it. Returns
    /// whether it existed. Auto-follow does not bring it back.
    pub async fn delete_context(&self, id: &ContextId) -> Result<bool> {
        let _one = self.inner.joining.lock().await;
        if self.inner.members.registering(id).is_some() {
            self.set_left(id, true).await?;
        }
        self.inner.peers.unsubscribe(&context_topic(id)).await;
        self.inner.presence.forget(id);
        self.inner.journal.forget(id);
        let existed = self.inner.exec.delete_context(*id).await?;
        let store = self.inner.store.clone();
        let id = *id;
        blocking(move || {
            let snap = store.snapshot()?;
            let stale: Vec<String> = snap
                .aliases("context")?
                .into_iter()
                .filter(|(_, v)| *v == id.0)
                .map(|(k, _)| k)
                .collect();
            drop(snap);
            if !stale.is_empty() {
                let mut w = store.write()?;
                for name in stale {
                    w.delete_alias("context", &name)?;
                }
                w.commit()?;
            }
            Ok(())
        })
        .await?;
        Ok(existed)
    }

    /// Calls `method` of a context with `args` (a JSON object keyed by
    /// parameter name; null for none). Views answer from committed state;
    /// mutating calls answer once durable.
    pub async fn execute(
        &self,
        ctx: &ContextId,
        method: &str,
        args: &serde_json::Value,
    ) -> Result<CallOutcome> {
        self.execute_text(ctx, method, args_text(args)).await
    }

    /// [`Node::execute`] with the arguments as JSON text already (empty for
    /// none), as the JSON-RPC route receives them.
    pub async fn execute_text(
        &self,
        ctx: &ContextId,
        method: &str,
        args: String,
    ) -> Result<CallOutcome> {
        // Membership decides who may call, by the method's intent.
        let me = self.public_key();
        let journaled = (method.to_owned(), args.clone());
        let outcome = self
            .inner
            .exec
            .call_authorized(ctx, method, args, |meta, intent| {
                let Some(ns) = meta.group else {
                    return Ok(());
                };
                let state = self.inner.members.get(&ns);
                authz::may_call(state.as_deref(), &me, &meta.id, intent == Intent::Mutating)
                    .map_err(authz::Denied::into_exec)
            })
            .await?;
        if method == "migrate_my_entries" {
            self.noted_rewrite(*ctx, &outcome.output, outcome.root_hash);
        }
        if let Some(delta) = outcome.delta {
            let (method, args) = journaled;
            self.inner.journal.record(
                *ctx,
                Call {
                    delta,
                    method,
                    args,
                },
            );
        }
        Ok(outcome)
    }

    /// Whether a client of this node may subscribe to `ctx`: the node holds
    /// it and is a member of its group.
    pub fn check_subscribe_context(&self, ctx: &ContextId) -> Result<()> {
        let meta = self
            .inner
            .store
            .snapshot()?
            .context_meta(ctx)?
            .ok_or_else(|| NodeError::not_found("ContextNotFound", "Context not found"))?;
        let Some(ns) = meta.group else {
            return Ok(());
        };
        let state = self.inner.members.get(&ns);
        Ok(authz::may_call(
            state.as_deref(),
            &self.public_key(),
            ctx,
            false,
        )?)
    }
}
