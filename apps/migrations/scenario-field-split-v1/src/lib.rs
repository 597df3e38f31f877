//! `com.calimero.scenario-field-split` v1: a name and a one-line address;
//! v2 splits the address into street, city and postcode. Calls and JSON are
//! upstream's `scenario-field-split-v1`.

use mero_sdk::app;
use mero_sdk::collections::LwwRegister;
use serde::Serialize;

#[app::state(package = "com.calimero.scenario-field-split")]
pub struct FieldSplit {
    name: LwwRegister<String>,
    address: LwwRegister<String>,
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    name: String,
    address: String,
}

#[app::logic]
impl FieldSplit {
    #[app::init]
    pub fn init() -> FieldSplit {
        FieldSplit {
            name: LwwRegister::new("customer".into()),
            address: LwwRegister::new(String::new()),
        }
    }

    pub fn set_name(&mut self, name: String) -> app::Result<()> {
        self.name.set(name)
    }

    pub fn set_address(&mut self, address: String) -> app::Result<()> {
        self.address.set(address)
    }

    pub fn get_address(&self) -> app::Result<String> {
        Ok(self.address.get()?.unwrap_or_default())
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "1.0.0",
            name: self.name.get()?.unwrap_or_default(),
            address: self.get_address()?,
        })
    }
}
