//! One context of a store snapshot, seen as a sync DAG.

use mero_crdt::{ContextId, DeltaId, Hash, SignedDelta, StateSnapshot};
use mero_executor::Executor;
use mero_store::Snapshot;

use crate::governance::OpId;
use crate::sync::{DagView, Lineage, ServeView, ViewError};

/// A store snapshot of one context.
pub struct StoreView<'a> {
    exec: &'a Executor,
    snap: Snapshot,
    ctx: ContextId,
}

fn err(e: impl std::fmt::Display) -> ViewError {
    ViewError(e.to_string())
}

impl<'a> StoreView<'a> {
    /// A view of `ctx` as committed now.
    pub fn new(exec: &'a Executor, ctx: ContextId) -> Result<StoreView<'a>, ViewError> {
        Ok(StoreView {
            snap: exec.store().snapshot().map_err(err)?,
            exec,
            ctx,
        })
    }

    /// Whether the context exists here.
    pub fn exists(&self) -> Result<bool, ViewError> {
        Ok(self.snap.context_meta(&self.ctx).map_err(err)?.is_some())
    }
}

impl DagView for StoreView<'_> {
    fn has(&self, id: &DeltaId) -> Result<bool, ViewError> {
        self.snap.has_delta(&self.ctx, id).map_err(err)
    }

    fn governance(&self, id: &DeltaId) -> Result<Option<Vec<OpId>>, ViewError> {
        Ok(self
            .snap
            .delta(&self.ctx, id)
            .map_err(err)?
            .map(|d| d.delta.governance))
    }

    fn lineage(&self, id: &DeltaId) -> Result<Lineage, ViewError> {
        Ok(match self.snap.delta(&self.ctx, id).map_err(err)? {
            Some(d) => Lineage::Held {
                parents: d.delta.parents,
            },
            None if self.has(id)? => Lineage::Folded,
            None => Lineage::Unknown,
        })
    }

    fn heads(&self) -> Result<Vec<DeltaId>, ViewError> {
        self.snap.heads(&self.ctx).map_err(err)
    }

    fn root(&self) -> Result<Hash, ViewError> {
        self.snap.root_hash(&self.ctx).map_err(err)
    }
}

impl ServeView for StoreView<'_> {
    fn delta(&self, id: &DeltaId) -> Result<Option<SignedDelta>, ViewError> {
        // One refused for good is served too: what others built on it
        // waits for it, and the asker judges it itself.
        match self.snap.delta(&self.ctx, id).map_err(err)? {
            Some(d) => Ok(Some(d)),
            None => self.snap.refused_delta(&self.ctx, id).map_err(err),
        }
    }

    fn snapshot(&self) -> Result<StateSnapshot, ViewError> {
        self.exec.snapshot_of(&self.ctx).map_err(err)
    }
}
