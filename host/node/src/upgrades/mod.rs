//! Upgrading a group's contexts to another version of their application.
//!
//! An admin orders an upgrade on its node. The node plans it from what the
//! two versions declare ([`plan`]): swap the code, run the target's
//! migration, or refuse and say why. It then migrates and checks every
//! context of the group it holds on a staged copy of the state (a dry run
//! first when there are several, so that one failure leaves all of them on
//! the old version), commits, and only then signs a `GroupUpgraded`
//! governance op naming the target, the clock and author every migration
//! write is stamped with, the fuel, and each context's cut (its DAG heads)
//! and migrated root hash. A failed migration or check is a logical abort:
//! nothing is published, nothing changed, the status says why, and retry
//! runs it again.
//!
//! Every member folds the op and migrates its own copy the same way (see
//! `run_folded`): it waits until it holds the cut, runs the migration with
//! the op's stamps and fuel on the deterministic runtime, and compares its
//! root hash with the one in the op, so a divergence is reported instead of
//! hidden. A node that was offline folds the op when it catches up and
//! migrates then. A failed migration on a member is remembered per context
//! and target and not run again until a retry.
//!
//! Writes: a call queued for the old version that reaches the executor
//! after the upgrade committed is refused with a retryable
//! `UpgradeInProgress`; reads are served throughout. A member migrates only
//! at exactly the cut: one holding writes past it (made under the old
//! version before it heard of the upgrade) takes a migrated member's state
//! and re-runs its own such calls under the new version ([`rejoin`]).
//! Migrated members refuse deltas of the old layout.

pub(crate) mod authored;
mod cascade;
pub(crate) mod journal;
mod migration_status;
pub(crate) mod plan;
mod rejoin;
pub(crate) mod status;

use std::sync::Arc;
use std::time::Duration;

use mero_crdt::{Author, ContextId, DeltaId, Hlc};
use mero_executor::{ExecError, Upgrade, Upgraded};
use mero_runtime::App;

use crate::authz;
use crate::error::{NodeError, Result};
use crate::events::Scope;
use crate::governance::{AppInfo, Body, Namespace, UpgradePlan, UpgradedContext};
use crate::node::Node;
use crate::sync::peer_of;

pub use self::cascade::{AbortOutcome, CascadeEntry};
pub(crate) use self::migration_status::Rollups;
pub use self::migration_status::{MemberMigration, MemberState, MigrationStatus, Rollup};
use self::plan::Plan;
pub use self::status::{ContextUpgrade, Phase, UpgradeStatus};

/// How long a member waits to hold an upgrade's cut before it migrates
/// what it has (and reports the difference).
const CUT_WAIT: Duration = Duration::from_secs(30);

fn b58(ctx: &ContextId) -> String {
    bs58::encode(ctx.0).into_string()
}

fn now_secs() -> u64 {
    mero_crdt::hlc::wall_millis() / 1000
}

fn group_not_found() -> NodeError {
    NodeError::not_found("GroupNotFound", "Group not found")
}

fn aborted() -> NodeError {
    NodeError::conflict(
        "MigrationAborted",
        "the cascade was aborted before this group committed: it stays on its application",
    )
}

/// An upgrade checked and planned, ready to run on a group's contexts.
pub(crate) struct Prepared {
    current: AppInfo,
    target: AppInfo,
    next: Arc<App>,
    planned: Plan,
    from_state_version: u32,
    to_state_version: u32,
}

impl Node {
    /// Upgrades `group`'s contexts to application `target`: plans it,
    /// migrates and checks every context of the group on this node, commits,
    /// and publishes the upgrade to the other members. A refusal or a
    /// failing migration or check changes nothing and says why.
    pub async fn upgrade_group(
        &self,
        group: &[u8; 32],
        target: &[u8; 32],
        force_code_only: bool,
    ) -> Result<UpgradeStatus> {
        let gov = self
            .inner
            .members
            .containing_group(group)
            .ok_or_else(group_not_found)?;
        let prepared = self.prepare(&gov, group, target, force_code_only).await?;
        // A context already on the target (a publication that failed after
        // it migrated) is never migrated twice.
        let contexts = local_contexts(self, &gov, group, Some(&prepared.target.blob))?;
        if contexts.is_empty() {
            return Err(NodeError::conflict(
                "NoContexts",
                "the group has no contexts on this node to upgrade",
            ));
        }
        self.commit_group(&gov, group, &prepared, &contexts, None)
            .await
    }

