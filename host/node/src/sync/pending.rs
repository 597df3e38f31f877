//! Deltas held while their parents are missing, per context, indexed by
//! what they wait for, so a merged delta releases exactly the deltas that
//! waited on it. Shared by every session of a node (gossip, parent
//! fetches, anti-entropy); bounded per context.

use std::collections::HashMap;
use std::sync::Mutex;

use mero_crdt::{ContextId, DeltaId, SignedDelta};

use super::frontier::Lineage;

/// Most deltas held per context.
pub const MAX_PENDING: usize = 10_000;

/// The held deltas of every context.
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

    /// Holds `d` (id `id`) until every delta of `missing` is merged, and
    /// says whether it did: full contexts hold nothing more (anti-entropy
    /// brings it again, or a catch-up takes a snapshot instead).
    pub fn hold(&self, id: DeltaId, d: SignedDelta, missing: &[DeltaId]) -> bool {
        let mut all = self.lock();
        let held = all.entry(d.delta.context).or_default();
        if held.deltas.len() >= MAX_PENDING && !held.deltas.contains_key(&id) {
            return false;
        }
        for m in missing {
            let waiting = held.by_parent.entry(*m).or_default();
            if !waiting.contains(&id) {
                waiting.push(id);
            }
        }
        held.deltas.insert(id, d);
        true
    }

    /// Holds deltas for a later walk, each waiting on its own parents.
    pub fn hold_all(&self, deltas: Vec<SignedDelta>) {
        for d in deltas {
            let parents = d.delta.parents.clone();
            // Just taken out by the caller: there is room again.
            self.hold(d.delta.id(), d, &parents);
        }
    }

    /// Takes the held deltas that waited on any of `merged`.
    pub fn released(&self, ctx: &ContextId, merged: &[DeltaId]) -> Vec<SignedDelta> {
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
    pub fn take_some(&self, ctx: &ContextId, ids: &[DeltaId]) -> Vec<SignedDelta> {
        let mut all = self.lock();
        let Some(held) = all.get_mut(ctx) else {
            return Vec::new();
        };
        ids.iter().filter_map(|id| held.deltas.remove(id)).collect()
    }

    /// Takes every delta held for `ctx`.
    pub fn take(&self, ctx: &ContextId) -> Vec<SignedDelta> {
        self.lock()
            .remove(ctx)
            .map(|h| h.deltas.into_values().collect())
            .unwrap_or_default()
    }

    /// A held delta's parents and clock, for a walk of the DAG.
    pub fn lineage(&self, ctx: &ContextId, id: &DeltaId) -> Option<Lineage> {
        let all = self.lock();
        let d = all.get(ctx)?.deltas.get(id)?;
        Some(Lineage::Held {
            parents: d.delta.parents.clone(),
        })
    }

    /// How many deltas wait, per context.
    pub fn waiting(&self, ctx: &ContextId) -> usize {
        self.lock().get(ctx).map_or(0, |h| h.deltas.len())
    }
}
