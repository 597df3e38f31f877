//! Runs context apps: WebAssembly components implementing
//! `calimero:context/context-app`, on wasmtime.
//!
//! - [`Runtime`] owns the engine (Cranelift, pooling allocator, epoch
//!   interruption), the linker with our host interfaces and WASI (a null
//!   sandbox: no files, network, environment or stdio but a captured stderr),
//!   and a cache of loaded apps. A component is compiled once per content
//!   hash and engine; the artifact is kept on disk, so a restart only
//!   deserializes it.
//! - Each call gets a fresh instance from an `InstancePre` (cheap on the
//!   pooling allocator), a deadline re-armed per call and memory and table
//!   limits: a looping, trapping or memory-hungry app fails that call with a
//!   clear [`CallError`], and the node goes on.
//! - A call runs on a [`CallEnv`]: a buffered overlay over a snapshot of the
//!   context's state, so nothing is written until the caller commits the
//!   call's ops. Read-only methods (declared by the app) get a store that
//!   refuses writes.
//! - [`handler_name`]: the method an app handles an event kind with, part
//!   of the app contract.
//!
//! The host implementation of each WIT interface is in its own module under
//! `host/`; the generated bindings are confined to `bindings`.
//!
//! This crate runs one call and hands back what it produced: it reads the
//! store through the snapshot it is given and never writes it. Queuing,
//! batching, signing and committing calls, and merging remote deltas, belong
//! to `mero-executor`, which calls in here.

mod bindings;
mod config;
mod error;
mod handler;
mod host;
mod runtime;

pub use config::{DEFAULT_MIGRATION_FUEL, RuntimeConfig};
pub use error::{CallError, LoadError};
pub use handler::handler_name;
pub use host::{
    BlobError, BlobFuture, Blobs, CallEnv, ChainAccount, ChainAttestation, ChainIdentities,
    MAX_BLOB_READ, Mode, PrivateOverlay, State, state_over,
};
pub use runtime::{App, AppDescription, Field, Intent, Migration, Runtime};
