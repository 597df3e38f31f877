//! Cascades: one upgrade ordered at a group for it and every group below it
//! that runs the same application, and the abort that stops one.
//!
//! The ordering admin signs one `CascadeStarted` naming the groups, so every
//! member sees them pending at once. Its node then commits them one by one,
//! root first, exactly as a direct upgrade (migrate and check here, then a
//! `GroupUpgraded` per group), and every member migrates each group as it
//! folds that group's op. An abort is a replicated `CascadeAborted`: a group
//! whose `GroupUpgraded` exists is committed and completes on every node;
//! the others stay on their application on every node. So "abort" never
//! leaves one context on two versions. Once every group committed, there is
//! nothing to abort: the way back is a forward upgrade.

use std::time::Duration;

use mero_crdt::ContextId;

use super::status::{Phase, UpgradeStatus};
use super::{Prepared, group_not_found, local_contexts};
use crate::error::{NodeError, Result};
use crate::events::Scope;
use crate::governance::{Body, Cascade, Namespace};
use crate::node::Node;

/// One group's part in a cascade, as `cascade-status` lists it.
#[derive(Debug, Clone)]
pub struct CascadeEntry {
    /// The group.
    pub group: [u8; 32],
    /// Its upgrade as this node sees it.
    pub status: UpgradeStatus,
    /// When the cascade it belongs to was ordered (the ordering admin's
    /// clock, Unix milliseconds); `None` for a direct upgrade.
    pub cascade_millis: Option<u64>,
}

/// What an abort did.
#[derive(Debug, Clone, Default)]
pub struct AbortOutcome {
    /// Whether a cascade was stopped (false: nothing was pending).
    pub aborted: bool,
    /// The groups left on their application.
    pub aborted_groups: Vec<[u8; 32]>,
    /// The groups that had committed: they complete everywhere.
    pub committed_groups: Vec<[u8; 32]>,
}

impl Node {
    /// Upgrades `root` and every group below it that runs the same
    /// application to `target`: checked and planned here, announced to
    /// every member, then committed group by group in the background.
    /// Returns the root's status (normally in progress).
    pub async fn cascade_upgrade(
        &self,
        root: &[u8; 32],
        target: &[u8; 32],
        force_code_only: bool,
    ) -> Result<UpgradeStatus> {
        let gov = self
            .inner
            .members
            .containing_group(root)
            .ok_or_else(group_not_found)?;
        let prepared = self.prepare(&gov, root, target, force_code_only).await?;
        if let Some((pending, false)) = gov.cascade_pending(root)
            && !pending.is_empty()
        {
            return Err(NodeError::conflict(
                "UpgradeInProgress",
                "a cascade is already in progress from this group",
            ));
        }
        let groups: Vec<[u8; 32]> = gov
            .subtree(root)
            .into_iter()
            .filter(|g| {
                gov.app_of(g)
                    .is_some_and(|a| a.blob == prepared.current.blob)
            })
            .collect();
        let ns = gov.id;
        self.inner
            .members
            .change(
                &ns,
                Body::CascadeStarted {
                    root: *root,
                    target: prepared.target.clone(),
                    state_versions: (prepared.from_state_version, prepared.to_state_version),
                    groups: groups.clone(),
                },
            )
            .await?;
        let gov = self.inner.members.get(&ns).ok_or_else(group_not_found)?;
        for g in &groups {
            let status = self.pending_status(&gov, g, Phase::InProgress)?;
            self.inner.upgrades.put(status);
        }
        let node = self.clone();
        let root = *root;
        self.inner
            .tasks
            .spawn(async move { node.run_cascade(ns, root, prepared).await });
        self.upgrade_status(&groups[0])?
            .ok_or_else(|| NodeError::Internal("the upgrade status vanished".into()))
    }

