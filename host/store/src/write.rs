//! The write transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, MutexGuard};

use heed::{RoTxn, WithoutTls};
use mero_crdt::{ContextId, DeltaId, Hash, SignedDelta, apply_ops, join_ops, merkle};

use crate::engine::{Layers, Shared, Writer};
use crate::error::{Result, StoreError};
use crate::keys::{alias_key, handler_key, key, local_key};
use crate::memtable::View;
use crate::records::{ApplicationRecord, ContextMeta, GroupRecord, PendingHandler, encode};
use crate::run::RunBuilder;
use crate::tables::Table;
use crate::{read, wal};

/// The one write transaction at a time. Nothing written through it is visible
/// to others or durable until [`commit`](Self::commit); dropping it aborts.
/// One context's CRDT state inside it is
/// [`context_state`](Self::context_state), defined in `state.rs`.
pub struct WriteTxn<'e> {
    writer: MutexGuard<'e, Writer>,
    shared: &'e Shared,
    layers: Layers,
    txn: RoTxn<'static, WithoutTls>,
    /// The write-ahead log record of everything written so far, but for
    /// what was streamed to the log ahead of it.
    record: Vec<u8>,
    /// Why streaming part of the record failed, if it did: the commit fails.
    streaming: Option<std::io::Error>,
    /// Whether anything was written, logged or not.
    written: bool,
}

/// Record bytes held before they are written ahead to the log: a commit
/// that writes more (a migration) holds at most this much of its record.
const STREAM_BYTES: usize = 4 << 20;

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        // What an aborted transaction wrote ahead lies past the end of the
        // log; the next record goes over it. (After a commit, nothing is.)
        self.writer.segment.discard();
    }
}

impl<'e> WriteTxn<'e> {
    pub(crate) fn new(shared: &'e Shared) -> Result<Self> {
        let writer = shared.writer();
        // Read after becoming the writer: no commit can land in between.
        let (layers, txn) = shared.read()?;
        Ok(WriteTxn {
            writer,
            shared,
            layers,
            txn,
            record: Vec::new(),
            streaming: None,
            written: false,
        })
    }

    /// Makes everything written durable, atomically: one record appended to
    /// the write-ahead log and synced. LMDB receives it later.
    pub fn commit(mut self) -> Result<()> {
        if !self.written {
            return Ok(());
        }
        if let Some(source) = self.streaming.take() {
            return Err(StoreError::Io {
                path: format!(
                    "write-ahead log segment {:016x}",
                    self.writer.segment.generation()
                ),
                source,
            });
        }
        if !self.record.is_empty() || self.writer.segment.streaming() {
            self.shared.check_backlog()?;
            self.writer
                .segment
                .append(&self.record)
                .map_err(|source| StoreError::Io {
                    path: format!(
                        "write-ahead log segment {:016x}",
                        self.writer.segment.generation()
                    ),
                    source,
                })?;
        }
        self.shared.publish(
            std::mem::take(&mut self.layers.mem),
            self.writer.segment.len(),
        );
        Ok(())
    }

