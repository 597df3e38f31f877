//! `com.calimero.scenario-crdt-native` v1: items and a title. v2 adds a
//! vector of tags seeded from the item keys. Calls and JSON are upstream's
//! `scenario-crdt-native-v1`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-crdt-native")]
pub struct CrdtNative {
    items: UnorderedMap<String, LwwRegister<String>>,
    title: LwwRegister<String>,
}

/// What `schema_info` reports; v1 has no tags, so `tag_count` is 0.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    title: String,
    tag_count: u64,
}

#[app::logic]
impl CrdtNative {
    #[app::init]
    pub fn init() -> CrdtNative {
        CrdtNative {
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

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            title: self.title.get()?.unwrap_or_default(),
            tag_count: 0,
        })
    }
}
