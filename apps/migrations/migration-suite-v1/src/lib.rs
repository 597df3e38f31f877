//! The first link of the migration chain (`com.calimero.migration-suite`,
//! state version 1): items, a description and a counter. The later
//! `migration-suite-v*` fixtures add, remove, rename and retype its fields;
//! its calls and JSON are upstream's `migration-suite-v1`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(version = 1, package = "com.calimero.migration-suite")]
pub struct MigrationSuite {
    items: UnorderedMap<String, LwwRegister<String>>,
    description: LwwRegister<String>,
    counter: LwwRegister<u64>,
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
            schema_version: "1.0.0",
            description: self.get_description()?,
            counter: self.get_counter()?.to_string(),
        })
    }
}
