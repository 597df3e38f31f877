//! `com.calimero.scenario-authored-vector` at state version 1: an
//! authored vector, whose elements only their pusher may change. Calls and
//! JSON are upstream's `scenario-authored-vector-v1`.

use mero_sdk::app;
use mero_sdk::collections::{AuthoredVector, LwwRegister};
use serde::Serialize;

#[app::state(version = 1, package = "com.calimero.scenario-authored-vector")]
pub struct AuthoredVectorApp {
    entries: AuthoredVector<String>,
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
impl AuthoredVectorApp {
    #[app::init]
    pub fn init() -> AuthoredVectorApp {
        AuthoredVectorApp {
            entries: AuthoredVector::new(),
            title: LwwRegister::new(String::new()),
        }
    }

    pub fn set_title(&mut self, title: String) -> app::Result<()> {
        self.title.set(title)
    }

    /// Appends; returns the new length.
    pub fn push_entry(&mut self, value: String) -> app::Result<u64> {
        self.entries.push(value)?;
        self.entries.len()
    }

    pub fn set_entry(&mut self, index: u64, value: String) -> app::Result<String> {
        self.entries.set(index, value)
    }

    pub fn get_entry(&self, index: u64) -> app::Result<Option<String>> {
        self.entries.get(index)
    }

    pub fn owner_of(&self, index: u64) -> app::Result<Option<String>> {
        Ok(self
            .entries
            .owner_of(index)?
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
