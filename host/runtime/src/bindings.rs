//! The only place `bindgen!` runs: host-side bindings of the WIT contract,
//! and the host types its storage resources map to (declared here, so that
//! the host modules import the bindings and never the other way round).
//! Imports are synchronous (they touch LMDB for microseconds and never
//! block), but for `blobs`, which may wait for a member to send a blob;
//! exports are async, so calls run on a fiber with epoch deadlines.

use mero_crdt::NodeId;

/// What a storage handle addresses: a collection, in the live state or in
/// the frozen state a migration started from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Handle {
    pub(crate) node: NodeId,
    pub(crate) frozen: bool,
}

impl Handle {
    pub(crate) fn live(node: NodeId) -> Self {
        Handle {
            node,
            frozen: false,
        }
    }

    pub(crate) fn frozen(node: NodeId) -> Self {
        Handle { node, frozen: true }
    }

    /// The collection stored at `key` of this one, in the same state.
    pub(crate) fn child(self, key: &[u8]) -> Self {
        Handle {
            node: self.node.child(key),
            frozen: self.frozen,
        }
    }
}

/// A register handle: which node it addresses.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct RegisterRes(pub(crate) Handle);
/// A map handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct MapRes(pub(crate) Handle);
/// A set handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct SetRes(pub(crate) Handle);
/// A vector handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct VectorRes(pub(crate) Handle);
/// A counter handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct CounterRes(pub(crate) Handle);
/// An authored map handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct AuthoredMapRes(pub(crate) Handle);
/// An authored vector handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct AuthoredVectorRes(pub(crate) Handle);

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "calimero:context/context-app",
    imports: {
        "calimero:context/blobs": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "calimero:context/storage.register": crate::bindings::RegisterRes,
        "calimero:context/storage.map": crate::bindings::MapRes,
        "calimero:context/storage.set": crate::bindings::SetRes,
        "calimero:context/storage.vector": crate::bindings::VectorRes,
        "calimero:context/storage.counter": crate::bindings::CounterRes,
        "calimero:context/storage.authored-map": crate::bindings::AuthoredMapRes,
        "calimero:context/storage.authored-vector": crate::bindings::AuthoredVectorRes,
    },
});

pub(crate) use calimero::context::types::StorageError;
pub(crate) use exports::calimero::context::app::{AppError, AppInfo, FieldInfo, Intent};
