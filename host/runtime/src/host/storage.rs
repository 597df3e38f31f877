//! `calimero:context/storage`: collections as resources over the CRDT state.

use mero_crdt::NodeId;
use mero_crdt::collections as c;
use wasmtime::component::Resource;

use super::HostState;
use crate::bindings::calimero::context::{storage, types};
use crate::bindings::{
    AuthoredMapRes, AuthoredVectorRes, CounterRes, Handle, MapRes, RegisterRes, SetRes,
    StorageError, VectorRes,
};

type R<T> = wasmtime::Result<Result<T, StorageError>>;

fn limit(n: u32) -> usize {
    // Guest-chosen page sizes are clamped: a page is built in host memory.
    n.clamp(1, 4096) as usize
}

impl types::Host for HostState {}
impl storage::Host for HostState {}

impl HostState {
    fn node<T: 'static>(&self, r: &Resource<T>, f: fn(&T) -> Handle) -> wasmtime::Result<Handle> {
        Ok(f(self.table.get(r)?))
    }

    fn push<T: Send + 'static>(&mut self, value: T) -> wasmtime::Result<Resource<T>> {
        Ok(self.table.push(value)?)
    }
}

impl storage::HostRegister for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Resource<RegisterRes>> {
        self.push(RegisterRes(Handle::live(NodeId::root(&name))))
    }

    fn open_frozen(&mut self, name: String) -> wasmtime::Result<Resource<RegisterRes>> {
        self.push(RegisterRes(Handle::frozen(NodeId::root(&name))))
    }

    fn get(&mut self, h: Resource<RegisterRes>) -> R<Option<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::register_get(s, &n.node))
    }

    fn set(&mut self, h: Resource<RegisterRes>, value: Vec<u8>) -> R<()> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, value.len(), |m| m.register_set(&n.node, Some(value)))
    }

    fn clear(&mut self, h: Resource<RegisterRes>) -> R<()> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, 0, |m| m.register_set(&n.node, None))
    }

    fn drop(&mut self, h: Resource<RegisterRes>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl storage::HostMap for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Resource<MapRes>> {
        self.push(MapRes(Handle::live(NodeId::root(&name))))
    }

    fn open_frozen(&mut self, name: String) -> wasmtime::Result<Resource<MapRes>> {
        self.push(MapRes(Handle::frozen(NodeId::root(&name))))
    }

    fn contains(&mut self, h: Resource<MapRes>, key: Vec<u8>) -> R<bool> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::contains(s, &n.node, &key))
    }

    fn insert_key(&mut self, h: Resource<MapRes>, key: Vec<u8>) -> R<bool> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, key.len(), |m| m.insert_key(&n.node, &key))
    }

    fn remove(&mut self, h: Resource<MapRes>, key: Vec<u8>) -> R<bool> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, key.len(), |m| m.remove_key(&n.node, &key))
    }

    fn len(&mut self, h: Resource<MapRes>) -> R<u64> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::len(s, &n.node))
    }

    fn keys(&mut self, h: Resource<MapRes>, after: Option<Vec<u8>>, max: u32) -> R<Vec<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::keys(s, &n.node, after.as_deref(), limit(max)))
    }

    fn clear(&mut self, h: Resource<MapRes>) -> R<()> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, 0, |m| m.clear(&n.node))
    }

    fn get_register(&mut self, h: Resource<MapRes>, key: Vec<u8>) -> R<Option<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| {
            if c::contains(s, &n.node, &key)? {
                c::register_get(s, &n.node.child(&key))
            } else {
                Ok(None)
            }
        })
    }

    fn put_register(
        &mut self,
        h: Resource<MapRes>,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> R<Option<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, key.len() + value.len(), |m| {
            m.put_register(&n.node, &key, value)
        })
    }

    fn register_entries(
        &mut self,
        h: Resource<MapRes>,
        after: Option<Vec<u8>>,
        max: u32,
    ) -> R<Vec<(Vec<u8>, Vec<u8>)>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| {
            c::register_entries(s, &n.node, after.as_deref(), limit(max))
        })
    }

    fn register_at(
        &mut self,
        h: Resource<MapRes>,
        key: Vec<u8>,
    ) -> wasmtime::Result<Resource<RegisterRes>> {
        let n = self.node(&h, |r| r.0)?;
        self.push(RegisterRes(n.child(&key)))
    }

    fn map_at(&mut self, h: Resource<MapRes>, key: Vec<u8>) -> wasmtime::Result<Resource<MapRes>> {
        let n = self.node(&h, |r| r.0)?;
        self.push(MapRes(n.child(&key)))
    }

    fn set_at(&mut self, h: Resource<MapRes>, key: Vec<u8>) -> wasmtime::Result<Resource<SetRes>> {
        let n = self.node(&h, |r| r.0)?;
        self.push(SetRes(n.child(&key)))
    }

    fn vector_at(
        &mut self,
        h: Resource<MapRes>,
        key: Vec<u8>,
    ) -> wasmtime::Result<Resource<VectorRes>> {
        let n = self.node(&h, |r| r.0)?;
        self.push(VectorRes(n.child(&key)))
    }

    fn counter_at(
        &mut self,
        h: Resource<MapRes>,
        key: Vec<u8>,
    ) -> wasmtime::Result<Resource<CounterRes>> {
        let n = self.node(&h, |r| r.0)?;
        self.push(CounterRes(n.child(&key)))
    }

    fn authored_map_at(
        &mut self,
        h: Resource<MapRes>,
        key: Vec<u8>,
    ) -> wasmtime::Result<Resource<AuthoredMapRes>> {
        let n = self.node(&h, |r| r.0)?;
        self.push(AuthoredMapRes(n.child(&key)))
    }

    fn authored_vector_at(
        &mut self,
        h: Resource<MapRes>,
        key: Vec<u8>,
    ) -> wasmtime::Result<Resource<AuthoredVectorRes>> {
        let n = self.node(&h, |r| r.0)?;
        self.push(AuthoredVectorRes(n.child(&key)))
    }

    fn drop(&mut self, h: Resource<MapRes>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl storage::HostSet for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Resource<SetRes>> {
        self.push(SetRes(Handle::live(NodeId::root(&name))))
    }

    fn open_frozen(&mut self, name: String) -> wasmtime::Result<Resource<SetRes>> {
        self.push(SetRes(Handle::frozen(NodeId::root(&name))))
    }

    fn contains(&mut self, h: Resource<SetRes>, element: Vec<u8>) -> R<bool> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::contains(s, &n.node, &element))
    }

    fn insert(&mut self, h: Resource<SetRes>, element: Vec<u8>) -> R<bool> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, element.len(), |m| m.insert_key(&n.node, &element))
    }

    fn remove(&mut self, h: Resource<SetRes>, element: Vec<u8>) -> R<bool> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, element.len(), |m| m.remove_key(&n.node, &element))
    }

    fn len(&mut self, h: Resource<SetRes>) -> R<u64> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::len(s, &n.node))
    }

    fn elements(
        &mut self,
        h: Resource<SetRes>,
        after: Option<Vec<u8>>,
        max: u32,
    ) -> R<Vec<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::keys(s, &n.node, after.as_deref(), limit(max)))
    }

    fn clear(&mut self, h: Resource<SetRes>) -> R<()> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, 0, |m| m.clear(&n.node))
    }

    fn drop(&mut self, h: Resource<SetRes>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl storage::HostVector for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Resource<VectorRes>> {
        self.push(VectorRes(Handle::live(NodeId::root(&name))))
    }

    fn open_frozen(&mut self, name: String) -> wasmtime::Result<Resource<VectorRes>> {
        self.push(VectorRes(Handle::frozen(NodeId::root(&name))))
    }

    fn len(&mut self, h: Resource<VectorRes>) -> R<u64> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::len(s, &n.node))
    }

    fn get(&mut self, h: Resource<VectorRes>, index: u64) -> R<Option<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::vector_get(s, &n.node, index))
    }

    fn push(&mut self, h: Resource<VectorRes>, value: Vec<u8>) -> R<()> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, value.len(), |m| m.vector_push(&n.node, value))
    }

    fn set(&mut self, h: Resource<VectorRes>, index: u64, value: Vec<u8>) -> R<Vec<u8>> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, value.len(), |m| m.vector_set(&n.node, index, value))
    }

    fn remove(&mut self, h: Resource<VectorRes>, index: u64) -> R<Vec<u8>> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, 0, |m| m.vector_remove(&n.node, index))
    }

    fn pop(&mut self, h: Resource<VectorRes>) -> R<Option<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, 0, |m| m.vector_pop(&n.node))
    }

    fn range(&mut self, h: Resource<VectorRes>, start: u64, max: u32) -> R<Vec<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::vector_range(s, &n.node, start, limit(max)))
    }

    fn clear(&mut self, h: Resource<VectorRes>) -> R<()> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, 0, |m| m.clear(&n.node))
    }

    fn drop(&mut self, h: Resource<VectorRes>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl storage::HostCounter for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Resource<CounterRes>> {
        self.push(CounterRes(Handle::live(NodeId::root(&name))))
    }

    fn open_frozen(&mut self, name: String) -> wasmtime::Result<Resource<CounterRes>> {
        self.push(CounterRes(Handle::frozen(NodeId::root(&name))))
    }

    fn value(&mut self, h: Resource<CounterRes>) -> R<i64> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::counter_value(s, &n.node))
    }

    fn increment(&mut self, h: Resource<CounterRes>, by: u64) -> R<i64> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, 0, |m| m.counter_add(&n.node, i128::from(by)))
    }

    fn decrement(&mut self, h: Resource<CounterRes>, by: u64) -> R<i64> {
        let n = self.node(&h, |r| r.0)?;
        self.write(n, 0, |m| m.counter_add(&n.node, -i128::from(by)))
    }

    fn drop(&mut self, h: Resource<CounterRes>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

/// What the guest sees of an authored element.
fn shown(a: mero_crdt::Authored) -> storage::AuthoredValue {
    storage::AuthoredValue {
        owner: a.owner().0.to_vec(),
        version: a.version,
        value: a.register.value.unwrap_or_default(),
    }
}

impl storage::HostAuthoredMap for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Resource<AuthoredMapRes>> {
        self.push(AuthoredMapRes(Handle::live(NodeId::root(&name))))
    }

    fn open_frozen(&mut self, name: String) -> wasmtime::Result<Resource<AuthoredMapRes>> {
        self.push(AuthoredMapRes(Handle::frozen(NodeId::root(&name))))
    }

    fn get(
        &mut self,
        h: Resource<AuthoredMapRes>,
        key: Vec<u8>,
    ) -> R<Option<storage::AuthoredValue>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| {
            Ok(c::authored_get(s, &n.node, &key)?
                .filter(|a| a.register.value.is_some())
                .map(shown))
        })
    }

    fn insert(
        &mut self,
        h: Resource<AuthoredMapRes>,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> R<Option<Vec<u8>>> {
        let n = self.node(&h, |r| r.0)?;
        self.write_authored(n, key.len() + value.len(), |m, v| {
            m.authored_put(&n.node, &key, Some(value), v)
        })
    }

    fn remove(&mut self, h: Resource<AuthoredMapRes>, key: Vec<u8>) -> R<bool> {
        let n = self.node(&h, |r| r.0)?;
        self.write_authored(n, 0, |m, v| {
            Ok(m.authored_put(&n.node, &key, None, v)?.is_some())
        })
    }

    fn len(&mut self, h: Resource<AuthoredMapRes>) -> R<u64> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::len(s, &n.node))
    }

    fn entries(
        &mut self,
        h: Resource<AuthoredMapRes>,
        after: Option<Vec<u8>>,
        max: u32,
    ) -> R<Vec<(Vec<u8>, storage::AuthoredValue)>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| {
            Ok(
                c::authored_entries(s, &n.node, after.as_deref(), limit(max))?
                    .into_iter()
                    .map(|(k, a)| (k, shown(a)))
                    .collect(),
            )
        })
    }

    fn drop(&mut self, h: Resource<AuthoredMapRes>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl storage::HostAuthoredVector for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Resource<AuthoredVectorRes>> {
        self.push(AuthoredVectorRes(Handle::live(NodeId::root(&name))))
    }

    fn open_frozen(&mut self, name: String) -> wasmtime::Result<Resource<AuthoredVectorRes>> {
        self.push(AuthoredVectorRes(Handle::frozen(NodeId::root(&name))))
    }

    fn len(&mut self, h: Resource<AuthoredVectorRes>) -> R<u64> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| c::len(s, &n.node))
    }

    fn get(
        &mut self,
        h: Resource<AuthoredVectorRes>,
        index: u64,
    ) -> R<Option<storage::AuthoredValue>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| {
            Ok(c::authored_range(s, &n.node, index, 1)?
                .pop()
                .map(|(_, a)| shown(a)))
        })
    }

    fn push(&mut self, h: Resource<AuthoredVectorRes>, value: Vec<u8>) -> R<()> {
        let n = self.node(&h, |r| r.0)?;
        self.write_authored(n, value.len(), |m, v| m.authored_push(&n.node, value, v))
    }

    fn set(&mut self, h: Resource<AuthoredVectorRes>, index: u64, value: Vec<u8>) -> R<Vec<u8>> {
        let n = self.node(&h, |r| r.0)?;
        self.write_authored(n, value.len(), |m, v| {
            m.authored_write_at(&n.node, index, Some(value), v)
        })
    }

    fn remove(&mut self, h: Resource<AuthoredVectorRes>, index: u64) -> R<Vec<u8>> {
        let n = self.node(&h, |r| r.0)?;
        self.write_authored(n, 0, |m, v| m.authored_write_at(&n.node, index, None, v))
    }

    fn range(
        &mut self,
        h: Resource<AuthoredVectorRes>,
        start: u64,
        max: u32,
    ) -> R<Vec<storage::AuthoredValue>> {
        let n = self.node(&h, |r| r.0)?;
        self.read(n, |s| {
            Ok(c::authored_range(s, &n.node, start, limit(max))?
                .into_iter()
                .map(|(_, a)| shown(a))
                .collect())
        })
    }

    fn drop(&mut self, h: Resource<AuthoredVectorRes>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}
