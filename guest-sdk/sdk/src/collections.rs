//! Typed CRDT collections backed by the node.
//!
//! A collection is either *detached* (made with `new()`, holding its contents
//! in memory until it is stored, e.g. returned from `#[app::init]` or inserted
//! into a map) or *attached* (a handle to state the node holds). Reads and
//! writes on attached collections are host calls; nothing is cached across
//! calls.
//!
//! How concurrent writes from different members merge:
//! - [`LwwRegister`]: the latest write wins (hybrid logical clock, then author).
//! - [`UnorderedMap`] keys and [`UnorderedSet`] elements: add-wins; an insert
//!   concurrent with a remove survives. Removing a map key clears the value
//!   under it as this member saw it.
//! - [`Vector`]: elements keep the order of their pushes; concurrent pushes
//!   all survive; `set` on an element is last-writer-wins.
//! - [`Counter`]: every member's increments and decrements count.
//! - [`AuthoredMap`] and [`AuthoredVector`]: entries only the member that
//!   created them may change (see [`crate::authored`]).
//!
//! Map values are themselves collections, so maps nest:
//! `UnorderedMap<String, UnorderedMap<String, LwwRegister<u64>>>`. To store a
//! plain value in a map, wrap it in an [`LwwRegister`].

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::calimero::context::storage as host;
use crate::{Error, Result, StorageKey};

pub use crate::authored::{AuthoredMap, AuthoredVector};

const PAGE: u32 = 512;

