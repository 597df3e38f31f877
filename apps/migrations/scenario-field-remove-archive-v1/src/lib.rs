//! `com.calimero.scenario-field-remove-archive` v1: a name, a legacy note
//! and a counter; v2 removes the note and keeps its last value in an
//! archive map. Calls and JSON are upstream's
//! `scenario-field-remove-archive-v1`.

use mero_sdk::app;
use mero_sdk::collections::LwwRegister;
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-field-remove-archive")]
pub struct FieldRemoveArchive {
    name: LwwRegister<String>,
    legacy_note: LwwRegister<String>,
    counter: LwwRegister<u64>,
}

/// What `schema_info` reports; `counter` is a number here.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    name: String,
    legacy_note: String,
    counter: u64,
}

#[app::logic]
impl FieldRemoveArchive {
    #[app::init]
    pub fn init() -> FieldRemoveArchive {
        FieldRemoveArchive {
            name: LwwRegister::new("entity".into()),
            legacy_note: LwwRegister::new(String::new()),
            counter: LwwRegister::new(0),
        }
    }

    pub fn set_name(&mut self, name: String) -> app::Result<()> {
        self.name.set(name)
    }

    /// Upstream names the argument `note`.
    pub fn set_legacy_note(&mut self, note: String) -> app::Result<()> {
        self.legacy_note.set(note)
    }

    pub fn get_legacy_note(&self) -> app::Result<String> {
        Ok(self.legacy_note.get()?.unwrap_or_default())
    }

    /// Adds one; returns the new value.
    pub fn bump_counter(&mut self) -> app::Result<u64> {
        let next = self.counter.get()?.unwrap_or_default().saturating_add(1);
        self.counter.set(next)?;
        Ok(next)
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            name: self.name.get()?.unwrap_or_default(),
            legacy_note: self.get_legacy_note()?,
            counter: self.counter.get()?.unwrap_or_default(),
        })
    }
}
