//! A key-value store with the interface of the upstream `kv-store` app, so
//! tools and workflows written for it work unchanged.

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, UnorderedMap};
use serde::Serialize;

#[app::state(emits = for<'a> Event<'a>)]
pub struct KvStore {
    items: UnorderedMap<String, LwwRegister<String>>,
}

#[app::event]
pub enum Event<'a> {
    Inserted { key: &'a str, value: &'a str },
    Updated { key: &'a str, value: &'a str },
    Removed { key: &'a str },
    Cleared,
}

/// The error of `get_result`, as upstream shapes it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", content = "data")]
pub enum Error<'a> {
    NotFound(&'a str),
    Storage(String),
}

#[app::logic]
impl KvStore {
    #[app::init]
    pub fn init() -> KvStore {
        KvStore {
            items: UnorderedMap::new(),
        }
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: String, value: String) -> app::Result<()> {
        match self.items.insert_value(key.clone(), value.clone())? {
            Some(_) => app::emit!(Event::Updated {
                key: &key,
                value: &value
            }),
            None => app::emit!(Event::Inserted {
                key: &key,
                value: &value
            }),
        }
        Ok(())
    }

    /// Sets `key` to `value` only if it exists; returns whether it did.
    pub fn update_if_exists(&mut self, key: String, value: String) -> app::Result<bool> {
        if !self.items.contains(&key)? {
            return Ok(false);
        }
        self.items.insert_value(key.clone(), value.clone())?;
        app::emit!(Event::Updated {
            key: &key,
            value: &value
        });
        Ok(true)
    }

    /// The value of `key`, inserting `value` first if absent.
    pub fn get_or_insert(&mut self, key: String, value: String) -> app::Result<String> {
        if let Some(existing) = self.items.get_value(&key)? {
            return Ok(existing);
        }
        self.items.insert_value(key.clone(), value.clone())?;
        app::emit!(Event::Inserted {
            key: &key,
            value: &value
        });
        Ok(value)
    }

    /// Every key with its value.
    pub fn entries(&self) -> app::Result<std::collections::BTreeMap<String, String>> {
        Ok(self.items.values()?.into_iter().collect())
    }

    /// Number of keys.
    #[allow(
        clippy::len_without_is_empty,
        reason = "upstream kv-store's interface has len only"
    )]
    pub fn len(&self) -> app::Result<u64> {
        self.items.len()
    }

    /// The value of `key`, or null.
    pub fn get(&self, key: &str) -> app::Result<Option<String>> {
        self.items.get_value(key)
    }

    /// The value of `key`; an error if absent.
    pub fn get_unchecked(&self, key: &str) -> app::Result<String> {
        match self.items.get_value(key)? {
            Some(v) => Ok(v),
            None => app::bail!("key not found: {key}"),
        }
    }

    /// The value of `key`; `{"kind":"NotFound","data":key}` if absent.
    pub fn get_result<'a>(&self, key: &'a str) -> Result<String, Error<'a>> {
        match self.items.get_value(key) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(Error::NotFound(key)),
            Err(e) => Err(Error::Storage(e.to_string())),
        }
    }

    /// Removes `key`; returns its old value, or null.
    pub fn remove(&mut self, key: &str) -> app::Result<Option<String>> {
        let old = self.items.get_value(key)?;
        if old.is_some() {
            self.items.remove(key)?;
            app::emit!(Event::Removed { key });
        }
        Ok(old)
    }

    /// Removes every key.
    pub fn clear(&mut self) -> app::Result<()> {
        self.items.clear()?;
        app::emit!(Event::Cleared);
        Ok(())
    }
}
