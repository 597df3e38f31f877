//! `com.calimero.scenario-field-remove-archive` at state version 2: v1
//! without `legacy_note`; the migration from v1 archives its value under
//! `"latest"` (even an empty one) and drops the field. Calls and JSON are
//! upstream's `scenario-field-remove-archive-v2`.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use mero_sdk::migration::drop_field;
use serde::Serialize;

/// The archive key of the note v1 held.
const LATEST: &str = "latest";

#[app::state(version = 2, package = "com.calimero.scenario-field-remove-archive")]
pub struct FieldRemoveArchive {
    name: LwwRegister<String>,
    counter: LwwRegister<u64>,
    archived_legacy: UnorderedMap<String, LwwRegister<String>>,
}

/// The v1 state, as `scenario-field-remove-archive-v1` declares it.
#[app::state(version = 1)]
pub struct FieldRemoveArchiveV1 {
    pub name: LwwRegister<String>,
    pub legacy_note: LwwRegister<String>,
    pub counter: LwwRegister<u64>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    name: String,
    counter: u64,
    archived_latest: Option<String>,
}

#[app::logic]
impl FieldRemoveArchive {
    #[app::init]
    pub fn init() -> FieldRemoveArchive {
        FieldRemoveArchive {
            name: LwwRegister::new("entity".into()),
            counter: LwwRegister::new(0),
            archived_legacy: UnorderedMap::new(),
        }
    }

    /// `name` and `counter` carry over.
    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, old: &FieldRemoveArchiveV1) -> app::Result<()> {
        let note = old.legacy_note.get()?.unwrap_or_default();
        self.archived_legacy.insert_value(LATEST.into(), note)?;
        drop_field::<LwwRegister<String>>("legacy_note")
    }

    pub fn set_name(&mut self, name: String) -> app::Result<()> {
        self.name.set(name)
    }

    /// Adds one; returns the new value.
    pub fn bump_counter(&mut self) -> app::Result<u64> {
        let next = self.counter.get()?.unwrap_or_default().saturating_add(1);
        self.counter.set(next)?;
        Ok(next)
    }

    pub fn get_archived(&self, key: String) -> app::Result<Option<String>> {
        self.archived_legacy.get_value(&key)
    }

    pub fn archived_keys(&self) -> app::Result<Vec<String>> {
        self.archived_legacy.keys()
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            name: self.name.get()?.unwrap_or_default(),
            counter: self.counter.get()?.unwrap_or_default(),
            archived_latest: self.archived_legacy.get_value(LATEST)?,
        })
    }
}
