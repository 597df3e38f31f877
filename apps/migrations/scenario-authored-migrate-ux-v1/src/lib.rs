//! `com.calimero.scenario-authored-migrate-ux` at state version 1: notes
//! in an authored map, each its writer's. Calls and JSON are upstream's
//! `scenario-authored-migrate-ux-v1`.

use mero_sdk::app;
use mero_sdk::collections::AuthoredMap;
use serde::Serialize;

#[app::state(version = 1, package = "com.calimero.scenario-authored-migrate-ux")]
pub struct MigrateUx {
    notes: AuthoredMap<String, String>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    note_count: u64,
}

#[app::logic]
impl MigrateUx {
    #[app::init]
    pub fn init() -> MigrateUx {
        MigrateUx {
            notes: AuthoredMap::new(),
        }
    }

    pub fn set_note(&mut self, key: String, text: String) -> app::Result<()> {
        self.notes.insert(key, text).map(drop)
    }

    pub fn my_note(&self, key: String) -> app::Result<Option<String>> {
        self.notes.get(&key)
    }

    pub fn owner_of(&self, key: String) -> app::Result<Option<String>> {
        Ok(self
            .notes
            .owner_of(&key)?
            .map(|pk| bs58::encode(pk).into_string()))
    }

    pub fn note_count(&self) -> app::Result<u64> {
        self.notes.len()
    }

    pub fn note_schema_version(&self, key: String) -> app::Result<Option<u32>> {
        self.notes.entry_schema_version(&key)
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            note_count: self.notes.len()?,
        })
    }
}
