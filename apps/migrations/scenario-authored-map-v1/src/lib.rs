//! `com.calimero.scenario-authored-map` at state version 1: an authored
//! map whose entries only their creator may change. Calls and JSON are
//! upstream's `scenario-authored-map-v1`.

use mero_sdk::app;
use mero_sdk::collections::{AuthoredMap, LwwRegister};
use serde::Serialize;

#[app::state(version = 1, package = "com.calimero.scenario-authored-map")]
pub struct AuthoredMapApp {
    entries: AuthoredMap<String, String>,
    title: LwwRegister<String>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    title: String,
    entry_count: u64,
}

#[app::logic]
impl AuthoredMapApp {
    #[app::init]
    pub fn init() -> AuthoredMapApp {
        AuthoredMapApp {
            entries: AuthoredMap::new(),
            title: LwwRegister::new(String::new()),
        }
    }

    pub fn set_title(&mut self, title: String) -> app::Result<()> {
        self.title.set(title)
    }

    /// Creates the entry, or rewrites it if the caller owns it.
    pub fn put_entry(&mut self, key: String, value: String) -> app::Result<()> {
        self.entries.insert(key, value).map(drop)
    }

    pub fn remove_entry(&mut self, key: String) -> app::Result<bool> {
        self.entries.remove(&key)
    }

    pub fn get_entry(&self, key: String) -> app::Result<Option<String>> {
        self.entries.get(&key)
    }

    /// The owner's public key, base58.
    pub fn owner_of(&self, key: String) -> app::Result<Option<String>> {
        Ok(self
            .entries
            .owner_of(&key)?
            .map(|pk| bs58::encode(pk).into_string()))
    }

    pub fn entry_count(&self) -> app::Result<u64> {
        self.entries.len()
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            title: self.title.get()?.unwrap_or_default(),
            entry_count: self.entries.len()?,
        })
    }
}
