//! `com.calimero.scenario-layout-no-bump` v1 (ours, not upstream's): items
//! holding strings. v2 changes their type without bumping the state
//! version, an upgrade the node must refuse.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-layout-no-bump")]
pub struct LayoutNoBump {
    items: UnorderedMap<String, LwwRegister<String>>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    item_count: u64,
}

#[app::logic]
impl LayoutNoBump {
    #[app::init]
    pub fn init() -> LayoutNoBump {
        LayoutNoBump {
            items: UnorderedMap::new(),
        }
    }

    pub fn set_item(&mut self, key: String, value: String) -> app::Result<()> {
        self.items.insert_value(key, value).map(drop)
    }

    pub fn get_item(&self, key: &str) -> app::Result<Option<String>> {
        self.items.get_value(key)
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            item_count: self.items.len()?,
        })
    }
}
