//! `com.calimero.scenario-authored-migrate-ux` at state version 2: a note
//! becomes a record (`Note`) where v1 stored its text. A migration cannot
//! rewrite authored entries, so the notes carry over as v1 wrote them and
//! read as `Note` through `From<String>`; each owner's node rewrites its
//! owner's notes after the upgrade (`migrate_my_entries`, which
//! `count_my_pending` counts down). Calls and JSON are upstream's
//! `scenario-authored-migrate-ux-v2`; the value type change is ours
//! (upstream's path is carry-through only).

use mero_sdk::app;
use mero_sdk::collections::{AuthoredMap, LwwRegister};
use mero_sdk::migration::add_with_default;
use serde::{Deserialize, Serialize};

/// A note as v2 stores it.
#[derive(Serialize, Deserialize)]
pub struct Note {
    text: String,
    edits: u32,
}

impl From<String> for Note {
    /// A v1 note: its text, never edited under v2.
    fn from(text: String) -> Self {
        Note { text, edits: 0 }
    }
}

#[app::state(version = 2, package = "com.calimero.scenario-authored-migrate-ux")]
pub struct MigrateUx {
    notes: AuthoredMap<String, Note, String>,
    migration_note: LwwRegister<String>,
}

/// The v1 state, as `scenario-authored-migrate-ux-v1` declares it.
#[app::state(version = 1)]
pub struct MigrateUxV1 {
    pub notes: AuthoredMap<String, String>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    note_count: u64,
    migration_note: String,
}

#[app::logic]
impl MigrateUx {
    #[app::init]
    pub fn init() -> MigrateUx {
        MigrateUx {
            notes: AuthoredMap::new(),
            migration_note: LwwRegister::new(String::new()),
        }
    }

    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, _old: &MigrateUxV1) -> app::Result<()> {
        add_with_default(
            &mut self.migration_note,
            "notes are records from 2.0.0".into(),
        )
    }

    pub fn set_note(&mut self, key: String, text: String) -> app::Result<()> {
        let edits = self.notes.get(&key)?.map_or(0, |n| n.edits + 1);
        self.notes.insert(key, Note { text, edits }).map(drop)
    }

    pub fn my_note(&self, key: String) -> app::Result<Option<String>> {
        Ok(self.notes.get(&key)?.map(|n| n.text))
    }

    pub fn note_edits(&self, key: String) -> app::Result<Option<u32>> {
        Ok(self.notes.get(&key)?.map(|n| n.edits))
    }

    pub fn owner_of(&self, key: String) -> app::Result<Option<String>> {
        Ok(self
            .notes
            .owner_of(&key)?
            .map(|pk| bs58::encode(pk).into_string()))
    }

    pub fn note_count(&self) -> app::Result<u64> {
        self.notes.len()
    }

    pub fn note_schema_version(&self, key: String) -> app::Result<Option<u32>> {
        self.notes.entry_schema_version(&key)
    }

    pub fn migration_note(&self) -> app::Result<String> {
        Ok(self.migration_note.get()?.unwrap_or_default())
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            note_count: self.notes.len()?,
            migration_note: self.migration_note()?,
        })
    }
}
