//! `com.calimero.scenario-crdt-native` at state version 2: v1 plus a
//! replicated vector of tags, which the migration from v1 seeds with the
//! item keys in ascending order. Calls and JSON are upstream's
//! `scenario-crdt-native-v2`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap, Vector};
use serde::Serialize;

#[app::state(version = 2, package = "com.calimero.scenario-crdt-native")]
pub struct CrdtNative {
    items: UnorderedMap<String, LwwRegister<String>>,
    title: LwwRegister<String>,
    tags: Vector<String>,
}

/// The v1 state, as `scenario-crdt-native-v1` declares it.
#[app::state(version = 1)]
pub struct CrdtNativeV1 {
    pub items: UnorderedMap<String, LwwRegister<String>>,
    pub title: LwwRegister<String>,
}

/// What `schema_info` reports.
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
            tags: Vector::new(),
        }
    }

    /// Items and title carry over; `keys()` is in ascending key order, so
    /// every node pushes the same tags in the same order.
    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, old: &CrdtNativeV1) -> app::Result<()> {
        for key in old.items.keys()? {
            self.tags.push(key)?;
        }
        Ok(())
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

    pub fn push_tag(&mut self, tag: String) -> app::Result<()> {
        self.tags.push(tag)
    }

    pub fn get_tag(&self, index: usize) -> app::Result<Option<String>> {
        match u64::try_from(index) {
            Ok(index) => self.tags.get(index),
            Err(_) => Ok(None),
        }
    }

    pub fn tag_count(&self) -> app::Result<u64> {
        self.tags.len()
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            title: self.title.get()?.unwrap_or_default(),
            tag_count: self.tags.len()?,
        })
    }
}
