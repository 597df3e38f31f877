//! Helpers for `#[app::migrate]` and `#[app::migration_check]` bodies.
//!
//! A migration runs in the new version of the app, on a staged copy of the
//! state: the new state's fields open the same collections as before (a
//! field that keeps its name and type keeps its data), and the old state,
//! declared as its own `#[app::state(version = N)]` struct, is read through
//! frozen handles that see the state as it was before the migration. The
//! host compares that declaration with the running app's layout before it
//! runs anything, so a hand-written old state cannot drift from the real
//! one unnoticed.
//!
//! Migrations run with no real clock or randomness and under a fuel budget:
//! every node computes the same state. Iterate in key order (the collections
//! already do) and derive everything from the old state.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::collections::{Crdt, Location, LwwRegister, UnorderedMap, UnorderedSet, Vector};
use crate::{Error, Result, StorageKey};

/// A collection that can be counted.
pub trait Counted {
    /// Its number of entries.
    fn count(&self) -> Result<u64>;
}

impl<K: StorageKey, V: Crdt> Counted for UnorderedMap<K, V> {
    fn count(&self) -> Result<u64> {
        self.len()
    }
}

impl<T: StorageKey> Counted for UnorderedSet<T> {
    fn count(&self) -> Result<u64> {
        self.len()
    }
}

impl<T: Serialize + DeserializeOwned> Counted for Vector<T> {
    fn count(&self) -> Result<u64> {
        self.len()
    }
}

/// A collection that can be emptied.
pub trait Clear: Crdt {
    /// Removes everything in it.
    fn clear_all(&mut self) -> Result<()>;
}

impl<T: Serialize + DeserializeOwned> Clear for LwwRegister<T> {
    fn clear_all(&mut self) -> Result<()> {
        self.clear()
    }
}

impl<K: StorageKey, V: Crdt> Clear for UnorderedMap<K, V> {
    fn clear_all(&mut self) -> Result<()> {
        self.clear()
    }
}

impl<T: StorageKey> Clear for UnorderedSet<T> {
    fn clear_all(&mut self) -> Result<()> {
        self.clear()
    }
}

impl<T: Serialize + DeserializeOwned> Clear for Vector<T> {
    fn clear_all(&mut self) -> Result<()> {
        self.clear()
    }
}

/// The old state's collection at the root under `name`, read-only.
pub fn frozen<T: Crdt>(name: &str) -> T {
    T::__attach(Location::Frozen(name))
}

/// Drops a field the new state no longer has: empties its collection, so
/// the data does not linger under the old name.
pub fn drop_field<T: Clear>(name: &str) -> Result<()> {
    T::__attach(Location::Root(name)).clear_all()
}

/// Sets `register` to `default` if it holds nothing: a field the new
/// version adds.
pub fn add_with_default<T: Serialize + DeserializeOwned>(
    register: &mut LwwRegister<T>,
    default: T,
) -> Result<()> {
    if register.get()?.is_none() {
        register.set(default)?;
    }
    Ok(())
}

/// Moves the register `from` to `to`, converting its value with `convert`,
/// and drops `from`: a rename (`convert` the identity) or a type change.
pub fn convert<A, B>(
    from: &str,
    to: &mut LwwRegister<B>,
    convert: impl FnOnce(A) -> B,
) -> Result<()>
where
    A: Serialize + DeserializeOwned,
    B: Serialize + DeserializeOwned,
{
    let old: LwwRegister<A> = frozen(from);
    if let Some(value) = old.get()? {
        to.set(convert(value))?;
    }
    drop_field::<LwwRegister<A>>(from)
}

/// Moves the register `from` to `to` unchanged.
pub fn rename<T: Serialize + DeserializeOwned>(from: &str, to: &mut LwwRegister<T>) -> Result<()> {
    convert(from, to, |v: T| v)
}

/// Fails unless `old` and `new` hold the same number of entries: a check
/// that a migration dropped nothing.
pub fn count_parity(old: &impl Counted, new: &impl Counted) -> Result<()> {
    let (a, b) = (old.count()?, new.count()?);
    if a != b {
        return Err(Error::msg(format!(
            "count parity failed: the old state has {a} entries, the new one {b}"
        )));
    }
    Ok(())
}

/// Fails with `why` unless `holds`.
pub fn ensure(holds: bool, why: impl Into<String>) -> Result<()> {
    if holds { Ok(()) } else { Err(Error::msg(why)) }
}
