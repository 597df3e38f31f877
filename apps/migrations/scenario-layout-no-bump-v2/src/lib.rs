//! `com.calimero.scenario-layout-no-bump` v2 (ours): the mistake the node
//! guards against. Its items hold numbers where v1's held strings, yet it
//! keeps state version 1 and has no migration; run on v1's state it would
//! fail to decode every item, so the node must refuse the upgrade by
//! comparing the two versions' declared layouts.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-layout-no-bump")]
pub struct LayoutNoBump {
    items: UnorderedMap<String, LwwRegister<u64>>,
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

    pub fn set_item(&mut self, key: String, value: u64) -> app::Result<()> {
        self.items.insert_value(key, value).map(drop)
    }

    pub fn get_item(&self, key: &str) -> app::Result<Option<u64>> {
        self.items.get_value(key)
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            item_count: self.items.len()?,
        })
    }
}