    pub(crate) fn view(&self) -> View<'_> {
        View {
            mem: &self.layers.mem,
            frozen: self.layers.frozen.as_deref(),
            txn: &self.txn,
            tables: &self.shared.tables,
        }
    }

    pub(crate) fn put(&mut self, t: Table, k: &[u8], v: &[u8]) {
        // Merkle nodes are most of a commit's bytes and follow from the
        // leaves, which follow from the entries: the log leaves both out,
        // and recovery hashes the leaves of the entries it replays and
        // re-hashes their buckets (`Store::open`).
        if t != Table::Merkle && t != Table::Leaves {
            self.log(t, k, Some(v));
        }
        self.layers.mem.insert(t, k, Some(Arc::from(v)));
        self.written = true;
    }

    /// Adds a write to the log record, writing the record ahead to the log
    /// once it is large.
    fn log(&mut self, t: Table, k: &[u8], v: Option<&[u8]>) {
        wal::push(&mut self.record, t, k, v);
        if self.record.len() >= STREAM_BYTES {
            if self.streaming.is_none()
                && let Err(e) = self.writer.segment.stream(&self.record)
            {
                self.streaming = Some(e);
            }
            self.record.clear();
        }
    }

    /// Makes the writes collected in `run` (and logged, by `log_run`)
    /// visible to this transaction, over every older value of their keys:
    /// one sorted file per table instead of a tree insert per write.
    pub(crate) fn put_run(&mut self, run: RunBuilder<'_>) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        self.layers.mem.add_run(run.seal()?);
        self.written = true;
        Ok(())
    }

    /// A run whose files go beside the log.
    pub(crate) fn run_builder(&self) -> RunBuilder<'e> {
        RunBuilder::new(self.shared.dir())
    }

    /// Unmaps the pages of runs that reads of this transaction touched.
    pub(crate) fn release_run_pages(&self) {
        self.layers.mem.release_run_pages();
    }

    /// Logs a write that goes into a run (but a leaf, as `put`).
    pub(crate) fn log_run(
        &mut self,
        run: &mut RunBuilder<'_>,
        t: Table,
        k: &[u8],
        v: Option<&[u8]>,
    ) {
        if t != Table::Leaves || v.is_none() {
            self.log(t, k, v);
        }
        run.push(t, k, v);
    }

    /// Deletes `k` from `t`; whether it was there.
    pub(crate) fn delete(&mut self, t: Table, k: &[u8]) -> Result<bool> {
        let existed = self.view().get(t, k)?.is_some();
        if existed {
            self.remove(t, k)?;
        }
        Ok(existed)
    }

    fn delete_prefix(&mut self, t: Table, prefix: &[u8]) -> Result<()> {
        let mut keys = Vec::new();
        self.view().prefix(t, prefix, |k, _| {
            keys.push(k.to_vec());
            Ok(true)
        })?;
        for k in keys {
            self.remove(t, &k)?;
        }
        Ok(())
    }

    /// Deletes a key that is there.
    fn remove(&mut self, t: Table, k: &[u8]) -> Result<()> {
        self.log(t, k, None);
        self.written = true;
        if self.view().below_newest(t, k)? {
            self.layers.mem.insert(t, k, None);
        } else {
            // Only ever written since the last flush: forget it rather than
            // keep a tombstone that every scan of its range would step over
            // (DAG heads come and go with every commit).
            self.layers.mem.remove(t, k);
        }
        Ok(())
    }

    /// Whether any Merkle leaf of `ctx` is stored.
    pub(crate) fn has_leaves(&self, ctx: &ContextId) -> Result<bool> {
        let mut found = false;
        self.view().prefix(Table::Leaves, &ctx.0, |_, _| {
            found = true;
            Ok(false)
        })?;
        Ok(found)
    }

    /// Stores a delta, joins its ops into the context's state and makes it a
    /// DAG head in place of its parents. Returns the new root hash. The caller
    /// has verified it and checked that its parents are known.
    pub fn apply_delta(&mut self, id: &DeltaId, signed: &SignedDelta) -> Result<Hash> {
        self.store_delta(id, signed)?;
        let root = apply_ops(
            &mut self.context_state(signed.delta.context),
            &signed.delta.ops,
        )?;
        Ok(root)
    }

    /// Applies `deltas` in order, like [`apply_delta`](Self::apply_delta)
    /// each, and returns the root after each. The inner trie nodes, which
    /// every delta of a context rewrites near the root, are held in memory
    /// and stored once at the end.
    pub fn apply_deltas<'a>(
        &mut self,
        deltas: impl IntoIterator<Item = (&'a DeltaId, &'a SignedDelta)>,
    ) -> Result<Vec<Hash>> {
        let mut nodes: BTreeMap<ContextId, merkle::NodeCache> = BTreeMap::new();
        let mut roots = Vec::new();
        for (id, signed) in deltas {
            self.store_delta(id, signed)?;
            let ctx = signed.delta.context;
            let mut state = self.context_state(ctx);
            let mut changed = BTreeSet::new();
            join_ops(&mut state, &signed.delta.ops, &mut changed)?;
            let buckets = merkle::put_leaves(&mut state, changed)?;
            let cache = nodes.entry(ctx).or_default();
            roots.push(merkle::rehash(
                &mut merkle::Cached::new(&mut state, cache),
                buckets,
            )?);
        }
        for (ctx, cache) in nodes {
            merkle::write_back(&mut self.context_state(ctx), cache)?;
        }
        Ok(roots)
    }

    /// Stores a delta and makes it a DAG head in place of its parents.
    fn store_delta(&mut self, id: &DeltaId, signed: &SignedDelta) -> Result<()> {
        let ctx = signed.delta.context;
        self.put(Table::Deltas, &key(&[&ctx.0, &id.0]), &signed.to_bytes());
        for parent in &signed.delta.parents {
            self.delete(Table::Heads, &key(&[&ctx.0, &parent.0]))?;
        }
        self.put(Table::Heads, &key(&[&ctx.0, &id.0]), &[]);
        Ok(())
    }

    /// Whether a delta is stored.
    pub fn has_delta(&self, ctx: &ContextId, id: &DeltaId) -> Result<bool> {
        read::has_delta(&self.view(), ctx, id)
    }

    /// Stores content-addressed bytes.
    pub fn put_blob(&mut self, hash: &Hash, bytes: &[u8]) -> Result<()> {
        self.put(Table::Blobs, hash, bytes);
        Ok(())
    }

    /// Removes stored bytes.
    pub fn delete_blob(&mut self, hash: &Hash) -> Result<bool> {
        self.delete(Table::Blobs, hash)
    }

    /// Stores an application record.
    pub fn put_application(&mut self, app: &ApplicationRecord) -> Result<()> {
        self.put(Table::Apps, &app.id, &encode("apps", app)?);
        Ok(())
    }

    /// Removes an application record.
    pub fn delete_application(&mut self, id: &[u8; 32]) -> Result<bool> {
        self.delete(Table::Apps, id)
    }

    /// An application record.
    pub fn application(&self, id: &[u8; 32]) -> Result<Option<ApplicationRecord>> {
        read::application(&self.view(), id)
    }

    /// Stores a context's metadata.
    pub fn put_context_meta(&mut self, meta: &ContextMeta) -> Result<()> {
        self.put(Table::Contexts, &meta.id.0, &encode("contexts", meta)?);
        Ok(())
    }

    /// A context's metadata.
    pub fn context_meta(&self, ctx: &ContextId) -> Result<Option<ContextMeta>> {
        read::context_meta(&self.view(), ctx)
    }

    /// Every context.
    pub fn contexts(&self) -> Result<Vec<ContextMeta>> {
        read::contexts(&self.view())
    }

    /// The context's DAG heads.
    pub fn heads(&self, ctx: &ContextId) -> Result<Vec<DeltaId>> {
        read::heads(&self.view(), ctx)
    }

    /// Writes (`Some`) or removes (`None`) a private-storage value.
    pub fn private_put(&mut self, ctx: &ContextId, k: &[u8], value: Option<&[u8]>) -> Result<()> {
        let k = key(&[&ctx.0, k]);
        match value {
            Some(v) => self.put(Table::Private, &k, v),
            None => {
                self.delete(Table::Private, &k)?;
            }
        }
        Ok(())
    }

    /// Stores a group.
    pub fn put_group(&mut self, group: &GroupRecord) -> Result<()> {
        self.put(Table::Groups, &group.id, &encode("groups", group)?);
        Ok(())
    }

    /// A group.
    pub fn group(&self, id: &[u8; 32]) -> Result<Option<GroupRecord>> {
        read::group(&self.view(), id)
    }

    /// Deletes a group.
    pub fn delete_group(&mut self, id: &[u8; 32]) -> Result<bool> {
        self.delete(Table::Groups, id)
    }

    /// Points an alias of `kind` at `id`.
    pub fn put_alias(&mut self, kind: &str, name: &str, id: &[u8; 32]) -> Result<()> {
        self.put(Table::Aliases, &alias_key(kind, name), id);
        Ok(())
    }

    /// Removes an alias.
    pub fn delete_alias(&mut self, kind: &str, name: &str) -> Result<bool> {
        self.delete(Table::Aliases, &alias_key(kind, name))
    }

    /// Stores a node-local record of `kind` under `key`.
    pub fn put_local(&mut self, kind: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.put(Table::Local, &local_key(kind, key), value);
        Ok(())
    }

    /// Keeps the body of a delta of `ctx` refused for good (a removed
    /// member's beside its removal's frontier), apart from the DAG: it was
    /// never merged, and a snapshot holding its writes is refused.
    pub fn put_refused_delta(&mut self, ctx: &ContextId, delta: &SignedDelta) -> Result<()> {
        let id = delta.delta.id();
        let k = [ctx.0.as_slice(), id.0.as_slice()].concat();
        self.put(
            Table::Local,
            &local_key(read::REFUSED_DELTA, &k),
            &delta.to_bytes(),
        );
        Ok(())
    }

    /// Removes a node-local record.
    pub fn delete_local(&mut self, kind: &str, key: &[u8]) -> Result<bool> {
        self.delete(Table::Local, &local_key(kind, key))
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
        if self.view().get(Table::Deltas, &k)?.is_none() {
            self.put(Table::Deltas, &k, &[]);
        }
        Ok(())
    }

    /// Keeps the body of a delta known from a joined snapshot that carried
    /// it (in place of a stub): its ops are in the joined entries already,
    /// and the heads are the snapshot's.
    pub fn put_joined_delta(&mut self, ctx: &ContextId, delta: &SignedDelta) -> Result<()> {
        let id = delta.delta.id();
        self.put(Table::Deltas, &key(&[&ctx.0, &id.0]), &delta.to_bytes());
        Ok(())
    }

    /// Replaces a context's DAG heads.
    pub fn set_heads(&mut self, ctx: &ContextId, heads: &[DeltaId]) -> Result<()> {
        self.delete_prefix(Table::Heads, &ctx.0)?;
        for h in heads {
            self.put(Table::Heads, &key(&[&ctx.0, &h.0]), &[]);
        }
        Ok(())
    }

    /// Stores a signed governance op of a namespace.
    pub fn put_governance(&mut self, ns: &[u8; 32], id: &[u8; 32], op: &[u8]) -> Result<()> {
        self.put(Table::Governance, &key(&[ns, id]), op);
        Ok(())
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
        let value = encode("handlers", &(method, data))?;
        self.put(Table::Handlers, &handler_key(ctx, delta, index), &value);
        Ok(())
    }

    /// Forgets a handler that ran.
    pub fn delete_handler(&mut self, h: &PendingHandler) -> Result<bool> {
        self.delete(Table::Handlers, &handler_key(&h.context, &h.delta, h.index))
    }

    /// Deletes a namespace's governance log.
    pub fn delete_governance(&mut self, ns: &[u8; 32]) -> Result<()> {
        self.delete_prefix(Table::Governance, ns)
    }

    /// Drops a context's replicated state (entries, DAG, pending handlers),
    /// keeping its private storage and its record: what a resync replaces
    /// with a member's snapshot.
    pub fn reset_context(&mut self, ctx: &ContextId) -> Result<()> {
        for t in Table::PER_CONTEXT {
            if t != Table::Private {
                self.delete_prefix(t, &ctx.0)?;
            }
        }
        Ok(())
    }

    /// Deletes a context and everything stored for it.
    pub fn delete_context(&mut self, ctx: &ContextId) -> Result<bool> {
        for t in Table::PER_CONTEXT {
            self.delete_prefix(t, &ctx.0)?;
        }
        self.delete(Table::Contexts, &ctx.0)
    }
}
