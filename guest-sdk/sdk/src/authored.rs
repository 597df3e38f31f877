//! Authored collections: entries that belong to the member that created
//! them.
//!
//! Only an entry's owner may rewrite or remove it. The node enforces it: a
//! write by another member fails with [`Error::is_not_owner`] and every node
//! refuses a received change to an entry not signed by its owner. Of two
//! members creating one key at once, the earlier creation owns it
//! everywhere; a removed key stays its owner's.
//!
//! Each write is stamped with the app's state version. A migration cannot
//! rewrite authored entries (it runs as no member): they carry over as
//! they are, and a value type may still change across versions. Declare the
//! type the previous state version stored as the third parameter
//! (`AuthoredMap<K, NoteV2, NoteV1>` with `NoteV2: From<NoteV1>`): entries
//! stamped with an older version decode as it and convert. Each owner's
//! node rewrites the owner's older entries right after the upgrade (the
//! `migrate_my_entries` method every app with an authored field has;
//! `count_my_pending` counts what is left).

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::calimero::context::storage::{self as host, AuthoredValue};
use crate::collections::{Crdt, Location};
use crate::{Error, Result, StorageKey};

const PAGE: u32 = 512;

/// The running app's state version, set before every export runs.
static RUNNING: AtomicU32 = AtomicU32::new(0);

#[doc(hidden)]
pub fn __set_running_state_version(version: u32) {
    RUNNING.store(version, Ordering::Relaxed);
}

