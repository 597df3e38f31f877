//! `com.calimero.scenario-invariant-reshuffle` v1: a global count beside
//! per-item counts (the invariant: it is their sum); v2 renames both and
//! derives the total from the per-item counts. Calls and JSON are
//! upstream's `scenario-invariant-reshuffle-v1`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-invariant-reshuffle")]
pub struct InvariantReshuffle {
    global_count: LwwRegister<u64>,
    per_item_counts: UnorderedMap<String, LwwRegister<u64>>,
}

/// What `schema_info` reports; `item_keys` in key order.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    global_count: u64,
    item_keys: Vec<String>,
}

#[app::logic]
impl InvariantReshuffle {
    #[app::init]
    pub fn init() -> InvariantReshuffle {
        InvariantReshuffle {
            global_count: LwwRegister::new(0),
            per_item_counts: UnorderedMap::new(),
        }
    }

    /// Counts one more `item`, and one more in all.
    pub fn record(&mut self, item: String) -> app::Result<()> {
        let count = self.get_item_count(&item)?.unwrap_or_default();
        self.per_item_counts
            .insert_value(item, count.saturating_add(1))?;
        let global = self.get_global_count()?.saturating_add(1);
        self.global_count.set(global)
    }

    pub fn get_global_count(&self) -> app::Result<u64> {
        Ok(self.global_count.get()?.unwrap_or_default())
    }

    pub fn get_item_count(&self, item: &str) -> app::Result<Option<u64>> {
        self.per_item_counts.get_value(item)
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            global_count: self.get_global_count()?,
            item_keys: self.per_item_counts.keys()?,
        })
    }
}