    /// Checks that this node may move `group` to `target` and plans it.
    async fn prepare(
        &self,
        gov: &Namespace,
        group: &[u8; 32],
        target: &[u8; 32],
        force_code_only: bool,
    ) -> Result<Prepared> {
        authz::may_upgrade(gov, &self.public_key(), group)?;
        if self
            .inner
            .upgrades
            .get(group)
            .is_some_and(|s| s.phase == Phase::InProgress)
        {
            return Err(NodeError::conflict(
                "UpgradeInProgress",
                "an upgrade is already in progress for this group",
            ));
        }
        let snap = self.inner.store.snapshot()?;
        let target_rec = snap
            .application(target)?
            .ok_or_else(|| NodeError::not_found("ApplicationNotFound", "Application not found"))?;
        let current = gov
            .app_of(group)
            .cloned()
            .ok_or_else(|| NodeError::Internal("a group without an application".into()))?;
        if current.blob == target_rec.blob {
            return Err(NodeError::conflict(
                "AlreadyTargeted",
                "the group already runs this application",
            ));
        }
        let running = self.inner.exec.app(&snap, &current.blob).await?;
        drop(snap);
        let next = self.migration_app(&target_rec.blob).await?;
        let planned = plan::plan(running.description(), next.description(), force_code_only)
            .map_err(|e| match e {
                plan::PlanError::PackageMismatch { .. } => NodeError::bad(e.kind(), e.to_string()),
                _ => NodeError::conflict(e.kind(), e.to_string()),
            })?;
        Ok(Prepared {
            from_state_version: running.description().state_version,
            to_state_version: next.description().state_version,
            current,
            target: AppInfo {
                id: target_rec.id,
                blob: target_rec.blob,
                size: target_rec.size,
                package: target_rec.package.clone(),
                version: target_rec.version.clone(),
                source: target_rec.source.clone(),
            },
            next,
            planned,
        })
    }

