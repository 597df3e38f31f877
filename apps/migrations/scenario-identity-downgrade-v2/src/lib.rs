//! `com.calimero.scenario-identity-downgrade` at state version 2: turns the
//! authored wiki into a plain map anyone may rewrite. Refused at upgrade:
//! it would take every page from its author. Calls and JSON are upstream's
//! `scenario-identity-downgrade-v2`.

use mero_sdk::app;
use mero_sdk::collections::{AuthoredMap, LwwRegister, UnorderedMap};

#[app::state(version = 2, package = "com.calimero.scenario-identity-downgrade")]
pub struct Wiki {
    wiki: UnorderedMap<String, LwwRegister<String>>,
}

/// The v1 state, as `scenario-identity-downgrade-v1` declares it.
#[app::state(version = 1)]
pub struct WikiV1 {
    pub wiki: AuthoredMap<String, String>,
}

#[app::logic]
impl Wiki {
    #[app::init]
    pub fn init() -> Wiki {
        Wiki {
            wiki: UnorderedMap::new(),
        }
    }

    #[app::migrate(from = 1)]
    pub fn migrate_v1_to_v2(&mut self, old: &WikiV1) -> app::Result<()> {
        for (k, v, _) in old.wiki.entries()? {
            self.wiki.insert_value(k, v)?;
        }
        Ok(())
    }

    pub fn put(&mut self, key: String, value: String) -> app::Result<()> {
        self.wiki.insert_value(key, value).map(drop)
    }

    pub fn get(&self, key: String) -> app::Result<Option<String>> {
        self.wiki.get_value(&key)
    }
}
