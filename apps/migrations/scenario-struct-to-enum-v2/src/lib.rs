//! `com.calimero.scenario-struct-to-enum` at state version 2: the status
//! becomes an enum under the same field name; the migration from v1
//! converts each stored struct. Calls and JSON are upstream's
//! `scenario-struct-to-enum-v2`.

use mero_sdk::app;
use mero_sdk::collections::LwwRegister;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    Active,
    Inactive(String),
}

#[app::state(version = 2, package = "com.calimero.scenario-struct-to-enum")]
pub struct StructToEnum {
    name: LwwRegister<String>,
    status: LwwRegister<Status>,
}

/// The v1 state as `scenario-struct-to-enum-v1` declares it, in a module of
/// its own so that its `Status` is spelled as v1 spells it.
pub mod v1 {
    use mero_sdk::app;
    use mero_sdk::collections::LwwRegister;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Status {
        pub active: bool,
        pub reason: Option<String>,
    }

    impl Status {
        /// Active, with no reason: v1's initial status.
        pub const ACTIVE: Status = Status {
            active: true,
            reason: None,
        };
    }

    #[app::state(version = 1)]
    pub struct StructToEnumV1 {
        pub name: LwwRegister<String>,
        pub status: LwwRegister<Status>,
    }
}

/// An active v1 status drops its reason; an inactive one keeps it (empty if
/// it had none).
fn legacy_status_to_enum(old: v1::Status) -> Status {
    if old.active {
        Status::Active
    } else {
        Status::Inactive(old.reason.unwrap_or_default())
    }
}

/// What `schema_info` reports; `status_kind` is `"active"` or `"inactive"`.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    name: String,
    status_kind: &'static str,
    status_reason: Option<String>,
}

#[app::logic]
impl StructToEnum {
    #[app::init]
    pub fn init() -> StructToEnum {
        StructToEnum {
            name: LwwRegister::new("entity".into()),
            status: LwwRegister::new(Status::Active),
        }
    }

    /// `name` carries over; `status` is rewritten under the same root.
    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, old: &v1::StructToEnumV1) -> app::Result<()> {
        let status = old.status.get()?.unwrap_or(v1::Status::ACTIVE);
        self.status.set(legacy_status_to_enum(status))
    }

    pub fn set_name(&mut self, name: String) -> app::Result<()> {
        self.name.set(name)
    }

    pub fn set_status_active(&mut self) -> app::Result<()> {
        self.status.set(Status::Active)
    }

    pub fn set_status_inactive(&mut self, reason: String) -> app::Result<()> {
        self.status.set(Status::Inactive(reason))
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        let (status_kind, status_reason) = match self.status.get()?.unwrap_or_default() {
            Status::Active => ("active", None),
            Status::Inactive(reason) => ("inactive", Some(reason)),
        };
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            name: self.name.get()?.unwrap_or_default(),
            status_kind,
            status_reason,
        })
    }
}
