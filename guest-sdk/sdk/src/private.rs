//! Node-local storage: never replicated, never part of the state hash.
//! Use it for secrets and per-node data. Writes commit with the call.

use crate::Result;
use crate::bindings::calimero::context::private_storage as host;

/// The raw value stored under `key`.
pub fn read(key: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(host::read(key)?)
}

/// Stores `value` under `key`.
pub fn write(key: &[u8], value: &[u8]) -> Result<()> {
    Ok(host::write(key, value)?)
}

/// Removes `key`; returns whether it was there.
pub fn remove(key: &[u8]) -> Result<bool> {
    Ok(host::remove(key)?)
}

/// Reads a JSON-encoded value.
pub fn get<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>> {
    read(key.as_bytes())?
        .map(|b| serde_json::from_slice(&b).map_err(Into::into))
        .transpose()
}

/// Stores a value as JSON.
pub fn set<T: serde::Serialize + ?Sized>(key: &str, value: &T) -> Result<()> {
    write(key.as_bytes(), &serde_json::to_vec(value)?)
}
