//! The only place `bindgen!` runs: host-side bindings of the WIT contract.
//! Imports are synchronous (they touch LMDB for microseconds and never
//! block); exports are async, so calls run on a fiber with epoch deadlines.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "calimero:context/context-app",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "calimero:context/storage.register": crate::host::storage::RegisterRes,
        "calimero:context/storage.map": crate::host::storage::MapRes,
        "calimero:context/storage.set": crate::host::storage::SetRes,
        "calimero:context/storage.vector": crate::host::storage::VectorRes,
        "calimero:context/storage.counter": crate::host::storage::CounterRes,
    },
});

pub(crate) use calimero::context::types::StorageError;
pub(crate) use exports::calimero::context::app::{AppError, AppInfo, Intent};
