//! `com.calimero.scenario-new-enum-variant`, v1 of a code-only pair: v2 appends a variant to `Status`.
//! Calls and JSON are upstream's `scenario-new-enum-variant-v1`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    Active,
    Paused,
}

#[app::state(package = "com.calimero.scenario-new-enum-variant")]
pub struct NewEnumVariant {
    items: UnorderedMap<String, LwwRegister<String>>,
    status: LwwRegister<Status>,
}

/// What `schema_info` reports; `status` is the variant's name.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    status: String,
}

#[app::logic]
impl NewEnumVariant {
    #[app::init]
    pub fn init() -> NewEnumVariant {
        NewEnumVariant {
            items: UnorderedMap::new(),
            status: LwwRegister::new(Status::Active),
        }
    }

    pub fn set_status_active(&mut self) -> app::Result<()> {
        self.status.set(Status::Active)
    }

    pub fn set_status_paused(&mut self) -> app::Result<()> {
        self.status.set(Status::Paused)
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
            status: format!("{:?}", self.status.get()?.unwrap_or_default()),
        })
    }
}
