//! `com.calimero.migration-suite` at state version 4: v3 with
//! `description` renamed to `details`; the migration from v3 moves the
//! value. Calls and JSON are upstream's `migration-suite-v4-rename-field`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use mero_sdk::migration::rename;
use serde::Serialize;

#[app::state(version = 4, package = "com.calimero.migration-suite")]
pub struct MigrationSuite {
    items: UnorderedMap<String, LwwRegister<String>>,
    details: LwwRegister<String>,
    counter: LwwRegister<u64>,
}

/// The v3 state, as `migration-suite-v3-remove-field` declares it.
#[app::state(version = 3)]
pub struct MigrationSuiteV3 {
    pub items: UnorderedMap<String, LwwRegister<String>>,
    pub description: LwwRegister<String>,
    pub counter: LwwRegister<u64>,
}

/// What `schema_info` reports; `counter` is a decimal string, as upstream's.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    details: String,
    counter: String,
}

#[app::logic]
impl MigrationSuite {
    #[app::init]
    pub fn init() -> MigrationSuite {
        MigrationSuite {
            items: UnorderedMap::new(),
            details: LwwRegister::new("initial".into()),
            counter: LwwRegister::new(0),
        }
    }

    #[app::migrate(from = 3)]
    pub fn migrate_v3_to_v4(&mut self, _old: &MigrationSuiteV3) -> app::Result<()> {
        rename("description", &mut self.details)
    }

    pub fn set_item(&mut self, key: String, value: String) -> app::Result<()> {
        self.items.insert_value(key, value).map(drop)
    }

    pub fn get_item(&self, key: &str) -> app::Result<Option<String>> {
        self.items.get_value(key)
    }

    pub fn set_details(&mut self, details: String) -> app::Result<()> {
        self.details.set(details)
    }

    pub fn get_details(&self) -> app::Result<String> {
        Ok(self.details.get()?.unwrap_or_default())
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
            schema_version: "4.0.0",
            details: self.get_details()?,
            counter: self.get_counter()?.to_string(),
        })
    }
}
