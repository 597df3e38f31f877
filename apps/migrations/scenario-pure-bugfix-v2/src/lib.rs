//! `com.calimero.scenario-pure-bugfix`, v2 of the code-only pair: `sum_all_values` fixed, state as in v1.
//! Calls and JSON are upstream's `scenario-pure-bugfix-v2`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-pure-bugfix")]
pub struct PureBugfix {
    items: UnorderedMap<String, LwwRegister<u64>>,
    last_sum: LwwRegister<u64>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    last_sum: u64,
}

#[app::logic]
impl PureBugfix {
    #[app::init]
    pub fn init() -> PureBugfix {
        PureBugfix {
            items: UnorderedMap::new(),
            last_sum: LwwRegister::new(0),
        }
    }

    pub fn add_value(&mut self, key: String, value: u64) -> app::Result<()> {
        self.items.insert_value(key, value).map(drop)
    }

    pub fn get_value(&self, key: &str) -> app::Result<Option<u64>> {
        self.items.get_value(key)
    }

    /// Sums every value, records the sum in `last_sum` and returns it.
    pub fn sum_all_values(&mut self) -> app::Result<u64> {
        let total = self
            .items
            .values()?
            .into_iter()
            .fold(0, |sum: u64, (_, v)| sum.saturating_add(v));
        self.last_sum.set(total)?;
        Ok(total)
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            last_sum: self.last_sum.get()?.unwrap_or_default(),
        })
    }
}
