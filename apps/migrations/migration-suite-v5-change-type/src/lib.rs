//! `com.calimero.migration-suite` at state version 5: v4 with `counter`
//! turned from a number into a string under the same name; the migration
//! from v4 rewrites the register with the converted value. Calls and JSON
//! are upstream's `migration-suite-v5-change-type`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(version = 5, package = "com.calimero.migration-suite")]
pub struct MigrationSuite {
    items: UnorderedMap<String, LwwRegister<String>>,
    details: LwwRegister<String>,
    counter: LwwRegister<String>,
}

/// The v4 state, as `migration-suite-v4-rename-field` declares it.
#[app::state(version = 4)]
pub struct MigrationSuiteV4 {
    pub items: UnorderedMap<String, LwwRegister<String>>,
    pub details: LwwRegister<String>,
    pub counter: LwwRegister<u64>,
}

/// What `schema_info` reports.
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
            counter: LwwRegister::new("0".into()),
        }
    }

    /// The old register and the new one share the root `counter`: read the
    /// number through the frozen old state, then overwrite it as a string.
    #[app::migrate(from = 4)]
    pub fn migrate_v4_to_v5(&mut self, old: &MigrationSuiteV4) -> app::Result<()> {
        let counter = old.counter.get()?.unwrap_or_default();
        self.counter.set(counter.to_string())
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

    pub fn set_counter(&mut self, counter: String) -> app::Result<()> {
        self.counter.set(counter)
    }

    pub fn get_counter(&self) -> app::Result<String> {
        Ok(self.counter.get()?.unwrap_or_default())
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "5.0.0",
            details: self.get_details()?,
            counter: self.get_counter()?,
        })
    }
}
