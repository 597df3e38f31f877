//! A namespace's migration status across its members (upstream's
//! `migration-status`): each member reports, in a signed heartbeat on the
//! namespace topic, where its contexts of the namespace stand; this node
//! adds its own report and rolls them up.
//!
//! A member reports on every change and every `migration.heartbeat_ms`; a
//! member not heard of for two periods is `unknown`. A member is `migrated`
//! when none of the contexts it reports is below its group's target (the
//! committed upgrade's application, or a running cascade's) as this node's
//! governance has it, so a report made before the member heard of an
//! upgrade never counts as migrated to it; `failed` when a migration failed
//! on it, else `in_progress`. `MigrationProgress` is sent when the
//! rollup changes; `MigrationCompleted` once when every member is migrated.

use std::collections::HashMap;
use std::sync::Mutex;

use mero_crdt::ContextId;

use super::group_not_found;
use crate::error::Result;
use crate::events::Scope;
use crate::governance::Namespace;
use crate::node::Node;
use crate::sync::{Gossip, MigrationReport, ReportedContext, namespace_topic};

/// Where one member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Every context on its group's target.
    Migrated,
    /// Some context still below it.
    InProgress,
    /// A migration failed on it.
    Failed,
    /// Not heard of within the TTL.
    Unknown,
}

impl MemberState {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Migrated => "migrated",
            MemberState::InProgress => "in_progress",
            MemberState::Failed => "failed",
            MemberState::Unknown => "unknown",
        }
    }
}

/// One member's row.
#[derive(Debug, Clone)]
pub struct MemberMigration {
    /// Its key (a member is one node here: its key is its peer's).
    pub member: [u8; 32],
    /// Where it stands.
    pub state: MemberState,
    /// Its last report, with the sender's clock (Unix milliseconds).
    pub report: Option<(MigrationReport, u64)>,
}

/// The counts over every member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Members migrated.
    pub migrated: u32,
    /// Members still migrating.
    pub in_progress: u32,
    /// Members not heard of.
    pub unknown: u32,
    /// Members on which a migration failed.
    pub failed: u32,
    /// All members.
    pub total: u32,
    /// Every member migrated.
    pub all_migrated: bool,
    /// Members with entries of their own still to rewrite.
    pub members_pending_signature: u32,
}

/// A namespace's migration status as this node sees it.
#[derive(Debug, Clone)]
pub struct MigrationStatus {
    /// The highest state version any group of it moves to (0: none).
    pub target_version: u32,
    /// The version name the newest upgrade moves to.
    pub target_app_version: Option<String>,
    /// When the newest cascade was ordered (its admin's clock, Unix ms).
    pub cascade_millis: Option<u64>,
    /// When this node first saw every member migrated, Unix seconds.
    pub fleet_completed_at: Option<u64>,
    /// One row per member.
    pub members: Vec<MemberMigration>,
    /// The counts.
    pub rollup: Rollup,
}

/// What this node remembers of each namespace's rollups: the last one
/// (for `MigrationProgress`) and when every member first was migrated.
#[derive(Default)]
pub(crate) struct Rollups {
    last: Mutex<HashMap<[u8; 32], (u32, Rollup)>>,
    fleet_completed: Mutex<HashMap<([u8; 32], u32), u64>>,
}

/// A group's target: the application its contexts must run and the least
/// state version they must have.
fn group_target(gov: &Namespace, group: &[u8; 32]) -> Option<([u8; 32], u32)> {
    if let Some((root, c)) = gov.cascade_of(group)
        && c.aborted.is_none()
        && gov
            .cascade_pending(root)
            .is_some_and(|(p, _)| p.contains(group))
    {
        return Some((c.target.blob, c.state_versions.1));
    }
    if let Some(u) = gov.upgrades.get(group) {
        return Some((u.plan.app.blob, u.plan.to_state_version));
    }
    gov.app_of(group).map(|a| (a.blob, 0))
}

/// The highest state version a group of the namespace moves to.
fn target_version(gov: &Namespace) -> u32 {
    gov.subtree(&gov.id)
        .iter()
        .filter_map(|g| group_target(gov, g))
        .map(|(_, v)| v)
        .max()
        .unwrap_or(0)
}