/// Where a collection lives.
#[doc(hidden)]
pub enum Location<'a> {
    /// At the root of the state under a name.
    Root(&'a str),
    /// As the value at a key of a map.
    In(&'a Rc<host::Map>, &'a [u8]),
    /// At the root under a name, in the state as it was before the running
    /// migration: read-only.
    Frozen(&'a str),
}

/// A collection that can be a field of the app state or a map value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a CRDT collection",
    label = "state fields and map values must be SDK collections",
    note = "use UnorderedMap, UnorderedSet, Vector, Counter or LwwRegister<T>; wrap plain values in LwwRegister"
)]
pub trait Crdt: Sized {
    /// A handle to the collection at `loc`.
    #[doc(hidden)]
    fn __attach(loc: Location<'_>) -> Self;

    /// Writes this (detached) collection's contents to `loc`.
    #[doc(hidden)]
    fn __store(self, loc: Location<'_>) -> Result<()>;

    /// The value at `key` of `map`, if the key is present.
    #[doc(hidden)]
    fn __get_in(map: &Rc<host::Map>, key: &[u8]) -> Result<Option<Self>> {
        Ok(if map.contains(key)? {
            Some(Self::__attach(Location::In(map, key)))
        } else {
            None
        })
    }

    /// Whether this is an authored collection (see [`crate::authored`]).
    #[doc(hidden)]
    const AUTHORED: bool = false;

    /// How many of the calling member's authored entries in this
    /// collection were written under an older state version.
    #[doc(hidden)]
    fn __pending_mine(&self) -> Result<u64> {
        Ok(0)
    }

    /// Rewrites those entries under the running state version; returns
    /// how many.
    #[doc(hidden)]
    fn __rewrite_mine(&mut self) -> Result<u64> {
        Ok(0)
    }

    /// Makes this the value at `key` of `map`, replacing what was there.
    #[doc(hidden)]
    fn __put_in(self, map: &Rc<host::Map>, key: &[u8]) -> Result<()> {
        // A replaced nested collection starts empty.
        map.remove(key)?;
        map.insert_key(key)?;
        self.__store(Location::In(map, key))
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::msg(format!("stored value does not decode: {e}")))
}

fn decode_key<K: StorageKey>(bytes: &[u8]) -> Result<K> {
    K::from_key(bytes).ok_or_else(|| Error::msg("stored key does not decode as the map's key type"))
}

fn detached_error() -> Error {
    Error::msg(
        "this collection is not stored yet: only insertions are possible before it is part of the state",
    )
}

// ---------------------------------------------------------------- register

/// A last-writer-wins register holding one value of type `T`.
pub struct LwwRegister<T> {
    state: RegisterState,
    _t: PhantomData<T>,
}

enum RegisterState {
    Detached(Option<std::result::Result<Vec<u8>, String>>),
    Handle(host::Register),
    /// Read through its map: the value came with the read, writes go back
    /// through the map.
    InMap {
        map: Rc<host::Map>,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    },
}

impl<T: Serialize + DeserializeOwned> LwwRegister<T> {
    /// A detached register holding `value`.
    pub fn new(value: T) -> Self {
        let bytes = serde_json::to_vec(&value).map_err(|e| e.to_string());
        LwwRegister {
            state: RegisterState::Detached(Some(bytes)),
            _t: PhantomData,
        }
    }

    fn raw(&self) -> Result<Option<Vec<u8>>> {
        match &self.state {
            RegisterState::Detached(None) => Ok(None),
            RegisterState::Detached(Some(Ok(b))) => Ok(Some(b.clone())),
            RegisterState::Detached(Some(Err(e))) => Err(Error::msg(e.clone())),
            RegisterState::Handle(r) => Ok(r.get()?),
            RegisterState::InMap { value, .. } => Ok(value.clone()),
        }
    }

    /// The value, or `None` if never set or cleared.
    pub fn get(&self) -> Result<Option<T>> {
        self.raw()?.map(|b| decode(&b)).transpose()
    }

    /// Replaces the value.
    pub fn set(&mut self, value: T) -> Result<()> {
        let bytes = encode(&value)?;
        match &mut self.state {
            RegisterState::Detached(v) => *v = Some(Ok(bytes)),
            RegisterState::Handle(r) => r.set(&bytes)?,
            RegisterState::InMap { map, key, value } => {
                map.put_register(key, &bytes)?;
                *value = Some(bytes);
            }
        }
        Ok(())
    }

    /// Removes the value.
    pub fn clear(&mut self) -> Result<()> {
        match &mut self.state {
            RegisterState::Detached(v) => *v = None,
            RegisterState::Handle(r) => r.clear()?,
            RegisterState::InMap { map, key, value } => {
                map.register_at(key).clear()?;
                *value = None;
            }
        }
        Ok(())
    }
}

impl<T: Serialize + DeserializeOwned> From<T> for LwwRegister<T> {
    fn from(value: T) -> Self {
        LwwRegister::new(value)
    }
}

impl<T: Serialize + DeserializeOwned> Crdt for LwwRegister<T> {
    fn __attach(loc: Location<'_>) -> Self {
        let handle = match loc {
            Location::Root(name) => host::Register::open(name),
            Location::Frozen(name) => host::Register::open_frozen(name),
            Location::In(map, key) => map.register_at(key),
        };
        LwwRegister {
            state: RegisterState::Handle(handle),
            _t: PhantomData,
        }
    }

    fn __store(self, loc: Location<'_>) -> Result<()> {
        match self.raw()? {
            Some(bytes) => match loc {
                Location::Root(name) => Ok(host::Register::open(name).set(&bytes)?),
                Location::Frozen(name) => Ok(host::Register::open_frozen(name).set(&bytes)?),
                Location::In(map, key) => Ok(map.register_at(key).set(&bytes)?),
            },
            None => Ok(()),
        }
    }

    fn __get_in(map: &Rc<host::Map>, key: &[u8]) -> Result<Option<Self>> {
        Ok(map.get_register(key)?.map(|value| LwwRegister {
            state: RegisterState::InMap {
                map: map.clone(),
                key: key.to_vec(),
                value: Some(value),
            },
            _t: PhantomData,
        }))
    }

    fn __put_in(self, map: &Rc<host::Map>, key: &[u8]) -> Result<()> {
        match self.raw()? {
            Some(bytes) => {
                map.put_register(key, &bytes)?;
            }
            None => {
                map.insert_key(key)?;
            }
        }
        Ok(())
    }
}

// --------------------------------------------------------------------- map

/// An unordered map from keys to nested collections. Iteration is in key
/// byte order.
pub struct UnorderedMap<K, V> {
    state: MapState<V>,
    _k: PhantomData<K>,
}

enum MapState<V> {
    Detached(Vec<(Vec<u8>, V)>),
    Attached(Rc<host::Map>),
}

impl<K, V> Default for UnorderedMap<K, V> {
    fn default() -> Self {
        UnorderedMap {
            state: MapState::Detached(Vec::new()),
            _k: PhantomData,
        }
    }
}

impl<K: StorageKey, V: Crdt> UnorderedMap<K, V> {
    /// An empty detached map.
    pub fn new() -> Self {
        Self::default()
    }

    fn attached(&self) -> Result<&Rc<host::Map>> {
        match &self.state {
            MapState::Attached(m) => Ok(m),
            MapState::Detached(_) => Err(detached_error()),
        }
    }

    /// Makes `value` the value at `key`, replacing what was there.
    pub fn insert(&mut self, key: K, value: V) -> Result<()> {
        let k = key.to_key();
        match &mut self.state {
            MapState::Attached(m) => value.__put_in(m, &k),
            MapState::Detached(items) => {
                items.retain(|(ik, _)| *ik != k);
                items.push((k, value));
                Ok(())
            }
        }
    }

    /// The value at `key`, if present.
    pub fn get<Q: StorageKey + ?Sized>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        V::__get_in(self.attached()?, &key.to_key())
    }

    /// The value at `key`, inserting `key` first if absent. Use it to reach a
    /// nested collection: `self.lists.entry(name)?.push(item)`.
    pub fn entry(&mut self, key: K) -> Result<V> {
        let m = self.attached()?;
        let k = key.to_key();
        if !m.contains(&k)? {
            m.insert_key(&k)?;
        }
        Ok(V::__attach(Location::In(m, &k)))
    }

    /// Whether `key` is present.
    pub fn contains<Q: StorageKey + ?Sized>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        let k = key.to_key();
        match &self.state {
            MapState::Attached(m) => Ok(m.contains(&k)?),
            MapState::Detached(items) => Ok(items.iter().any(|(ik, _)| *ik == k)),
        }
    }

