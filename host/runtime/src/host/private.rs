//! `calimero:context/private-storage`: node-local bytes per context.

use mero_crdt::{MAX_KEY_LEN, MAX_VALUE_LEN};

use super::HostState;
use crate::bindings::StorageError;
use crate::bindings::calimero::context::private_storage;

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
    fn private(&mut self) -> wasmtime::Result<&mut super::PrivateOverlay> {
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