fn running() -> u32 {
    RUNNING.load(Ordering::Relaxed)
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

/// `stored` as a `V`: directly if written under the running state version
/// (or a newer one), else as the previous version's `Old`, converted.
fn decode<V: DeserializeOwned + From<Old>, Old: DeserializeOwned>(
    stored: &AuthoredValue,
) -> Result<V> {
    let bad = |e: serde_json::Error| Error::msg(format!("stored value does not decode: {e}"));
    if stored.version >= running() {
        serde_json::from_slice(&stored.value).map_err(bad)
    } else {
        serde_json::from_slice::<Old>(&stored.value)
            .map(V::from)
            .map_err(bad)
    }
}

fn me() -> Vec<u8> {
    crate::env::executor_id().to_vec()
}

fn is_pending(stored: &AuthoredValue, me: &[u8]) -> bool {
    stored.owner == me && stored.version < running()
}

/// Who owns an entry: a member's 32-byte public key.
pub type Owner = [u8; 32];

fn owner(stored: &AuthoredValue) -> Owner {
    let mut o = [0u8; 32];
    let n = stored.owner.len().min(32);
    o[..n].copy_from_slice(&stored.owner[..n]);
    o
}

// ------------------------------------------------------------ authored map

fn open_map(loc: Location<'_>) -> host::AuthoredMap {
    match loc {
        Location::Root(name) => host::AuthoredMap::open(name),
        Location::Frozen(name) => host::AuthoredMap::open_frozen(name),
        Location::In(map, key) => map.authored_map_at(key),
    }
}

/// A map from `K` to `V` whose entries only their creator may change.
/// `Old` is the value type the previous state version stored (`V` if it did
/// not change).
pub struct AuthoredMap<K, V, Old = V> {
    state: MapState,
    _t: PhantomData<(K, V, Old)>,
}

enum MapState {
    Detached(Vec<(Vec<u8>, Vec<u8>)>),
    Attached(host::AuthoredMap),
}

impl<K, V, Old> Default for AuthoredMap<K, V, Old> {
    fn default() -> Self {
        AuthoredMap {
            state: MapState::Detached(Vec::new()),
            _t: PhantomData,
        }
    }
}

impl<K, V, Old> AuthoredMap<K, V, Old>
where
    K: StorageKey,
    V: Serialize + DeserializeOwned + From<Old>,
    Old: DeserializeOwned,
{
    /// An empty detached map: what `init` inserts into it is owned by the
    /// member creating the context.
    pub fn new() -> Self {
        Self::default()
    }

    fn attached(&self) -> Result<&host::AuthoredMap> {
        match &self.state {
            MapState::Attached(m) => Ok(m),
            MapState::Detached(_) => Err(Error::msg(
                "this collection is not stored yet: only insertions are possible before it is part of the state",
            )),
        }
    }

    /// Creates the entry at `key`, owned by the calling member, or rewrites
    /// it if that member owns it. Returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Result<Option<V>> {
        let k = key.to_key();
        let bytes = encode(&value)?;
        match &mut self.state {
            MapState::Attached(m) => {
                // The previous value as this version reads it.
                let before = m.get(&k)?;
                m.insert(&k, &bytes)?;
                before.map(|b| decode::<V, Old>(&b)).transpose()
            }
            MapState::Detached(items) => {
                items.retain(|(ik, _)| *ik != k);
                items.push((k, bytes));
                Ok(None)
            }
        }
    }

    /// The value at `key`.
    pub fn get<Q: StorageKey + ?Sized>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        match self.attached()?.get(&key.to_key())? {
            Some(stored) => decode::<V, Old>(&stored).map(Some),
            None => Ok(None),
        }
    }

    /// Whether `key` is present.
    pub fn contains<Q: StorageKey + ?Sized>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        Ok(self.attached()?.get(&key.to_key())?.is_some())
    }

    /// The member that owns the entry at `key`, if present.
    pub fn owner_of<Q: StorageKey + ?Sized>(&self, key: &Q) -> Result<Option<Owner>>
    where
        K: Borrow<Q>,
    {
        Ok(self.attached()?.get(&key.to_key())?.map(|s| owner(&s)))
    }

    /// Whether the calling member owns the entry at `key`.
    pub fn owned_by_me<Q: StorageKey + ?Sized>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        Ok(self.owner_of(key)?.is_some_and(|o| o[..] == me()[..]))
    }

    /// The state version the entry at `key` was last written under.
    pub fn entry_schema_version<Q: StorageKey + ?Sized>(&self, key: &Q) -> Result<Option<u32>>
    where
        K: Borrow<Q>,
    {
        Ok(self.attached()?.get(&key.to_key())?.map(|s| s.version))
    }

    /// Removes the entry at `key` if the calling member owns it. Returns
    /// whether it was present.
    pub fn remove<Q: StorageKey + ?Sized>(&mut self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        Ok(self.attached()?.remove(&key.to_key())?)
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64> {
        match &self.state {
            MapState::Attached(m) => Ok(m.len()?),
            MapState::Detached(items) => Ok(items.len() as u64),
        }
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    fn each(&self, mut f: impl FnMut(Vec<u8>, AuthoredValue) -> Result<()>) -> Result<()> {
        let m = self.attached()?;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = m.entries(after.as_deref(), PAGE)?;
            let full = page.len() == PAGE as usize;
            for (k, v) in page {
                after = Some(k.clone());
                f(k, v)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Every entry with its owner, in key order.
    pub fn entries(&self) -> Result<Vec<(K, V, Owner)>> {
        let mut out = Vec::new();
        self.each(|k, v| {
            let key = K::from_key(&k)
                .ok_or_else(|| Error::msg("stored key does not decode as the map's key type"))?;
            out.push((key, decode::<V, Old>(&v)?, owner(&v)));
            Ok(())
        })?;
        Ok(out)
    }
}

impl<K, V, Old> Crdt for AuthoredMap<K, V, Old>
where
    K: StorageKey,
    V: Serialize + DeserializeOwned + From<Old>,
    Old: DeserializeOwned,
{
    const AUTHORED: bool = true;

    fn __attach(loc: Location<'_>) -> Self {
        AuthoredMap {
            state: MapState::Attached(open_map(loc)),
            _t: PhantomData,
        }
    }

    fn __store(self, loc: Location<'_>) -> Result<()> {
        let MapState::Detached(items) = self.state else {
            return Ok(());
        };
        let handle = open_map(loc);
        for (k, v) in items {
            handle.insert(&k, &v)?;
        }
        Ok(())
    }

    fn __pending_mine(&self) -> Result<u64> {
        let me = me();
        let mut n = 0;
        self.each(|_, v| {
            n += u64::from(is_pending(&v, &me));
            Ok(())
        })?;
        Ok(n)
    }

    fn __rewrite_mine(&mut self) -> Result<u64> {
        let me = me();
        let mut pending = Vec::new();
        self.each(|k, v| {
            if is_pending(&v, &me) {
                pending.push((k, v));
            }
            Ok(())
        })?;
        let m = self.attached()?;
        let mut done = 0;
        for (k, v) in pending {
            // The value as this version reads it, stored as this version
            // writes it: the new stamp marks it rewritten.
            let value: V = decode::<V, Old>(&v)?;
            m.insert(&k, &encode(&value)?)?;
            done += 1;
        }
        Ok(done)
    }
}

// --------------------------------------------------------- authored vector

/// A list of `V` in push order whose elements only their pusher may change.
/// `Old` is as for [`AuthoredMap`].
pub struct AuthoredVector<V, Old = V> {
    state: VectorState,
    _t: PhantomData<(V, Old)>,
}

enum VectorState {
    Detached(Vec<Vec<u8>>),
    Attached(Rc<host::AuthoredVector>),
}

impl<V, Old> Default for AuthoredVector<V, Old> {
    fn default() -> Self {
        AuthoredVector {
            state: VectorState::Detached(Vec::new()),
            _t: PhantomData,
        }
    }
}

impl<V, Old> AuthoredVector<V, Old>
where
    V: Serialize + DeserializeOwned + From<Old>,
    Old: DeserializeOwned,
{
    /// An empty detached vector.
    pub fn new() -> Self {
        Self::default()
    }

    fn attached(&self) -> Result<&host::AuthoredVector> {
        match &self.state {
            VectorState::Attached(v) => Ok(v),
            VectorState::Detached(_) => Err(Error::msg(
                "this collection is not stored yet: only pushes are possible before it is part of the state",
            )),
        }
    }

    /// Appends `value`, owned by the calling member.
    pub fn push(&mut self, value: V) -> Result<()> {
        let bytes = encode(&value)?;
        match &mut self.state {
            VectorState::Attached(v) => Ok(v.push(&bytes)?),
            VectorState::Detached(items) => {
                items.push(bytes);
                Ok(())
            }
        }
    }

    /// The element at `index`.
    pub fn get(&self, index: u64) -> Result<Option<V>> {
        match self.attached()?.get(index)? {
            Some(s) => decode::<V, Old>(&s).map(Some),
            None => Ok(None),
        }
    }

    /// The member that owns the element at `index`.
    pub fn owner_of(&self, index: u64) -> Result<Option<Owner>> {
        Ok(self.attached()?.get(index)?.map(|s| owner(&s)))
    }

    /// The state version the element at `index` was last written under.
    pub fn entry_schema_version(&self, index: u64) -> Result<Option<u32>> {
        Ok(self.attached()?.get(index)?.map(|s| s.version))
    }

    /// Replaces the element at `index` if the calling member owns it;
    /// returns the old one.
    pub fn set(&mut self, index: u64, value: V) -> Result<V> {
        let v = self.attached()?;
        let before = v.get(index)?;
        v.set(index, &encode(&value)?)?;
        match before {
            Some(b) => decode::<V, Old>(&b),
            None => Err(Error::msg("the element vanished while it was set")),
        }
    }

    /// Removes the element at `index` if the calling member owns it;
    /// returns it.
    pub fn remove(&mut self, index: u64) -> Result<V> {
        let v = self.attached()?;
        let before = v.get(index)?;
        v.remove(index)?;
        match before {
            Some(b) => decode::<V, Old>(&b),
            None => Err(Error::msg("the element vanished while it was removed")),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> Result<u64> {
        match &self.state {
            VectorState::Attached(v) => Ok(v.len()?),
            VectorState::Detached(items) => Ok(items.len() as u64),
        }
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    fn stored(&self) -> Result<Vec<AuthoredValue>> {
        let v = self.attached()?;
        let mut out = Vec::new();
        loop {
            let page = v.range(out.len() as u64, PAGE)?;
            let full = page.len() == PAGE as usize;
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// Every element with its owner, in order.
    pub fn iter(&self) -> Result<Vec<(V, Owner)>> {
        self.stored()?
            .iter()
            .map(|s| Ok((decode::<V, Old>(s)?, owner(s))))
            .collect()
    }
}

impl<V, Old> Crdt for AuthoredVector<V, Old>
where
    V: Serialize + DeserializeOwned + From<Old>,
    Old: DeserializeOwned,
{
    const AUTHORED: bool = true;

    fn __attach(loc: Location<'_>) -> Self {
        let handle = match loc {
            Location::Root(name) => host::AuthoredVector::open(name),
            Location::Frozen(name) => host::AuthoredVector::open_frozen(name),
            Location::In(map, key) => map.authored_vector_at(key),
        };
        AuthoredVector {
            state: VectorState::Attached(Rc::new(handle)),
            _t: PhantomData,
        }
    }

    fn __store(self, loc: Location<'_>) -> Result<()> {
        let VectorState::Detached(items) = self.state else {
            return Ok(());
        };
        let VectorState::Attached(v) = Self::__attach(loc).state else {
            return Ok(());
        };
        for b in items {
            v.push(&b)?;
        }
        Ok(())
    }

    fn __pending_mine(&self) -> Result<u64> {
        let me = me();
        Ok(self.stored()?.iter().filter(|s| is_pending(s, &me)).count() as u64)
    }

    fn __rewrite_mine(&mut self) -> Result<u64> {
        let me = me();
        let stored = self.stored()?;
        let v = self.attached()?;
        let mut done = 0;
        for (i, s) in stored.iter().enumerate() {
            if is_pending(s, &me) {
                let value: V = decode::<V, Old>(s)?;
                v.set(i as u64, &encode(&value)?)?;
                done += 1;
            }
        }
        Ok(done)
    }
}