/// How many of a member's reported contexts are below their group's
/// target, as this node's governance has it.
fn residue(gov: &Namespace, report: &MigrationReport) -> u32 {
    let below = report.contexts.iter().filter(|c| {
        let target = gov
            .contexts
            .get(&c.context)
            .and_then(|reg| group_target(gov, &reg.group));
        target.is_some_and(|(blob, version)| c.blob != blob || c.state_version < version)
    });
    below.count() as u32
}

fn state_of(gov: &Namespace, report: &MigrationReport) -> MemberState {
    if residue(gov, report) == 0 {
        MemberState::Migrated
    } else if report.migration_failed.is_some() {
        MemberState::Failed
    } else {
        MemberState::InProgress
    }
}

impl Node {
    /// This node's report on namespace `gov`: its contexts there and how
    /// many are below their group's target.
    pub(crate) fn migration_report(&self, gov: &Namespace) -> MigrationReport {
        let mut report = MigrationReport {
            governance_ops: gov.ops.len() as u64,
            ..MigrationReport::default()
        };
        let Ok(snap) = self.inner.store.snapshot() else {
            return report;
        };
        let mut lowest: Option<u32> = None;
        let heard = self.inner.heartbeats.fresh(&gov.id);
        for (id, reg) in &gov.contexts {
            let ctx = ContextId(*id);
            let Ok(Some(meta)) = snap.context_meta(&ctx) else {
                continue;
            };
            let root = snap.root_hash(&ctx).unwrap_or_default();
            // A peer reporting the root a rewrite led to, or the root
            // here now, holds the rewrite.
            let (remaining, unacknowledged) = self.inner.authored.figures(&ctx, |after| {
                heard.values().any(|(r, _)| {
                    r.contexts.iter().any(|c| {
                        c.context == *id && (c.root == Some(*after) || c.root == Some(root))
                    })
                })
            });
            report.authored_remaining += remaining;
            report.authored_unacknowledged += unacknowledged;
            report.contexts.push(ReportedContext {
                context: *id,
                blob: meta.blob,
                state_version: meta.state_version,
                root: Some(root),
            });
            lowest = Some(lowest.map_or(meta.state_version, |l| l.min(meta.state_version)));
            let Some((blob, version)) = group_target(gov, &reg.group) else {
                continue;
            };
            if meta.blob != blob || meta.state_version < version {
                report.residue_auto += 1;
                if self.inner.upgrades.verdict(&ctx, &blob).is_some() {
                    report.migration_failed = Some("apply_failed".into());
                }
            }
        }
        report.schema_version = lowest.unwrap_or_else(|| target_version(gov));
        report
    }

    /// The migration status of `group`'s namespace across its members.
    pub fn migration_status(&self, group: &[u8; 32]) -> Result<MigrationStatus> {
        let gov = self
            .inner
            .members
            .containing_group(group)
            .ok_or_else(group_not_found)?;
        Ok(self.rollup(&gov))
    }

    fn rollup(&self, gov: &Namespace) -> MigrationStatus {
        let me = self.public_key();
        let mut heard = self.inner.heartbeats.fresh(&gov.id);
        heard.insert(
            me,
            (self.migration_report(gov), mero_crdt::hlc::wall_millis()),
        );
        let mut rollup = Rollup::default();
        let mut members = Vec::new();
        for member in gov.members.keys() {
            let report = heard.remove(member).map(|(mut r, at)| {
                // Judged here: the member may not have heard of the target yet.
                r.residue_auto = residue(gov, &r);
                (r, at)
            });
            let state = report
                .as_ref()
                .map_or(MemberState::Unknown, |(r, _)| state_of(gov, r));
            match state {
                MemberState::Migrated => rollup.migrated += 1,
                MemberState::InProgress => rollup.in_progress += 1,
                MemberState::Failed => rollup.failed += 1,
                MemberState::Unknown => rollup.unknown += 1,
            }
            if report
                .as_ref()
                .is_some_and(|(r, _)| r.authored_remaining > 0)
            {
                rollup.members_pending_signature += 1;
            }
            members.push(MemberMigration {
                member: *member,
                state,
                report,
            });
        }
        rollup.total = members.len() as u32;
        rollup.all_migrated = rollup.total > 0 && rollup.migrated == rollup.total;
        let target_version = target_version(gov);
        let newest = gov
            .subtree(&gov.id)
            .iter()
            .filter_map(|g| gov.upgrades.get(g))
            .max_by_key(|u| u.initiated_millis)
            .map(|u| u.plan.app.version.clone());
        let cascade_millis = gov.cascades.values().map(|c| c.initiated_millis).max();
        let fleet_completed_at = {
            let mut done = self
                .inner
                .rollups
                .fleet_completed
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if rollup.all_migrated && target_version > 0 {
                done.entry((gov.id, target_version))
                    .or_insert_with(|| mero_crdt::hlc::wall_millis() / 1000);
            }
            done.get(&(gov.id, target_version)).copied()
        };
        MigrationStatus {
            target_version,
            target_app_version: newest,
            cascade_millis,
            fleet_completed_at,
            members,
            rollup,
        }
    }

