//! `com.calimero.scenario-authored-vector` at state version 2: the
//! elements carry over with their owners. Calls and JSON are upstream's
//! `scenario-authored-vector-v2`.

use mero_sdk::app;
use mero_sdk::collections::{AuthoredVector, LwwRegister};
use mero_sdk::migration::add_with_default;
use serde::Serialize;

#[app::state(version = 2, package = "com.calimero.scenario-authored-vector")]
pub struct AuthoredVectorApp {
    entries: AuthoredVector<String>,
    title: LwwRegister<String>,
    migration_note: LwwRegister<String>,
}

/// The v1 state, as `scenario-authored-vector-v1` declares it.
#[app::state(version = 1)]
pub struct AuthoredVectorV1 {
    pub entries: AuthoredVector<String>,
    pub title: LwwRegister<String>,
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
            migration_note: LwwRegister::new(String::new()),
        }
    }

    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, _old: &AuthoredVectorV1) -> app::Result<()> {
        add_with_default(
            &mut self.migration_note,
            "migrated from 1.0.0 to 2.0.0".into(),
        )
    }

    pub fn set_title(&mut self, title: String) -> app::Result<()> {
        self.title.set(title)
    }

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

    pub fn migration_note(&self) -> app::Result<String> {
        Ok(self.migration_note.get()?.unwrap_or_default())
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            title: self.title.get()?.unwrap_or_default(),
            entry_count: self.entries.len()?,
        })
    }
}
