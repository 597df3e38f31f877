//! The only place `bindgen!` runs: host-side bindings of the WIT contract,
//! and the host types its storage resources map to (declared here, so that
//! the host modules import the bindings and never the other way round).
//! Imports are synchronous (they touch LMDB for microseconds and never
//! block); exports are async, so calls run on a fiber with epoch deadlines.

use mero_crdt::NodeId;

/// A register handle: which node it addresses.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct RegisterRes(pub(crate) NodeId);
/// A map handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct MapRes(pub(crate) NodeId);
/// A set handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct SetRes(pub(crate) NodeId);
/// A vector handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct VectorRes(pub(crate) NodeId);
/// A counter handle.
#[derive(Debug)]
#[allow(unreachable_pub, reason = "bindgen re-exports resource types publicly")]
pub struct CounterRes(pub(crate) NodeId);

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "calimero:context/context-app",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "calimero:context/storage.register": crate::bindings::RegisterRes,
        "calimero:context/storage.map": crate::bindings::MapRes,
        "calimero:context/storage.set": crate::bindings::SetRes,
        "calimero:context/storage.vector": crate::bindings::VectorRes,
        "calimero:context/storage.counter": crate::bindings::CounterRes,
    },
});

pub(crate) use calimero::context::types::StorageError;
pub(crate) use exports::calimero::context::app::{AppError, AppInfo, Intent};
