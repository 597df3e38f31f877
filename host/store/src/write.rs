//! The write transaction.

use heed::RwTxn;
use mero_crdt::{ContextId, DeltaId, Hash, SignedDelta, apply_ops};

use crate::records::{ApplicationRecord, ContextMeta, GroupRecord, MemberRecord, encode};
use crate::state::ContextWriter;
use crate::tables::{Db, Tables};
use crate::{Result, key, read};

/// One LMDB write transaction. Nothing written through it is visible to
/// others or durable until [`commit`](Self::commit); dropping it aborts.
pub struct WriteTxn<'e> {
    txn: RwTxn<'e>,
    tables: Tables,
}

impl<'e> WriteTxn<'e> {
    pub(crate) fn new(txn: RwTxn<'e>, tables: Tables) -> Self {
        WriteTxn { txn, tables }
    }

    /// Makes everything written durable, atomically.
    pub fn commit(self) -> Result<()> {
        Ok(self.txn.commit()?)
    }

    /// The state of one context, for applying ops.
    pub fn context_state(&mut self, ctx: ContextId) -> ContextWriter<'_, 'e> {
        ContextWriter {
            txn: &mut self.txn,
            tables: &self.tables,
            ctx,
        }
    }

    /// Stores a delta, joins its ops into the context's state and makes it a
    /// DAG head in place of its parents. Returns the new root hash. The caller
    /// has verified it and checked that its parents are known.
    pub fn apply_delta(&mut self, id: &DeltaId, signed: &SignedDelta) -> Result<Hash> {
        let ctx = signed.delta.context;
        self.tables
            .deltas
            .put(&mut self.txn, &key(&[&ctx.0, &id.0]), &signed.to_bytes())?;
        for parent in &signed.delta.parents {
            self.tables
                .heads
                .delete(&mut self.txn, &key(&[&ctx.0, &parent.0]))?;
        }
        self.tables
            .heads
            .put(&mut self.txn, &key(&[&ctx.0, &id.0]), &[])?;
        let root = apply_ops(&mut self.context_state(ctx), &signed.delta.ops)?;
        Ok(root)
    }

    /// Whether a delta is stored.
    pub fn has_delta(&self, ctx: &ContextId, id: &DeltaId) -> Result<bool> {
        Ok(self
            .tables
            .deltas
            .get(&self.txn, &key(&[&ctx.0, &id.0]))?
            .is_some())
    }

    /// Stores content-addressed bytes.
    pub fn put_blob(&mut self, hash: &Hash, bytes: &[u8]) -> Result<()> {
        Ok(self.tables.blobs.put(&mut self.txn, hash, bytes)?)
    }

    /// Removes stored bytes.
    pub fn delete_blob(&mut self, hash: &Hash) -> Result<bool> {
        Ok(self.tables.blobs.delete(&mut self.txn, hash)?)
    }

    /// Stores an application record.
    pub fn put_application(&mut self, app: &ApplicationRecord) -> Result<()> {
        Ok(self.tables.apps.put(&mut self.txn, &app.id, &encode(app))?)
    }

    /// Removes an application record.
    pub fn delete_application(&mut self, id: &[u8; 32]) -> Result<bool> {
        Ok(self.tables.apps.delete(&mut self.txn, id)?)
    }

    /// An application record.
    pub fn application(&self, id: &[u8; 32]) -> Result<Option<ApplicationRecord>> {
        read::application(&self.txn, &self.tables, id)
    }

    /// Stores a context's metadata.
    pub fn put_context_meta(&mut self, meta: &ContextMeta) -> Result<()> {
        Ok(self
            .tables
            .contexts
            .put(&mut self.txn, &meta.id.0, &encode(meta))?)
    }

    /// A context's metadata.
    pub fn context_meta(&self, ctx: &ContextId) -> Result<Option<ContextMeta>> {
        read::context_meta(&self.txn, &self.tables, ctx)
    }

    /// Every context.
    pub fn contexts(&self) -> Result<Vec<ContextMeta>> {
        read::contexts(&self.txn, &self.tables)
    }

    /// The context's DAG heads.
    pub fn heads(&self, ctx: &ContextId) -> Result<Vec<DeltaId>> {
        read::heads(&self.txn, &self.tables, ctx)
    }

    /// Writes (`Some`) or removes (`None`) a private-storage value.
    pub fn private_put(&mut self, ctx: &ContextId, k: &[u8], value: Option<&[u8]>) -> Result<()> {
        let k = key(&[&ctx.0, k]);
        match value {
            Some(v) => self.tables.private.put(&mut self.txn, &k, v)?,
            None => {
                self.tables.private.delete(&mut self.txn, &k)?;
            }
        }
        Ok(())
    }

    /// Stores a group.
    pub fn put_group(&mut self, group: &GroupRecord) -> Result<()> {
        Ok(self
            .tables
            .groups
            .put(&mut self.txn, &group.id, &encode(group))?)
    }

    /// A group.
    pub fn group(&self, id: &[u8; 32]) -> Result<Option<GroupRecord>> {
        read::group(&self.txn, &self.tables, id)
    }

