//! `com.calimero.scenario-field-split` at state version 2: v1's address
//! split into street, city and postcode by the migration from v1, which
//! drops `address`. Calls and JSON are upstream's `scenario-field-split-v2`.

use mero_sdk::app;
use mero_sdk::collections::LwwRegister;
use mero_sdk::migration::drop_field;
use serde::Serialize;

#[app::state(version = 2, package = "com.calimero.scenario-field-split")]
pub struct FieldSplit {
    name: LwwRegister<String>,
    street: LwwRegister<String>,
    city: LwwRegister<String>,
    postcode: LwwRegister<String>,
}

/// The v1 state, as `scenario-field-split-v1` declares it.
#[app::state(version = 1)]
pub struct FieldSplitV1 {
    pub name: LwwRegister<String>,
    pub address: LwwRegister<String>,
}

/// `"street, city, postcode"` as its three parts; any other shape stays
/// whole in the street.
fn split_address(address: String) -> (String, String, String) {
    let parts: Vec<&str> = address.split(", ").collect();
    match parts[..] {
        [street, city, postcode] => (street.into(), city.into(), postcode.into()),
        _ => (address, String::new(), String::new()),
    }
}

/// What `schema_info` reports.
#[derive(Serialize)]
pub struct SchemaInfo {
    schema_version: &'static str,
    name: String,
    street: String,
    city: String,
    postcode: String,
}

#[app::logic]
impl FieldSplit {
    #[app::init]
    pub fn init() -> FieldSplit {
        FieldSplit {
            name: LwwRegister::new(String::new()),
            street: LwwRegister::new(String::new()),
            city: LwwRegister::new(String::new()),
            postcode: LwwRegister::new(String::new()),
        }
    }

    /// `name` carries over.
    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, old: &FieldSplitV1) -> app::Result<()> {
        let (street, city, postcode) = split_address(old.address.get()?.unwrap_or_default());
        self.street.set(street)?;
        self.city.set(city)?;
        self.postcode.set(postcode)?;
        drop_field::<LwwRegister<String>>("address")
    }

    pub fn set_name(&mut self, name: String) -> app::Result<()> {
        self.name.set(name)
    }

    pub fn set_street(&mut self, street: String) -> app::Result<()> {
        self.street.set(street)
    }

    pub fn set_city(&mut self, city: String) -> app::Result<()> {
        self.city.set(city)
    }

    pub fn set_postcode(&mut self, postcode: String) -> app::Result<()> {
        self.postcode.set(postcode)
    }

    pub fn get_street(&self) -> app::Result<String> {
        Ok(self.street.get()?.unwrap_or_default())
    }

    pub fn get_city(&self) -> app::Result<String> {
        Ok(self.city.get()?.unwrap_or_default())
    }

    pub fn get_postcode(&self) -> app::Result<String> {
        Ok(self.postcode.get()?.unwrap_or_default())
    }

    pub fn schema_info(&self) -> app::Result<SchemaInfo> {
        Ok(SchemaInfo {
            schema_version: "2.0.0",
            name: self.name.get()?.unwrap_or_default(),
            street: self.get_street()?,
            city: self.get_city()?,
            postcode: self.get_postcode()?,
        })
    }
}