    /// Commits the cascade's groups one by one until all committed or it
    /// was aborted. A group whose migration is refused stays failed (its
    /// `upgrade/retry` runs it again); the others go on.
    async fn run_cascade(&self, ns: [u8; 32], root: [u8; 32], prepared: Prepared) {
        let Some(groups) = self
            .inner
            .members
            .get(&ns)
            .and_then(|g| g.cascades.get(&root).map(|c| c.groups.clone()))
        else {
            return;
        };
        let total = groups.len();
        let pause = Duration::from_millis(self.inner.config.migration.cascade_pause_ms);
        for (done, group) in groups.iter().enumerate() {
            if done > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let Some(gov) = self.inner.members.get(&ns) else {
                return;
            };
            if self.cascade_aborted(&ns, &root) {
                self.mark_aborted(&gov, &root);
                return;
            }
            if gov
                .upgrades
                .get(group)
                .is_some_and(|u| u.plan.app.blob == prepared.target.blob)
            {
                continue;
            }
            let contexts = match local_contexts(self, &gov, group, Some(&prepared.target.blob)) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(group = %hex::encode(group), error = %e, "cannot list a cascaded group's contexts");
                    continue;
                }
            };
            match self
                .commit_group(&gov, group, &prepared, &contexts, Some(&root))
                .await
            {
                Ok(status) => {
                    self.inner.events.publish(
                        Scope::Group(ns),
                        "CascadeProgress",
                        None,
                        serde_json::json!({
                            "subgroupId": hex::encode(group),
                            "localContextsSwapped": status.swapped,
                            "localContextsTotal": status.total,
                            "groupsCommitted": done + 1,
                            "groupsTotal": total,
                        }),
                    );
                }
                Err(_) if self.cascade_aborted(&ns, &root) => {
                    if let Some(gov) = self.inner.members.get(&ns) {
                        self.mark_aborted(&gov, &root);
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(group = %hex::encode(group), error = %e, "a cascaded group's upgrade was refused; the cascade goes on");
                }
            }
        }
    }

    /// Picks up the cascades this node ordered that a restart interrupted.
    pub(super) async fn resume_cascades(&self) {
        let me = self.public_key();
        for gov in self.inner.members.all() {
            for (root, c) in &gov.cascades {
                if c.initiated_by != me || c.aborted.is_some() {
                    continue;
                }
                let pending = gov
                    .cascade_pending(root)
                    .map(|(p, _)| p)
                    .unwrap_or_default();
                let Some(first) = pending.first() else {
                    continue;
                };
                // The flag is not kept (as upstream's retry): a resumed
                // cascade plans as an ordinary upgrade.
                match self.prepare(&gov, first, &c.target.id, false).await {
                    Ok(prepared) => {
                        for g in &pending {
                            if let Ok(s) = self.pending_status(&gov, g, Phase::InProgress) {
                                self.inner.upgrades.put(s);
                            }
                        }
                        self.run_cascade(gov.id, *root, prepared).await;
                    }
                    Err(e) => {
                        tracing::warn!(root = %hex::encode(root), error = %e, "an interrupted cascade cannot resume")
                    }
                }
            }
        }
    }

    /// Whether the cascade started at `root` in namespace `ns` was aborted.
    pub(super) fn cascade_aborted(&self, ns: &[u8; 32], root: &[u8; 32]) -> bool {
        self.inner
            .members
            .get(ns)
            .and_then(|g| g.cascades.get(root).map(|c| c.aborted.is_some()))
            .unwrap_or(false)
    }

    fn mark_aborted(&self, gov: &Namespace, root: &[u8; 32]) {
        let Some((pending, _)) = gov.cascade_pending(root) else {
            return;
        };
        for g in pending {
            if let Ok(s) = self.pending_status(gov, &g, Phase::Aborted) {
                self.inner.upgrades.put(s);
            }
        }
    }

    /// A cascaded group that has not committed, described from the cascade.
    fn pending_status(
        &self,
        gov: &Namespace,
        group: &[u8; 32],
        phase: Phase,
    ) -> Result<UpgradeStatus> {
        let (_, cascade) = gov
            .cascade_of(group)
            .ok_or_else(|| NodeError::Internal("no cascade covers the group".into()))?;
        let contexts = local_contexts(self, gov, group, None)?;
        Ok(status_from(gov, group, cascade, &contexts, phase))
    }

    /// Every group of `group`'s subtree that has an upgrade or is part of a
    /// cascade, as this node sees it (upstream's `cascade-status`).
    pub fn cascade_status(&self, group: &[u8; 32]) -> Result<Vec<CascadeEntry>> {
        let gov = self
            .inner
            .members
            .containing_group(group)
            .ok_or_else(group_not_found)?;
        let mut out = Vec::new();
        for g in gov.subtree(group) {
            let cascade = gov.cascade_of(&g);
            let pending = cascade.is_some_and(|(root, c)| {
                gov.cascade_pending(root)
                    .is_some_and(|(p, _)| p.contains(&g))
                    && gov
                        .upgrades
                        .get(&g)
                        .is_none_or(|u| u.plan.app.blob != c.target.blob)
            });
            let status = match cascade {
                Some((_, c)) if pending => {
                    let phase = match self.inner.upgrades.get(&g) {
                        Some(s) if s.target_blob == c.target.blob => s.phase,
                        _ if c.aborted.is_some() => Phase::Aborted,
                        _ => Phase::InProgress,
                    };
                    let contexts = local_contexts(self, &gov, &g, None)?;
                    let mut s = status_from(&gov, &g, c, &contexts, phase);
                    if let Some(local) = self.inner.upgrades.get(&g)
                        && local.target_blob == c.target.blob
                    {
                        s.error = local.error;
                        s.failed = local.failed;
                    }
                    Some(s)
                }
                _ => self.upgrade_status(&g)?,
            };
            let Some(status) = status else {
                continue;
            };
            let cascade_millis = cascade
                .filter(|(_, c)| c.target.blob == status.target_blob)
                .map(|(_, c)| c.initiated_millis);
            out.push(CascadeEntry {
                group: g,
                status,
                cascade_millis,
            });
        }
        Ok(out)
    }

    /// Stops every cascade in `group`'s subtree that still has groups to
    /// commit, on every node. Nothing pending: `aborted: false` if nothing
    /// was ever upgraded there, a clear refusal if everything committed.
    pub async fn abort_migration(&self, group: &[u8; 32]) -> Result<AbortOutcome> {
        let gov = self
            .inner
            .members
            .containing_group(group)
            .ok_or_else(group_not_found)?;
        crate::authz::may_upgrade(&gov, &self.public_key(), group)?;
        let subtree = gov.subtree(group);
        let mut outcome = AbortOutcome::default();
        let mut roots = Vec::new();
        // Cascades started in the subtree, or covering the group asked for.
        let covering = gov
            .cascades
            .iter()
            .filter(|(r, c)| subtree.contains(r) || c.groups.contains(group))
            .map(|(r, _)| r);
        for root in covering {
            let Some((pending, aborted)) = gov.cascade_pending(root) else {
                continue;
            };
            let c = &gov.cascades[root];
            outcome
                .committed_groups
                .extend(c.groups.iter().filter(|g| !pending.contains(g)).copied());
            if !aborted && !pending.is_empty() {
                roots.push(*root);
                outcome.aborted_groups.extend(pending);
            }
        }
        if roots.is_empty() {
            let upgraded = subtree.iter().any(|g| gov.upgrades.contains_key(g));
            if upgraded {
                return Err(NodeError::conflict(
                    "UpgradeCommitted",
                    "nothing to abort: every group's upgrade has committed (a committed group \
                     completes on every node) or an earlier abort left it; the way back is a \
                     forward upgrade",
                ));
            }
            return Ok(outcome);
        }
        let ns = gov.id;
        drop(gov);
        for root in &roots {
            self.inner
                .members
                .change(&ns, Body::CascadeAborted { root: *root })
                .await?;
        }
        if let Some(gov) = self.inner.members.get(&ns) {
            for root in &roots {
                self.mark_aborted(&gov, root);
            }
        }
        outcome.aborted = true;
        Ok(outcome)
    }
}

/// A cascaded group's status before it commits.
fn status_from(
    gov: &Namespace,
    group: &[u8; 32],
    c: &Cascade,
    contexts: &[ContextId],
    phase: Phase,
) -> UpgradeStatus {
    UpgradeStatus {
        group: *group,
        from_version: gov
            .app_of(group)
            .map_or_else(|| "unknown".into(), |a| a.version.clone()),
        to_version: c.target.version.clone(),
        from_state_version: c.state_versions.0,
        to_state_version: c.state_versions.1,
        target_application: c.target.id,
        target_blob: c.target.blob,
        initiated_at: c.initiated_millis / 1000,
        initiated_by: c.initiated_by,
        phase,
        total: contexts.len() as u32,
        swapped: 0,
        failed: 0,
        completed_at: c
            .aborted
            .filter(|_| phase == Phase::Aborted)
            .map(|(_, millis)| millis / 1000),
        error: (phase == Phase::Aborted)
            .then(|| "the cascade was aborted before this group committed".to_string()),
        contexts: contexts
            .iter()
            .map(|c| super::ContextUpgrade {
                context: *c,
                root_hash: None,
                expected_root_hash: None,
                error: None,
            })
            .collect(),
    }
}
