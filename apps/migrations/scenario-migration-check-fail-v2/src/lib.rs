//! `com.calimero.scenario-migration-check-fail` at state version 2: as the
//! check-pass fixture, but its migration from v1 is lossy on purpose (it
//! drops the smallest item key) and its check, comparing the frozen v1
//! items with the staged ones, catches that, so the upgrade must abort
//! and leave v1 serving. Calls and JSON are upstream's
//! `scenario-migration-check-fail-v2`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use mero_sdk::migration::add_with_default;
use serde::Serialize;

const NOTES_DEFAULT: &str = "added in v2";

#[app::state(version = 2, package = "com.calimero.scenario-migration-check-fail")]
pub struct MigrationCheck {
    items: UnorderedMap<String, LwwRegister<String>>,
    title: LwwRegister<String>,
    notes: LwwRegister<String>,
}

/// The v1 state, as `scenario-migration-check-fail-v1` declares it.
#[app::state(version = 1)]
pub struct MigrationCheckV1 {
    pub items: UnorderedMap<String, LwwRegister<String>>,
    pub title: LwwRegister<String>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    title: String,
    item_count: u64,
    notes: String,
}

#[app::logic]
impl MigrationCheck {
    #[app::init]
    pub fn init() -> MigrationCheck {
        MigrationCheck {
            items: UnorderedMap::new(),
            title: LwwRegister::new("untitled".into()),
            notes: LwwRegister::new(NOTES_DEFAULT.into()),
        }
    }

    /// Deliberately lossy: removes the smallest key of the carried items.
    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, old: &MigrationCheckV1) -> app::Result<()> {
        if let Some(smallest) = old.items.keys()?.first() {
            self.items.remove(smallest)?;
        }
        add_with_default(&mut self.notes, NOTES_DEFAULT.into())
    }

    /// Every v1 item must have survived: false after the lossy migration
    /// above whenever v1 had items.
    #[app::migration_check(from = 1)]
    pub fn check(&self, old: &MigrationCheckV1) -> bool {
        matches!((old.items.len(), self.items.len()), (Ok(before), Ok(after)) if before == after)
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

    pub fn get_notes(&self) -> app::Result<String> {
        Ok(self.notes.get()?.unwrap_or_default())
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            title: self.title.get()?.unwrap_or_default(),
            item_count: self.items.len()?,
            notes: self.get_notes()?,
        })
    }
}
