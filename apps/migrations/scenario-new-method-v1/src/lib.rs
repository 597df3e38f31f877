//! `com.calimero.scenario-new-method`, v1 of a code-only pair: v2 adds a method and keeps the state as it is.
//! Calls and JSON are upstream's `scenario-new-method-v1`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-new-method")]
pub struct NewMethod {
    items: UnorderedMap<String, LwwRegister<String>>,
    counter: LwwRegister<u64>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    items_len: u64,
}

#[app::logic]
impl NewMethod {
    #[app::init]
    pub fn init() -> NewMethod {
        NewMethod {
            items: UnorderedMap::new(),
            counter: LwwRegister::new(0),
        }
    }

    pub fn set_item(&mut self, key: String, value: String) -> app::Result<()> {
        self.items.insert_value(key, value).map(drop)
    }

    pub fn get_item(&self, key: &str) -> app::Result<Option<String>> {
        self.items.get_value(key)
    }

    /// Adds one; returns the new value.
    pub fn increment_counter(&mut self) -> app::Result<u64> {
        let next = self.counter.get()?.unwrap_or_default().saturating_add(1);
        self.counter.set(next)?;
        Ok(next)
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            items_len: self.items.len()?,
        })
    }
}