    /// Migrates and checks `contexts` of `group` here, commits, and
    /// publishes the group's `GroupUpgraded`. With `cascade` (its root),
    /// stops before committing anything if the cascade was aborted.
    async fn commit_group(
        &self,
        gov: &Namespace,
        group: &[u8; 32],
        prepared: &Prepared,
        contexts: &[ContextId],
        cascade: Option<&[u8; 32]>,
    ) -> Result<UpgradeStatus> {
        let me = self.public_key();
        let upgrades = &self.inner.upgrades;
        let snap = self.inner.store.snapshot()?;
        // After every stamp the contexts hold, so the migration's writes win.
        let last = contexts
            .iter()
            .filter_map(|c| snap.context_meta(c).ok().flatten())
            .map(|m| m.last_hlc)
            .max()
            .unwrap_or_default();
        drop(snap);
        let now = mero_crdt::hlc::wall_millis();
        let barrier = if last.millis >= now {
            Hlc {
                millis: last.millis,
                counter: last.counter.saturating_add(1),
            }
        } else {
            Hlc {
                millis: now,
                counter: 0,
            }
        };
        let mut plan = UpgradePlan {
            app: prepared.target.clone(),
            from_version: prepared.current.version.clone(),
            from_state_version: prepared.from_state_version,
            to_state_version: prepared.to_state_version,
            barrier: (barrier.millis, barrier.counter),
            fuel: self.migration_fuel(),
            contexts: Vec::new(),
        };
        let status = self.start_status(group, &plan, me, mero_crdt::hlc::wall_millis(), contexts);
        upgrades.put(status);
        self.publish_started(gov, &plan, contexts.len());

        let upgrade = self.upgrade_of(&plan, &prepared.next, prepared.planned, Author(me));
        if contexts.len() > 1 && upgrade.migrate_from.is_some() {
            // One failure must leave all of them on the old version.
            for ctx in contexts {
                let dry = Upgrade {
                    dry_run: true,
                    ..upgrade.clone()
                };
                if let Err(e) = self.inner.exec.upgrade(ctx, dry).await {
                    return Err(self.refused(group, ctx, e));
                }
            }
        }
        if let Some(root) = cascade
            && self.cascade_aborted(&gov.id, root)
        {
            upgrades.update(group, |s| s.phase = Phase::Aborted);
            return Err(aborted());
        }
        for ctx in contexts {
            match self.inner.exec.upgrade(ctx, upgrade.clone()).await {
                Ok(done) => {
                    self.swapped(group, ctx, &done, None, &prepared.current.version, &plan);
                    plan.contexts.push(UpgradedContext {
                        context: ctx.0,
                        heads: done.heads.iter().map(|h| h.0).collect(),
                        root: done.root_hash,
                    });
                }
                // Only the first context can fail here (the dry run passed
                // for all): nothing is committed yet.
                Err(e) if plan.contexts.is_empty() => return Err(self.refused(group, ctx, e)),
                Err(e) => {
                    tracing::error!(context = %b58(ctx), error = %e, "a migration failed after its dry run passed");
                    self.context_failed(group, ctx, &plan.app.blob, e.to_string());
                }
            }
        }
        let ns = gov.id;
        let published = self
            .inner
            .members
            .author(
                ns,
                Body::GroupUpgraded {
                    group: *group,
                    plan: Box::new(plan),
                },
            )
            .await;
        if let Err(e) = published {
            // Migrated here but not announced: retry publishes it again.
            let why = format!("the upgrade could not be published to the other members: {e}");
            upgrades.update(group, |s| {
                s.phase = Phase::Failed;
                s.error = Some(why);
            });
            return Err(e);
        }
        self.finish(group);
        self.upgrade_status(group)?
            .ok_or_else(|| NodeError::Internal("the upgrade status vanished".into()))
    }

    /// The upgrade of `group` as this node sees it: its last one, or the
    /// last attempt refused here; `None` if it never had one.
    pub fn upgrade_status(&self, group: &[u8; 32]) -> Result<Option<UpgradeStatus>> {
        let gov = self
            .inner
            .members
            .containing_group(group)
            .ok_or_else(group_not_found)?;
        if let Some(s) = self.inner.upgrades.get(group) {
            return Ok(Some(s));
        }
        // Folded before this process started: describe it from governance.
        let Some(record) = gov.upgrades.get(group) else {
            return Ok(None);
        };
        let contexts = local_contexts(self, &gov, group, None)?;
        let mut status = self.start_status(
            group,
            &record.plan,
            record.initiated_by,
            record.initiated_millis,
            &contexts,
        );
        let snap = self.inner.store.snapshot()?;
        for c in &mut status.contexts {
            if snap
                .context_meta(&c.context)?
                .is_some_and(|m| m.blob == record.plan.app.blob)
            {
                c.root_hash = Some(snap.root_hash(&c.context)?);
                status.swapped += 1;
            }
        }
        status.phase = if status.swapped == status.total {
            Phase::Completed
        } else {
            Phase::InProgress
        };
        Ok(Some(status))
    }

    /// Runs a failed upgrade of `group` again: the last attempt refused on
    /// this node, or the contexts whose migration failed here.
    pub async fn retry_upgrade(&self, group: &[u8; 32]) -> Result<UpgradeStatus> {
        let status = self.upgrade_status(group)?.ok_or_else(|| {
            NodeError::conflict("NothingToRetry", "the group has no upgrade to retry")
        })?;
        if status.phase == Phase::Completed {
            return Err(NodeError::conflict(
                "AlreadyCompleted",
                "the group's upgrade already completed",
            ));
        }
        if status.failed == 0 && status.phase != Phase::Failed {
            return Err(NodeError::conflict(
                "NothingToRetry",
                "nothing failed: the upgrade is still running",
            ));
        }
        self.inner.upgrades.forget_failures(&status.target_blob);
        let gov = self
            .inner
            .members
            .containing_group(group)
            .ok_or_else(group_not_found)?;
        let published = gov
            .upgrades
            .get(group)
            .is_some_and(|r| r.plan.app.blob == status.target_blob);
        if published {
            // Rebuilt from governance, with what is done here counted.
            self.inner.upgrades.remove(group);
            self.run_folded(gov.id, *group).await;
        } else {
            // Refused before anything was published: order it again.
            drop(gov);
            self.inner.upgrades.remove(group);
            return self
                .upgrade_group(group, &status.target_application, false)
                .await;
        }
        self.upgrade_status(group)?
            .ok_or_else(|| NodeError::Internal("the upgrade status vanished".into()))
    }