    /// Removes `key` and clears its value. Returns whether it was present.
    pub fn remove<Q: StorageKey + ?Sized>(&mut self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        let k = key.to_key();
        match &mut self.state {
            MapState::Attached(m) => Ok(m.remove(&k)?),
            MapState::Detached(items) => {
                let before = items.len();
                items.retain(|(ik, _)| *ik != k);
                Ok(items.len() != before)
            }
        }
    }

    /// Number of keys.
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

    /// Every key, in byte order.
    pub fn keys(&self) -> Result<Vec<K>> {
        let m = self.attached()?;
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = m.keys(after.as_deref(), PAGE)?;
            let full = page.len() == PAGE as usize;
            for k in page {
                out.push(decode_key(&k)?);
                after = Some(k);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Every key with its value, in key byte order.
    pub fn entries(&self) -> Result<Vec<(K, V)>> {
        let m = self.attached()?;
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = m.keys(after.as_deref(), PAGE)?;
            let full = page.len() == PAGE as usize;
            for k in page {
                let v = V::__attach(Location::In(m, &k));
                out.push((decode_key(&k)?, v));
                after = Some(k);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Removes every key.
    pub fn clear(&mut self) -> Result<()> {
        match &mut self.state {
            MapState::Attached(m) => Ok(m.clear()?),
            MapState::Detached(items) => {
                items.clear();
                Ok(())
            }
        }
    }
}

impl<K: StorageKey, T: Serialize + DeserializeOwned> UnorderedMap<K, LwwRegister<T>> {
    /// Sets the value at `key`; returns the previous one. One host call.
    pub fn insert_value(&mut self, key: K, value: T) -> Result<Option<T>> {
        let k = key.to_key();
        let bytes = encode(&value)?;
        match &mut self.state {
            MapState::Attached(m) => m.put_register(&k, &bytes)?.map(|b| decode(&b)).transpose(),
            MapState::Detached(items) => {
                let old = items
                    .iter()
                    .position(|(ik, _)| *ik == k)
                    .map(|i| items.remove(i).1);
                items.push((k, LwwRegister::new(value)));
                old.map(|r| r.get()).transpose().map(Option::flatten)
            }
        }
    }

    /// The value at `key`, if present. One host call.
    pub fn get_value<Q: StorageKey + ?Sized>(&self, key: &Q) -> Result<Option<T>>
    where
        K: Borrow<Q>,
    {
        self.attached()?
            .get_register(&key.to_key())?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Every key with its value, in key byte order.
    pub fn values(&self) -> Result<Vec<(K, T)>> {
        let m = self.attached()?;
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = m.register_entries(after.as_deref(), PAGE)?;
            let full = page.len() == PAGE as usize;
            for (k, v) in page {
                out.push((decode_key(&k)?, decode(&v)?));
                after = Some(k);
            }
            if !full {
                return Ok(out);
            }
        }
    }
}

impl<K: StorageKey, V: Crdt> Crdt for UnorderedMap<K, V> {
    fn __attach(loc: Location<'_>) -> Self {
        let handle = match loc {
            Location::Root(name) => host::Map::open(name),
            Location::Frozen(name) => host::Map::open_frozen(name),
            Location::In(map, key) => map.map_at(key),
        };
        UnorderedMap {
            state: MapState::Attached(Rc::new(handle)),
            _k: PhantomData,
        }
    }

    fn __store(self, loc: Location<'_>) -> Result<()> {
        let MapState::Detached(items) = self.state else {
            return Ok(());
        };
        let target = Self::__attach(loc);
        let m = target.attached()?;
        for (k, v) in items {
            v.__put_in(m, &k)?;
        }
        Ok(())
    }
}

// --------------------------------------------------------------------- set

/// An add-wins set of keys. Iteration is in key byte order.
pub struct UnorderedSet<T> {
    state: SetState,
    _t: PhantomData<T>,
}

enum SetState {
    Detached(Vec<Vec<u8>>),
    Attached(host::Set),
}

impl<T> Default for UnorderedSet<T> {
    fn default() -> Self {
        UnorderedSet {
            state: SetState::Detached(Vec::new()),
            _t: PhantomData,
        }
    }
}

impl<T: StorageKey> UnorderedSet<T> {
    /// An empty detached set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value`; returns whether it was absent.
    pub fn insert(&mut self, value: T) -> Result<bool> {
        let k = value.to_key();
        match &mut self.state {
            SetState::Attached(s) => Ok(s.insert(&k)?),
            SetState::Detached(items) => {
                if items.contains(&k) {
                    return Ok(false);
                }
                items.push(k);
                Ok(true)
            }
        }
    }

    /// Removes `value`; returns whether it was present.
    pub fn remove<Q: StorageKey + ?Sized>(&mut self, value: &Q) -> Result<bool>
    where
        T: Borrow<Q>,
    {
        let k = value.to_key();
        match &mut self.state {
            SetState::Attached(s) => Ok(s.remove(&k)?),
            SetState::Detached(items) => {
                let before = items.len();
                items.retain(|i| *i != k);
                Ok(items.len() != before)
            }
        }
    }

    /// Whether `value` is present.
    pub fn contains<Q: StorageKey + ?Sized>(&self, value: &Q) -> Result<bool>
    where
        T: Borrow<Q>,
    {
        let k = value.to_key();
        match &self.state {
            SetState::Attached(s) => Ok(s.contains(&k)?),
            SetState::Detached(items) => Ok(items.contains(&k)),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> Result<u64> {
        match &self.state {
            SetState::Attached(s) => Ok(s.len()?),
            SetState::Detached(items) => Ok(items.len() as u64),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Every element, in byte order.
    pub fn iter(&self) -> Result<Vec<T>> {
        let s = match &self.state {
            SetState::Attached(s) => s,
            SetState::Detached(items) => return items.iter().map(|k| decode_key(k)).collect(),
        };
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = s.elements(after.as_deref(), PAGE)?;
            let full = page.len() == PAGE as usize;
            for k in page {
                out.push(decode_key(&k)?);
                after = Some(k);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Removes every element.
    pub fn clear(&mut self) -> Result<()> {
        match &mut self.state {
            SetState::Attached(s) => Ok(s.clear()?),
            SetState::Detached(items) => {
                items.clear();
                Ok(())
            }
        }
    }
}

impl<T: StorageKey> Crdt for UnorderedSet<T> {
    fn __attach(loc: Location<'_>) -> Self {
        let handle = match loc {
            Location::Root(name) => host::Set::open(name),
            Location::Frozen(name) => host::Set::open_frozen(name),
            Location::In(map, key) => map.set_at(key),
        };
        UnorderedSet {
            state: SetState::Attached(handle),
            _t: PhantomData,
        }
    }

    fn __store(self, loc: Location<'_>) -> Result<()> {
        let SetState::Detached(items) = self.state else {
            return Ok(());
        };
        let SetState::Attached(s) = Self::__attach(loc).state else {
            return Ok(());
        };
        for k in items {
            s.insert(&k)?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ vector

/// A replicated list of `T`, in push order. Index access walks the list.
pub struct Vector<T> {
    state: VectorState,
    _t: PhantomData<T>,
}

enum VectorState {
    Detached(Vec<Vec<u8>>),
    Attached(host::Vector),
}

impl<T> Default for Vector<T> {
    fn default() -> Self {
        Vector {
            state: VectorState::Detached(Vec::new()),
            _t: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Vector<T> {
    /// An empty detached vector.
    pub fn new() -> Self {
        Self::default()
    }

    fn attached(&self) -> Result<&host::Vector> {
        match &self.state {
            VectorState::Attached(v) => Ok(v),
            VectorState::Detached(_) => Err(detached_error()),
        }
    }

    /// Appends `value`.
    pub fn push(&mut self, value: T) -> Result<()> {
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
    pub fn get(&self, index: u64) -> Result<Option<T>> {
        self.attached()?.get(index)?.map(|b| decode(&b)).transpose()
    }

    /// Replaces the element at `index`; returns the old one.
    pub fn set(&mut self, index: u64, value: T) -> Result<T> {
        decode(&self.attached()?.set(index, &encode(&value)?)?)
    }

    /// Removes the element at `index`; returns it.
    pub fn remove(&mut self, index: u64) -> Result<T> {
        decode(&self.attached()?.remove(index)?)
    }

    /// Removes the last element.
    pub fn pop(&mut self) -> Result<Option<T>> {
        self.attached()?.pop()?.map(|b| decode(&b)).transpose()
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

    /// Every element, in order.
    pub fn iter(&self) -> Result<Vec<T>> {
        let v = self.attached()?;
        let mut out = Vec::new();
        loop {
            let page = v.range(out.len() as u64, PAGE)?;
            let full = page.len() == PAGE as usize;
            for b in page {
                out.push(decode(&b)?);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Removes every element.
    pub fn clear(&mut self) -> Result<()> {
        match &mut self.state {
            VectorState::Attached(v) => Ok(v.clear()?),
            VectorState::Detached(items) => {
                items.clear();
                Ok(())
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned> Crdt for Vector<T> {
    fn __attach(loc: Location<'_>) -> Self {
        let handle = match loc {
            Location::Root(name) => host::Vector::open(name),
            Location::Frozen(name) => host::Vector::open_frozen(name),
            Location::In(map, key) => map.vector_at(key),
        };
        Vector {
            state: VectorState::Attached(handle),
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
}

// ----------------------------------------------------------------- counter

/// A counter every member can change; all concurrent changes count.
pub struct Counter {
    state: CounterState,
}

enum CounterState {
    Detached(i64),
    Attached(host::Counter),
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            state: CounterState::Detached(0),
        }
    }
}

impl Counter {
    /// A detached counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current value.
    pub fn value(&self) -> Result<i64> {
        match &self.state {
            CounterState::Attached(c) => Ok(c.value()?),
            CounterState::Detached(v) => Ok(*v),
        }
    }

    /// Adds `by`; returns the new value.
    pub fn increment(&mut self, by: u64) -> Result<i64> {
        match &mut self.state {
            CounterState::Attached(c) => Ok(c.increment(by)?),
            CounterState::Detached(v) => {
                *v = v.saturating_add_unsigned(by);
                Ok(*v)
            }
        }
    }

    /// Subtracts `by`; returns the new value.
    pub fn decrement(&mut self, by: u64) -> Result<i64> {
        match &mut self.state {
            CounterState::Attached(c) => Ok(c.decrement(by)?),
            CounterState::Detached(v) => {
                *v = v.saturating_sub_unsigned(by);
                Ok(*v)
            }
        }
    }
}

impl Crdt for Counter {
    fn __attach(loc: Location<'_>) -> Self {
        let handle = match loc {
            Location::Root(name) => host::Counter::open(name),
            Location::Frozen(name) => host::Counter::open_frozen(name),
            Location::In(map, key) => map.counter_at(key),
        };
        Counter {
            state: CounterState::Attached(handle),
        }
    }

    fn __store(self, loc: Location<'_>) -> Result<()> {
        let CounterState::Detached(v) = self.state else {
            return Ok(());
        };
        let CounterState::Attached(c) = Self::__attach(loc).state else {
            return Ok(());
        };
        if v > 0 {
            c.increment(v.unsigned_abs())?;
        } else if v < 0 {
            c.decrement(v.unsigned_abs())?;
        }
        Ok(())
    }
}
