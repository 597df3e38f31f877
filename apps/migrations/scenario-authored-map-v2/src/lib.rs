//! `com.calimero.scenario-authored-map` at state version 2: the authored
//! entries carry over with their owners (a migration cannot rewrite them),
//! and the migration leaves a `migration_note`. Calls and JSON are
//! upstream's `scenario-authored-map-v2`.

use mero_sdk::app;
use mero_sdk::collections::{AuthoredMap, LwwRegister};
use mero_sdk::migration::add_with_default;
use serde::Serialize;

const NOTE: &str = "migrated from 1.0.0 to 2.0.0";

#[app::state(version = 2, package = "com.calimero.scenario-authored-map")]
pub struct AuthoredMapApp {
    entries: AuthoredMap<String, String>,
    title: LwwRegister<String>,
    migration_note: LwwRegister<String>,
}

/// The v1 state, as `scenario-authored-map-v1` declares it.
#[app::state(version = 1)]
pub struct AuthoredMapV1 {
    pub entries: AuthoredMap<String, String>,
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
impl AuthoredMapApp {
    #[app::init]
    pub fn init() -> AuthoredMapApp {
        AuthoredMapApp {
            entries: AuthoredMap::new(),
            title: LwwRegister::new(String::new()),
            migration_note: LwwRegister::new(String::new()),
        }
    }

    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, _old: &AuthoredMapV1) -> app::Result<()> {
        add_with_default(&mut self.migration_note, NOTE.into())
    }

    pub fn set_title(&mut self, title: String) -> app::Result<()> {
        self.title.set(title)
    }

    pub fn put_entry(&mut self, key: String, value: String) -> app::Result<()> {
        self.entries.insert(key, value).map(drop)
    }

    pub fn remove_entry(&mut self, key: String) -> app::Result<bool> {
        self.entries.remove(&key)
    }

    pub fn get_entry(&self, key: String) -> app::Result<Option<String>> {
        self.entries.get(&key)
    }

    pub fn owner_of(&self, key: String) -> app::Result<Option<String>> {
        Ok(self
            .entries
            .owner_of(&key)?
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
