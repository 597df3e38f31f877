//! `com.calimero.scenario-invariant-reshuffle` at state version 2: the
//! counts move to `per_item` and `total`; the migration from v1 copies the
//! per-item counts and recomputes the total from them, ignoring v1's
//! global count, so the invariant holds whatever v1 had; its check makes
//! sure no item was left behind. Calls and JSON are upstream's
//! `scenario-invariant-reshuffle-v2`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use mero_sdk::migration::{count_parity, drop_field};
use serde::Serialize;

#[app::state(version = 2, package = "com.calimero.scenario-invariant-reshuffle")]
pub struct InvariantReshuffle {
    total: LwwRegister<u64>,
    per_item: UnorderedMap<String, LwwRegister<u64>>,
}

/// The v1 state, as `scenario-invariant-reshuffle-v1` declares it.
#[app::state(version = 1)]
pub struct InvariantReshuffleV1 {
    pub global_count: LwwRegister<u64>,
    pub per_item_counts: UnorderedMap<String, LwwRegister<u64>>,
}

/// What `schema_info` reports; `item_keys` in key order.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    total: u64,
    item_keys: Vec<String>,
}

#[app::logic]
impl InvariantReshuffle {
    #[app::init]
    pub fn init() -> InvariantReshuffle {
        InvariantReshuffle {
            total: LwwRegister::new(0),
            per_item: UnorderedMap::new(),
        }
    }

    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, old: &InvariantReshuffleV1) -> app::Result<()> {
        let mut total: u64 = 0;
        for (item, count) in old.per_item_counts.values()? {
            total = total.saturating_add(count);
            self.per_item.insert_value(item, count)?;
        }
        self.total.set(total)?;
        drop_field::<LwwRegister<u64>>("global_count")?;
        drop_field::<UnorderedMap<String, LwwRegister<u64>>>("per_item_counts")
    }

    /// As many items after the migration as before it: a constant-time
    /// check, whatever the size of the state.
    #[app::migration_check(from = 1)]
    pub fn check(&self, old: &InvariantReshuffleV1) -> app::Result<()> {
        count_parity(&old.per_item_counts, &self.per_item)
    }

    /// Counts one more `item`; returns the new total.
    pub fn record(&mut self, item: String) -> app::Result<u64> {
        let count = self.get_item_count(&item)?.unwrap_or_default();
        self.per_item.insert_value(item, count.saturating_add(1))?;
        let total = self.get_total()?.saturating_add(1);
        self.total.set(total)?;
        Ok(total)
    }

    pub fn get_total(&self) -> app::Result<u64> {
        Ok(self.total.get()?.unwrap_or_default())
    }

    pub fn get_item_count(&self, item: &str) -> app::Result<Option<u64>> {
        self.per_item.get_value(item)
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            total: self.get_total()?,
            item_keys: self.per_item.keys()?,
        })
    }
}