    /// Runs the upgrades membership folded, as they come, and those folded
    /// before a restart that this node has not run yet.
    pub(crate) fn run_upgrades(&self) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            for ns in node.inner.members.all() {
                for group in ns.upgrades.keys() {
                    node.inner.members.upgrades().push(ns.id, *group);
                }
            }
            let resumed = node.clone();
            node.inner
                .tasks
                .spawn(async move { resumed.resume_cascades().await });
            loop {
                for (ns, group) in node.inner.members.upgrades().next().await {
                    node.run_folded(ns, group).await;
                }
                // A cascade started or aborted moves groups' targets.
                node.inner.heartbeat_due.notify_one();
            }
        });
    }

    /// Migrates this node's contexts of `group` to the upgrade governance
    /// folded for it, as the ordering admin did. A context that missed
    /// several upgrades (its node was offline through them) climbs the
    /// group's ladder one rung at a time, each with its own component,
    /// stamps and cut, so every hop reads the layout it was written for.
    async fn run_folded(&self, ns: [u8; 32], group: [u8; 32]) {
        let Some(gov) = self.inner.members.get(&ns) else {
            return;
        };
        let Some(record) = gov.upgrades.get(&group).cloned() else {
            return;
        };
        let ladder = gov
            .upgrade_ladders
            .get(&group)
            .cloned()
            .unwrap_or_else(|| vec![record.clone()]);
        let plan = record.plan;
        let pending = match local_contexts(self, &gov, &group, Some(&plan.app.blob)) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the contexts of an upgraded group");
                return;
            }
        };
        if pending.is_empty() {
            return;
        }
        let all = local_contexts(self, &gov, &group, None).unwrap_or_default();
        let mut status = self.start_status(
            &group,
            &plan,
            record.initiated_by,
            record.initiated_millis,
            &all,
        );
        status.swapped = (all.len() - pending.len()) as u32;
        self.inner.upgrades.put(status);
        self.publish_started(&gov, &plan, all.len());
        let me = self.public_key();
        let peers: Vec<_> = gov
            .members
            .keys()
            .filter(|k| **k != me)
            .filter_map(peer_of)
            .collect();
        for ctx in &pending {
            if let Some(why) = self.inner.upgrades.verdict(ctx, &plan.app.blob) {
                self.context_failed(&group, ctx, &plan.app.blob, why);
                continue;
            }
            let Some(meta) = self
                .inner
                .store
                .snapshot()
                .ok()
                .and_then(|s| s.context_meta(ctx).ok().flatten())
            else {
                continue;
            };
            // The rungs after the one it runs (all of them if it runs the
            // group's first application).
            let start = ladder
                .iter()
                .rposition(|r| r.plan.app.blob == meta.blob)
                .map_or(0, |i| i + 1);
            let mut from_version = meta.app_version;
            let rungs = &ladder[start..];
            for (i, rung) in rungs.iter().enumerate() {
                let last = i + 1 == rungs.len();
                match self.climb(ctx, rung, &peers).await {
                    Ok((done, expected)) if last => {
                        self.swapped(&group, ctx, &done, expected, &from_version, &plan);
                    }
                    Ok(_) => {
                        self.inner.events.publish(
                            Scope::Context(*ctx),
                            "AppVersionChanged",
                            None,
                            serde_json::json!({
                                "fromVersion": from_version,
                                "toVersion": rung.plan.app.version,
                            }),
                        );
                        from_version = rung.plan.app.version.clone();
                    }
                    Err(why @ (Climb::PastCut | Climb::RungGone(_))) => {
                        if let Climb::RungGone(e) = &why {
                            tracing::warn!(context = %b58(ctx), to = %rung.plan.app.version, error = %e, "a rung's component is here nowhere: taking a migrated member's state instead");
                        }
                        // Straight to the version the group runs now.
                        self.rejoin_past_cut(
                            *ctx,
                            rejoin::Target {
                                group,
                                blob: plan.app.blob,
                                from_version,
                                to_version: plan.app.version.clone(),
                            },
                        );
                        break;
                    }
                    Err(Climb::Failed(why)) => {
                        tracing::warn!(context = %b58(ctx), to = %rung.plan.app.version, error = %why, "migration failed: logical abort, proceeding with current application");
                        self.context_failed(&group, ctx, &plan.app.blob, why);
                        break;
                    }
                }
            }
        }
        self.finish(&group);
        // Deltas written under the new version waited for this migration:
        // fetch them now rather than at the next anti-entropy round.
        let _ = self.trigger_sync();
    }

    /// Migrates `ctx` one rung: fetches the rung's component if it is not
    /// here, waits for the rung's cut, migrates with the rung's stamps and
    /// fuel, and compares roots where comparable. Returns the result and
    /// the root it was compared with.
    async fn climb(
        &self,
        ctx: &ContextId,
        rung: &crate::governance::UpgradeRecord,
        peers: &[mero_network::PeerId],
    ) -> std::result::Result<(Upgraded, Option<[u8; 32]>), Climb> {
        let plan = &rung.plan;
        let next = match self.ensure_app(&plan.app, peers).await {
            Ok(()) => self.migration_app(&plan.app.blob).await,
            Err(e) => Err(e),
        }
        .map_err(|e| {
            Climb::RungGone(format!(
                "the component of {} is not here: {e}",
                plan.app.version
            ))
        })?;
        let planned = if plan.to_state_version > plan.from_state_version {
            Plan::Migrate {
                from: plan.from_state_version,
            }
        } else {
            Plan::CodeOnly
        };
        let mut upgrade = self.upgrade_of(plan, &next, planned, Author(rung.initiated_by));
        let expected = plan.contexts.iter().find(|c| c.context == ctx.0);
        if let Some(cut) = expected {
            self.wait_for_cut(ctx, &cut.heads).await;
            // A migration reads exactly the cut here, or not at all.
            upgrade.cut = Some(cut.heads.iter().map(|h| DeltaId(*h)).collect());
        }
        let done = self
            .inner
            .exec
            .upgrade(ctx, upgrade)
            .await
            .map_err(|e| match e {
                ExecError::Denied {
                    kind: "NotAtCut", ..
                } => Climb::PastCut,
                e => Climb::Failed(e.to_string()),
            })?;
        // Comparable only if this node migrated exactly the cut: with later
        // deltas already here, its root includes them.
        let at_cut = expected.filter(|c| same_heads(&c.heads, &done.heads));
        let expected = at_cut.map(|c| c.root);
        match expected {
            Some(r) if r != done.root_hash => {
                tracing::warn!(context = %b58(ctx), "the migrated state differs from the ordering admin's: the states at the cut differ, or the migration is not deterministic")
            }
            Some(_) => {}
            None => {
                tracing::info!(context = %b58(ctx), "the context had moved past the upgrade's cut when it migrated here: its root is not compared")
            }
        }
        Ok((done, expected))
    }

    /// Waits (bounded) until this node holds every delta of `cut`.
    async fn wait_for_cut(&self, ctx: &ContextId, cut: &[[u8; 32]]) {
        let mut committed = self.inner.exec.subscribe();
        let deadline = tokio::time::Instant::now() + CUT_WAIT;
        loop {
            let held = self.inner.store.snapshot().is_ok_and(|s| {
                cut.iter()
                    .all(|h| s.has_delta(ctx, &DeltaId(*h)).unwrap_or(false))
            });
            if held {
                return;
            }
            let _ = self.trigger_sync();
            match tokio::time::timeout_at(deadline, committed.recv()).await {
                Err(_) => {
                    tracing::warn!(context = %b58(ctx), "migrating without the whole cut: its deltas did not arrive in time");
                    return;
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
                Ok(_) => {}
            }
        }
    }

    /// The component `blob`, loaded on the deterministic runtime.
    async fn migration_app(&self, blob: &[u8; 32]) -> Result<Arc<App>> {
        if let Some(app) = self.inner.migrations.loaded(blob) {
            return Ok(app);
        }
        let bytes = self.inner.store.snapshot()?.blob(blob)?.ok_or_else(|| {
            NodeError::not_found(
                "ApplicationNotFound",
                "the target's component is not stored here",
            )
        })?;
        load_for_migration(&self.inner.migrations, &bytes).await
    }

    fn upgrade_of(
        &self,
        plan: &UpgradePlan,
        next: &Arc<App>,
        planned: Plan,
        author: Author,
    ) -> Upgrade {
        upgrade_of(plan, next, &self.inner.migrations, planned, author)
    }

    fn migration_fuel(&self) -> u64 {
        self.inner
            .migrations
            .config()
            .fuel
            .unwrap_or(mero_runtime::DEFAULT_MIGRATION_FUEL)
    }

    fn start_status(
        &self,
        group: &[u8; 32],
        plan: &UpgradePlan,
        by: [u8; 32],
        millis: u64,
        contexts: &[ContextId],
    ) -> UpgradeStatus {
        UpgradeStatus {
            group: *group,
            from_version: plan.from_version.clone(),
            to_version: plan.app.version.clone(),
            from_state_version: plan.from_state_version,
            to_state_version: plan.to_state_version,
            target_application: plan.app.id,
            target_blob: plan.app.blob,
            initiated_at: millis / 1000,
            initiated_by: by,
            phase: Phase::InProgress,
            total: contexts.len() as u32,
            swapped: 0,
            failed: 0,
            completed_at: None,
            error: None,
            contexts: contexts
                .iter()
                .map(|c| ContextUpgrade {
                    context: *c,
                    root_hash: None,
                    expected_root_hash: plan
                        .contexts
                        .iter()
                        .find(|x| x.context == c.0)
                        .map(|x| x.root),
                    error: None,
                })
                .collect(),
        }
    }

    /// The attempt this node ordered is refused by a migration or check:
    /// nothing changed, nothing was published.
    fn refused(&self, group: &[u8; 32], ctx: &ContextId, e: ExecError) -> NodeError {
        let err = NodeError::from(e);
        tracing::warn!(context = %b58(ctx), error = %err, "migration_check failed: logical abort, proceeding with current application");
        let message = format!("context {}: {err}", b58(ctx));
        self.inner.upgrades.update(group, |s| {
            s.phase = Phase::Failed;
            s.error = Some(message.clone());
            s.failed = 1;
            if let Some(c) = s.contexts.iter_mut().find(|c| c.context == *ctx) {
                c.error = Some(err.to_string());
            }
        });
        match err {
            NodeError::Conflict { kind, .. } => NodeError::Conflict { kind, message },
            other => other,
        }
    }

    fn context_failed(&self, group: &[u8; 32], ctx: &ContextId, blob: &[u8; 32], why: String) {
        self.inner
            .upgrades
            .remember_failure(*ctx, *blob, why.clone());
        self.inner.upgrades.update(group, |s| {
            s.failed += 1;
            s.error.get_or_insert_with(|| why.clone());
            if let Some(c) = s.contexts.iter_mut().find(|c| c.context == *ctx) {
                c.error = Some(why);
            }
        });
    }

    fn swapped(
        &self,
        group: &[u8; 32],
        ctx: &ContextId,
        done: &Upgraded,
        expected: Option<[u8; 32]>,
        from_version: &str,
        plan: &UpgradePlan,
    ) {
        tracing::info!(context = %b58(ctx), writes = done.writes, to = %plan.app.version, "Migrated state written successfully");
        self.inner.upgrades.update(group, |s| {
            s.swapped += 1;
            if let Some(c) = s.contexts.iter_mut().find(|c| c.context == *ctx) {
                c.root_hash = Some(done.root_hash);
                c.expected_root_hash = expected;
            }
        });
        self.inner.events.publish(
            Scope::Context(*ctx),
            "AppVersionChanged",
            None,
            serde_json::json!({ "fromVersion": from_version, "toVersion": plan.app.version }),
        );
        self.rewrite_mine(*ctx);
    }

    fn publish_started(&self, gov: &Namespace, plan: &UpgradePlan, total: usize) {
        self.inner.events.publish(
            Scope::Group(gov.id),
            "MigrationStarted",
            None,
            serde_json::json!({
                "fromVersion": plan.from_version,
                "toVersion": plan.app.version,
                "toStateVersion": plan.to_state_version,
                "localContextsTotal": total,
            }),
        );
    }

    /// Settles the group's status once its contexts here are done, and
    /// has this node's migration report sent (`MigrationCompleted` follows
    /// from the members' reports, once all are migrated).
    fn finish(&self, group: &[u8; 32]) {
        self.inner.upgrades.update(group, |s| {
            if s.swapped >= s.total {
                s.phase = Phase::Completed;
                s.completed_at = Some(now_secs());
                s.error = None;
            } else if s.failed > 0 {
                s.phase = Phase::Failed;
            }
        });
        self.inner.heartbeat_due.notify_one();
    }
}

