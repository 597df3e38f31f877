//! `com.calimero.migration-suite` at state version 3: v2 without `notes`,
//! which the migration from v2 drops so its data does not linger. Calls
//! and JSON are upstream's `migration-suite-v3-remove-field` (v1's methods).

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use mero_sdk::migration::drop_field;
use serde::Serialize;

#[app::state(version = 3, package = "com.calimero.migration-suite")]
pub struct MigrationSuite {
    items: UnorderedMap<String, LwwRegister<String>>,
    description: LwwRegister<String>,
    counter: LwwRegister<u64>,
}

/// The v2 state, as `migration-suite-v2-add-field` declares it.
#[app::state(version = 2)]
pub struct MigrationSuiteV2 {
    pub items: UnorderedMap<String, LwwRegister<String>>,
    pub description: LwwRegister<String>,
    pub counter: LwwRegister<u64>,
    pub notes: LwwRegister<String>,
}

/// What `schema_info` reports; `counter` is a decimal string, as upstream's.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    description: String,
    counter: String,
}

#[app::logic]
impl MigrationSuite {
    #[app::init]
    pub fn init() -> MigrationSuite {
        MigrationSuite {
            items: UnorderedMap::new(),
            description: LwwRegister::new("initial".into()),
            counter: LwwRegister::new(0),
        }
    }

    #[app::migrate(from = 2)]
    pub fn migrate_v2_to_v3(&mut self, _old: &MigrationSuiteV2) -> app::Result<()> {
        drop_field::<LwwRegister<String>>("notes")
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

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "3.0.0",
            description: self.get_description()?,
            counter: self.get_counter()?.to_string(),
        })
    }
}