    /// Deletes a group and its member list.
    pub fn delete_group(&mut self, id: &[u8; 32]) -> Result<bool> {
        delete_prefix(&mut self.txn, self.tables.members, id)?;
        Ok(self.tables.groups.delete(&mut self.txn, id)?)
    }

    /// Stores a member of a group.
    pub fn put_member(
        &mut self,
        group: &[u8; 32],
        who: &[u8; 32],
        member: &MemberRecord,
    ) -> Result<()> {
        Ok(self
            .tables
            .members
            .put(&mut self.txn, &key(&[group, who]), &encode(member))?)
    }

    /// Removes a member from a group.
    pub fn delete_member(&mut self, group: &[u8; 32], who: &[u8; 32]) -> Result<bool> {
        Ok(self
            .tables
            .members
            .delete(&mut self.txn, &key(&[group, who]))?)
    }

    /// Points an alias of `kind` at `id`.
    pub fn put_alias(&mut self, kind: &str, name: &str, id: &[u8; 32]) -> Result<()> {
        Ok(self
            .tables
            .aliases
            .put(&mut self.txn, &read::alias_key(kind, name), id)?)
    }

    /// Removes an alias.
    pub fn delete_alias(&mut self, kind: &str, name: &str) -> Result<bool> {
        Ok(self
            .tables
            .aliases
            .delete(&mut self.txn, &read::alias_key(kind, name))?)
    }

    /// The context's state root hash, as this transaction sees it.
    pub fn root_hash(&mut self, ctx: &ContextId) -> Result<Hash> {
        use mero_crdt::MerkleStore;
        Ok(self
            .context_state(*ctx)
            .merkle_node(0, 0)?
            .map_or([0; 32], |n| n.hash()))
    }

    /// Records that a delta is known without keeping its body (it arrived
    /// folded into a snapshot).
    pub fn put_delta_stub(&mut self, ctx: &ContextId, id: &DeltaId) -> Result<()> {
        let k = key(&[&ctx.0, &id.0]);
        if self.tables.deltas.get(&self.txn, &k)?.is_none() {
            self.tables.deltas.put(&mut self.txn, &k, &[])?;
        }
        Ok(())
    }

    /// Replaces a context's DAG heads.
    pub fn set_heads(&mut self, ctx: &ContextId, heads: &[DeltaId]) -> Result<()> {
        delete_prefix(&mut self.txn, self.tables.heads, &ctx.0)?;
        for h in heads {
            self.tables
                .heads
                .put(&mut self.txn, &key(&[&ctx.0, &h.0]), &[])?;
        }
        Ok(())
    }

    /// Stores a signed governance op of a namespace.
    pub fn put_governance(&mut self, ns: &[u8; 32], id: &[u8; 32], op: &[u8]) -> Result<()> {
        Ok(self
            .tables
            .governance
            .put(&mut self.txn, &key(&[ns, id]), op)?)
    }

    /// Records an event handler to run: `method` of `ctx` with `data`,
    /// for event `index` of delta `delta`. Written with the delta, so a
    /// merged delta's handlers survive a crash (and may run twice).
    pub fn put_handler(
        &mut self,
        ctx: &ContextId,
        delta: &[u8; 32],
        index: u32,
        method: &str,
        data: &[u8],
    ) -> Result<()> {
        let value = borsh::to_vec(&(method, data)).map_err(|e| crate::StoreError::Corrupt {
            table: "handlers",
            detail: e.to_string(),
        })?;
        Ok(self.tables.handlers.put(
            &mut self.txn,
            &key(&[&ctx.0, delta, &index.to_be_bytes()]),
            &value,
        )?)
    }

    /// Forgets a handler that ran.
    pub fn delete_handler(&mut self, h: &crate::PendingHandler) -> Result<bool> {
        Ok(self.tables.handlers.delete(
            &mut self.txn,
            &key(&[&h.context.0, &h.delta, &h.index.to_be_bytes()]),
        )?)
    }

    /// Deletes a namespace's governance log.
    pub fn delete_governance(&mut self, ns: &[u8; 32]) -> Result<()> {
        delete_prefix(&mut self.txn, self.tables.governance, ns)
    }

    /// Deletes a context and everything stored for it.
    pub fn delete_context(&mut self, ctx: &ContextId) -> Result<bool> {
        let t = self.tables;
        for db in [
            t.entries, t.counts, t.leaves, t.merkle, t.deltas, t.heads, t.private, t.handlers,
        ] {
            delete_prefix(&mut self.txn, db, &ctx.0)?;
        }
        Ok(t.contexts.delete(&mut self.txn, &ctx.0)?)
    }
}

fn delete_prefix(txn: &mut RwTxn, db: Db, prefix: &[u8]) -> Result<()> {
    let mut iter = db.prefix_iter_mut(txn, prefix)?;
    while iter.next().transpose()?.is_some() {
        // SAFETY: heed requires that no reference into the database is held
        // while deleting through the iterator; the loop keeps none.
        #[allow(unsafe_code)]
        unsafe {
            iter.del_current()?;
        }
    }
    Ok(())
}
