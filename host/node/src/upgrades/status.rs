//! Where upgrades stand on this node: each group's progress, and the
//! verdict of every failed migration, so that none is run again on its own.
//! Plain bookkeeping, below [`crate::node`], which holds it.

use std::collections::HashMap;
use std::sync::Mutex;

use mero_crdt::ContextId;

/// Where an upgrade stands on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Migrating.
    InProgress,
    /// Every context of the group here runs the target.
    Completed,
    /// Refused or failed; the contexts that failed run the old version.
    Failed,
    /// Part of a cascade that was aborted before it committed: its
    /// contexts stay on the old version on every node.
    Aborted,
}

impl Phase {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::InProgress => "in_progress",
            Phase::Completed => "completed",
            Phase::Failed => "failed",
            Phase::Aborted => "aborted",
        }
    }
}

/// One context's part in an upgrade on this node.
#[derive(Debug, Clone)]
pub struct ContextUpgrade {
    /// The context.
    pub context: ContextId,
    /// Its root hash after migrating here.
    pub root_hash: Option<[u8; 32]>,
    /// The root hash the ordering admin's node computed.
    pub expected_root_hash: Option<[u8; 32]>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// An upgrade of a group as this node sees it.
#[derive(Debug, Clone)]
pub struct UpgradeStatus {
    /// The group.
    pub group: [u8; 32],
    /// The version it moves from and to.
    pub from_version: String,
    /// The version it moves to.
    pub to_version: String,
    /// The state versions it moves from and to.
    pub from_state_version: u32,
    /// The state version it moves to.
    pub to_state_version: u32,
    /// The application it moves to.
    pub target_application: [u8; 32],
    /// Its component.
    pub target_blob: [u8; 32],
    /// When it was ordered, Unix seconds.
    pub initiated_at: u64,
    /// Who ordered it.
    pub initiated_by: [u8; 32],
    /// Where it stands here.
    pub phase: Phase,
    /// The group's contexts held here.
    pub total: u32,
    /// Of those, the ones that run the target.
    pub swapped: u32,
    /// Of those, the ones whose migration failed.
    pub failed: u32,
    /// When it completed here, Unix seconds.
    pub completed_at: Option<u64>,
    /// Why it failed or was refused.
    pub error: Option<String>,
    /// Each context here.
    pub contexts: Vec<ContextUpgrade>,
}

/// This node's upgrade bookkeeping: progress per group, and the verdict of
/// every failed migration so it is not run again on its own.
#[derive(Default)]
pub(crate) struct Upgrades {
    status: Mutex<HashMap<[u8; 32], UpgradeStatus>>,
    failed: Mutex<HashMap<(ContextId, [u8; 32]), String>>,
}

impl Upgrades {
    pub(super) fn get(&self, group: &[u8; 32]) -> Option<UpgradeStatus> {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .cloned()
    }

    pub(super) fn put(&self, status: UpgradeStatus) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(status.group, status);
    }

    pub(super) fn remove(&self, group: &[u8; 32]) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(group);
    }

    pub(super) fn update(&self, group: &[u8; 32], f: impl FnOnce(&mut UpgradeStatus)) {
        if let Some(s) = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(group)
        {
            f(s);
        }
    }

    pub(super) fn verdict(&self, ctx: &ContextId, blob: &[u8; 32]) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(*ctx, *blob))
            .cloned()
    }

    pub(super) fn remember_failure(&self, ctx: ContextId, blob: [u8; 32], why: String) {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((ctx, blob), why);
    }

    pub(super) fn forget_failures(&self, blob: &[u8; 32]) {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, b), _| b != blob);
    }
}
