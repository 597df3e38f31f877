//! `com.calimero.scenario-migration-check-fail` v1: items and a title.
//! v2's migration loses an item and its check catches it. Calls and JSON are upstream's `scenario-migration-check-fail-v1`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-migration-check-fail")]
pub struct MigrationCheck {
    items: UnorderedMap<String, LwwRegister<String>>,
    title: LwwRegister<String>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    title: String,
    item_count: u64,
}

#[app::logic]
impl MigrationCheck {
    #[app::init]
    pub fn init() -> MigrationCheck {
        MigrationCheck {
            items: UnorderedMap::new(),
            title: LwwRegister::new("untitled".into()),
        }
    }

    pub fn set_title(&mut self, title: String) -> app::Result<()> {
        self.title.set(title)
    }

    pub fn set_item(&mut self, key: String, value: String) -> app::Result<()> {
        self.items.insert_value(key, value).map(drop)
    }

    pub fn get_item(&self, key: &str) -> app::Result<Option<String>> {
        self.items.get_value(key)
    }

    pub fn item_count(&self) -> app::Result<u64> {
        self.items.len()
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            title: self.title.get()?.unwrap_or_default(),
            item_count: self.items.len()?,
        })
    }
}
