//! `com.calimero.scenario-identity-downgrade` at state version 1: a wiki
//! whose pages belong to their authors. Calls and JSON are upstream's
//! `scenario-identity-downgrade-v1`.

use mero_sdk::app;
use mero_sdk::collections::AuthoredMap;

#[app::state(version = 1, package = "com.calimero.scenario-identity-downgrade")]
pub struct Wiki {
    wiki: AuthoredMap<String, String>,
}

#[app::logic]
impl Wiki {
    #[app::init]
    pub fn init() -> Wiki {
        Wiki {
            wiki: AuthoredMap::new(),
        }
    }

    pub fn put(&mut self, key: String, value: String) -> app::Result<()> {
        self.wiki.insert(key, value).map(drop)
    }

    pub fn get(&self, key: String) -> app::Result<Option<String>> {
        self.wiki.get(&key)
    }

    pub fn owner_of(&self, key: String) -> app::Result<Option<String>> {
        Ok(self
            .wiki
            .owner_of(&key)?
            .map(|pk| bs58::encode(pk).into_string()))
    }
}