    /// Reports this node's migration state on every namespace it is in, on
    /// change and every period, and turns members' changed reports into
    /// `MigrationProgress` and `MigrationCompleted` events.
    pub(crate) fn run_heartbeats(&self) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            let every = node.inner.heartbeats.every();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sent: HashMap<[u8; 32], MigrationReport> = HashMap::new();
            loop {
                let periodic = tokio::select! {
                    _ = tick.tick() => true,
                    _ = node.inner.heartbeat_due.notified() => false,
                    _ = node.inner.heartbeats.changed.notified() => false,
                };
                for gov in node.inner.members.all() {
                    if !gov.is_member(&node.public_key()) {
                        continue;
                    }
                    let report = node.migration_report(&gov);
                    if periodic || sent.get(&gov.id) != Some(&report) {
                        node.publish_heartbeat(&gov, report.clone()).await;
                        sent.insert(gov.id, report);
                    }
                    node.announce_rollup(&gov);
                }
            }
        });
    }

    async fn publish_heartbeat(&self, gov: &Namespace, mut report: MigrationReport) {
        let ns = &gov.id;
        let keys = self.inner.members.keys();
        report.withhold_roots(ns, |c| gov.key_of_context(c), |k, b| keys.seal(k, b));
        let Some(beat) = self.inner.heartbeats.sign(*ns, report) else {
            return;
        };
        let sealed = borsh::to_vec(&Gossip::Heartbeat(Box::new(beat)))
            .ok()
            .and_then(|bytes| keys.seal(ns, &bytes));
        match sealed {
            Some(sealed) => {
                self.inner
                    .peers
                    .publish(&namespace_topic(ns), &Gossip::Sealed(sealed))
                    .await;
            }
            None => tracing::debug!("no namespace key to seal a heartbeat with"),
        }
    }

    /// Sends `MigrationProgress` if the rollup changed since last sent, and
    /// `MigrationCompleted` on its edge to all migrated.
    fn announce_rollup(&self, gov: &Namespace) {
        let status = self.rollup(gov);
        if status.target_version == 0 {
            return;
        }
        let previous = {
            let mut last = self
                .inner
                .rollups
                .last
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            last.insert(gov.id, (status.target_version, status.rollup))
        };
        if previous == Some((status.target_version, status.rollup)) {
            return;
        }
        let r = status.rollup;
        self.inner.events.publish(
            Scope::Group(gov.id),
            "MigrationProgress",
            None,
            serde_json::json!({
                "migrated": r.migrated,
                "inProgress": r.in_progress,
                "unknown": r.unknown,
                "failed": r.failed,
                "total": r.total,
            }),
        );
        let was_all = previous.is_some_and(|(v, p)| v == status.target_version && p.all_migrated);
        if r.all_migrated && !was_all {
            self.inner.events.publish(
                Scope::Group(gov.id),
                "MigrationCompleted",
                None,
                serde_json::json!({
                    "toVersion": status.target_app_version,
                    "completedAt": status.fleet_completed_at,
                }),
            );
        }
    }
}
