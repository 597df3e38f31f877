//! `com.calimero.scenario-struct-to-enum` v1: an entity whose status is a
//! struct (`active` and an optional reason); v2 makes it an enum. Calls and
//! JSON are upstream's `scenario-struct-to-enum-v1`.

use mero_sdk::app;
use mero_sdk::collections::LwwRegister;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Status {
    pub active: bool,
    pub reason: Option<String>,
}

impl Status {
    /// Active, with no reason: the initial status.
    pub const ACTIVE: Status = Status {
        active: true,
        reason: None,
    };
}

#[app::state(package = "com.calimero.scenario-struct-to-enum")]
pub struct StructToEnum {
    name: LwwRegister<String>,
    status: LwwRegister<Status>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    name: String,
    status_active: bool,
    status_reason: Option<String>,
}

#[app::logic]
impl StructToEnum {
    #[app::init]
    pub fn init() -> StructToEnum {
        StructToEnum {
            name: LwwRegister::new("entity".into()),
            status: LwwRegister::new(Status::ACTIVE),
        }
    }

    pub fn set_name(&mut self, name: String) -> app::Result<()> {
        self.name.set(name)
    }

    pub fn set_status_active(&mut self) -> app::Result<()> {
        self.status.set(Status::ACTIVE)
    }

    pub fn set_status_inactive(&mut self, reason: String) -> app::Result<()> {
        self.status.set(Status {
            active: false,
            reason: Some(reason),
        })
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        let status = self.status.get()?.unwrap_or(Status::ACTIVE);
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            name: self.name.get()?.unwrap_or_default(),
            status_active: status.active,
            status_reason: status.reason,
        })
    }
}
