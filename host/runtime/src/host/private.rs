//! `calimero:context/private-storage`: node-local bytes per context, and
//! the buffer a call's writes to them go to.

use std::collections::BTreeMap;

use mero_crdt::{ContextId, MAX_KEY_LEN, MAX_VALUE_LEN};
use mero_store::Snapshot;

use super::HostState;
use crate::bindings::StorageError;
use crate::bindings::calimero::context::private_storage;

/// For each key written since the checkpoint, what the buffer held before:
/// `None` if the key was not buffered, `Some(v)` if it held `v`.
type Journal = BTreeMap<Vec<u8>, Option<Option<Vec<u8>>>>;

/// Node-local private storage of one context, buffered like the state.
#[derive(Debug)]
pub struct PrivateOverlay {
    snapshot: Snapshot,
    ctx: ContextId,
    /// Writes of the batch still being committed.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    journal: Option<Journal>,
}

impl PrivateOverlay {
    /// An empty buffer over the private storage in `snapshot`.
    pub fn new(snapshot: Snapshot, ctx: ContextId) -> Self {
        PrivateOverlay::over_pending(snapshot, ctx, BTreeMap::new())
    }

    /// An empty buffer over `pending` writes over `snapshot`.
    pub fn over_pending(
        snapshot: Snapshot,
        ctx: ContextId,
        pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Self {
        PrivateOverlay {
            snapshot,
            ctx,
            pending,
            writes: BTreeMap::new(),
            journal: None,
        }
    }

    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, mero_store::StoreError> {
        match self.writes.get(key).or_else(|| self.pending.get(key)) {
            Some(v) => Ok(v.clone()),
            None => self.snapshot.private_get(&self.ctx, key),
        }
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let old = self.writes.insert(key.clone(), value);
        if let Some(j) = &mut self.journal {
            j.entry(key).or_insert(old);
        }
    }

    /// Starts recording what to undo.
    pub fn checkpoint(&mut self) {
        self.journal = Some(BTreeMap::new());
    }

    /// Keeps the writes since the checkpoint.
    pub fn release(&mut self) {
        self.journal = None;
    }

    /// Undoes the writes since the checkpoint.
    pub fn rollback(&mut self) {
        for (k, old) in self.journal.take().into_iter().flatten() {
            match old {
                Some(v) => self.writes.insert(k, v),
                None => self.writes.remove(&k),
            };
        }
    }

    /// The buffered writes (`None` removes), in key order.
    pub fn writes(&self) -> &BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        &self.writes
    }
}

fn check(key: &[u8], value: &[u8]) -> Option<StorageError> {
    if key.len() > MAX_KEY_LEN {
        return Some(StorageError::TooLarge(format!(
            "private key of {} bytes (max {MAX_KEY_LEN})",
            key.len()
        )));
    }
    if value.len() > MAX_VALUE_LEN {
        return Some(StorageError::TooLarge(format!(
            "private value of {} bytes (max {MAX_VALUE_LEN})",
            value.len()
        )));
    }
    None
}

impl HostState {
    fn private(&mut self) -> wasmtime::Result<&mut PrivateOverlay> {
        self.env.private.as_mut().ok_or_else(|| {
            wasmtime::Error::msg("private storage is not available while the app describes itself")
        })
    }
}

impl private_storage::Host for HostState {
    fn read(&mut self, key: Vec<u8>) -> wasmtime::Result<Result<Option<Vec<u8>>, StorageError>> {
        if let Some(e) = check(&key, &[]) {
            return Ok(Err(e));
        }
        match self.private()?.read(&key) {
            Ok(v) => Ok(Ok(v)),
            Err(e) => {
                let msg = format!("private storage: {e}");
                self.env.host_failure.get_or_insert_with(|| msg.clone());
                Err(wasmtime::Error::msg(msg))
            }
        }
    }

    fn write(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), StorageError>> {
        if let Some(e) = self
            .deny_write()
            .or_else(|| check(&key, &value))
            .or_else(|| self.charge(key.len() + value.len()))
        {
            return Ok(Err(e));
        }
        self.private()?.write(key, Some(value));
        Ok(Ok(()))
    }

    fn remove(&mut self, key: Vec<u8>) -> wasmtime::Result<Result<bool, StorageError>> {
        if let Some(e) = self.deny_write().or_else(|| check(&key, &[])) {
            return Ok(Err(e));
        }
        let existed = match private_storage::Host::read(self, key.clone())? {
            Ok(v) => v.is_some(),
            Err(e) => return Ok(Err(e)),
        };
        self.private()?.write(key, None);
        Ok(Ok(existed))
    }
}
