//! `com.calimero.migration-suite` at state version 2: v1 plus a `notes`
//! field, which the migration from v1 seeds with `"added in v2"`; every v1
//! field keeps its data by keeping its name. Calls and JSON are upstream's
//! `migration-suite-v2-add-field`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use mero_sdk::migration::add_with_default;
use serde::Serialize;

const NOTES_DEFAULT: &str = "added in v2";

#[app::state(version = 2, package = "com.calimero.migration-suite")]
pub struct MigrationSuite {
    items: UnorderedMap<String, LwwRegister<String>>,
    description: LwwRegister<String>,
    counter: LwwRegister<u64>,
    notes: LwwRegister<String>,
}

/// The v1 state, as `migration-suite-v1` declares it.
#[app::state(version = 1)]
pub struct MigrationSuiteV1 {
    pub items: UnorderedMap<String, LwwRegister<String>>,
    pub description: LwwRegister<String>,
    pub counter: LwwRegister<u64>,
}

/// What `schema_info` reports; `counter` is a decimal string, as upstream's.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    description: String,
    counter: String,
    notes: String,
}

#[app::logic]
impl MigrationSuite {
    #[app::init]
    pub fn init() -> MigrationSuite {
        MigrationSuite {
            items: UnorderedMap::new(),
            description: LwwRegister::new("initial".into()),
            counter: LwwRegister::new(0),
            notes: LwwRegister::new(NOTES_DEFAULT.into()),
        }
    }

    /// The v1 fields carry over as they are; only `notes` is new.
    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, _old: &MigrationSuiteV1) -> app::Result<()> {
        add_with_default(&mut self.notes, NOTES_DEFAULT.into())
    }

    pub fn set_item(&mut self, key: String, value: String) -> app::Result<()> {
        self.items.insert_value(key, value).map(drop)
    }

    pub fn get_item(&self, key: &str) -> app::Result<Option<String>> {
        self.items.get_value(key)
    }

    pub fn set_description(&mut self, description: String) -> app::Result<()> {
        self.description.set(description)
    }

    pub fn get_description(&self) -> app::Result<String> {
        Ok(self.description.get()?.unwrap_or_default())
    }

    /// Adds one; returns the new value.
    pub fn increment_counter(&mut self) -> app::Result<u64> {
        let next = self.get_counter()?.saturating_add(1);
        self.counter.set(next)?;
        Ok(next)
    }

    pub fn get_counter(&self) -> app::Result<u64> {
        Ok(self.counter.get()?.unwrap_or_default())
    }

    pub fn set_notes(&mut self, notes: String) -> app::Result<()> {
        self.notes.set(notes)
    }

    pub fn get_notes(&self) -> app::Result<String> {
        Ok(self.notes.get()?.unwrap_or_default())
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            description: self.get_description()?,
            counter: self.get_counter()?.to_string(),
            notes: self.get_notes()?,
        })
    }
}