/// Why a rung was not climbed.
enum Climb {
    /// The context's heads here are not the rung's cut: this node holds
    /// writes past it (see [`rejoin`]).
    PastCut,
    /// The rung's component is neither here nor with a connected member:
    /// the context cannot climb it (see [`rejoin`]).
    RungGone(String),
    /// The migration failed (a logical abort) or could not run.
    Failed(String),
}

/// Whether two sets of DAG heads are the same set.
fn same_heads(cut: &[[u8; 32]], heads: &[DeltaId]) -> bool {
    let mut a: Vec<[u8; 32]> = cut.to_vec();
    let mut b: Vec<[u8; 32]> = heads.iter().map(|h| h.0).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// This node's contexts registered in `group`, in id order; only those not
/// running `except_blob` if given.
fn local_contexts(
    node: &Node,
    gov: &Namespace,
    group: &[u8; 32],
    except_blob: Option<&[u8; 32]>,
) -> Result<Vec<ContextId>> {
    let snap = node.inner.store.snapshot()?;
    let mut out = Vec::new();
    for (id, reg) in &gov.contexts {
        if reg.group != *group {
            continue;
        }
        let ctx = ContextId(*id);
        let Some(meta) = snap.context_meta(&ctx)? else {
            continue;
        };
        if except_blob.is_some_and(|b| meta.blob == *b) {
            continue;
        }
        out.push(ctx);
    }
    Ok(out)
}

/// `bytes`, a component, loaded on `migrations`, the deterministic runtime.
pub(crate) async fn load_for_migration(
    migrations: &Arc<mero_runtime::Runtime>,
    bytes: &[u8],
) -> Result<Arc<App>> {
    migrations.load(bytes).await.map_err(|e| match e {
        mero_runtime::LoadError::Invalid(m) => NodeError::bad("InvalidComponent", m),
        mero_runtime::LoadError::Host(m) => NodeError::Internal(m),
    })
}

/// What every node runs to move a context as `plan` says, on `migrations`,
/// with the writes of its migration (if `planned` runs one) stamped as
/// `author`'s.
pub(crate) fn upgrade_of(
    plan: &UpgradePlan,
    next: &Arc<App>,
    migrations: &Arc<mero_runtime::Runtime>,
    planned: Plan,
    author: Author,
) -> Upgrade {
    Upgrade {
        application: plan.app.id,
        app: next.clone(),
        runtime: migrations.clone(),
        app_version: plan.app.version.clone(),
        migrate_from: match planned {
            Plan::CodeOnly => None,
            Plan::Migrate { from } => Some(from),
        },
        author,
        barrier: Hlc {
            millis: plan.barrier.0,
            counter: plan.barrier.1,
        },
        dry_run: false,
        cut: None,
    }
}
