//! Write apps for context nodes.
//!
//! An app is a Rust library built with `cargo build --target wasm32-wasip2`
//! into a WebAssembly component. This crate is its only dependency: it
//! carries the WIT bindings (through a re-export of `wit-bindgen`), typed CRDT
//! collections, private storage, events, [`blobs`] and the `#[app::*]`
//! macros.
//!
//! ```
//! use mero_sdk::app;
//! use mero_sdk::collections::{LwwRegister, UnorderedMap};
//!
//! #[app::state]
//! pub struct Notes {
//!     notes: UnorderedMap<String, LwwRegister<String>>,
//! }
//!
//! #[app::event]
//! pub enum Event<'a> {
//!     Written { title: &'a str },
//! }
//!
//! #[app::logic]
//! impl Notes {
//!     #[app::init]
//!     pub fn init() -> Notes {
//!         Notes { notes: UnorderedMap::new() }
//!     }
//!
//!     /// `&mut self`: a mutating method.
//!     pub fn write(&mut self, title: String, body: String) -> app::Result<()> {
//!         self.notes.insert_value(title.clone(), body)?;
//!         app::emit!(Event::Written { title: &title });
//!         Ok(())
//!     }
//!
//!     /// `&self`: a read-only view; the node refuses its writes.
//!     pub fn read(&self, title: &str) -> app::Result<Option<String>> {
//!         self.notes.get_value(title)
//!     }
//! }
//! ```
//!
//! Clients call methods with one JSON object keyed by parameter name
//! (`{"title": "a", "body": "b"}`) and receive the JSON of the return value.
//!
//! # How state works
//!
//! The fields of the `#[app::state]` struct are collections stored by the
//! node, not in the guest: each call runs in a fresh instance and reads and
//! writes through host calls. The node merges concurrent writes from every
//! member with fixed CRDT rules (see [`collections`]), so methods never handle
//! conflicts themselves. A call's writes commit atomically when it returns
//! successfully; an error or a panic discards them all.
//!
//! # Events and handlers
//!
//! [`app::emit!`](crate::emit) publishes an event to subscribers on every
//! node once the call commits. Nodes that receive the call's changes may run
//! handler methods for those events. Handlers run *at least once* per node
//! (again after a crash between applying and handling), possibly in a
//! different order on different nodes: write handlers so that running them
//! twice, or in another order, leaves the same state (for example, set a
//! register to a value derived from the event rather than incrementing a
//! counter).
//!
//! An app declares the handler of an event by having a mutating method
//! named `on_` and the event's variant name in snake case: `on_written` for
//! `Event::Written` above. It takes the event's fields as its parameters:
//!
//! ```ignore
//! pub fn on_written(&mut self, title: String) -> app::Result<()> {
//!     self.seen.insert(title)?; // a set: a second run changes nothing
//!     Ok(())
//! }
//! ```
//!
//! The contract:
//! - It runs on each node that *receives* the event with a delta from
//!   another node, after that delta is applied; never on the node whose call
//!   emitted it. Its writes are a new call of the receiving node, replicated
//!   like any other.
//! - At least once per receiving node: the node records it with the delta
//!   and forgets it only after it ran, so a crash in between runs it again.
//! - A handler that returns an error is not retried (it would fail again);
//!   read-only members do not run handlers.
//! - A handler's own events do reach subscribers, and their handlers run on
//!   the nodes that receive *them*: emit from a handler only what cannot
//!   bounce back and forth forever.

#![warn(missing_docs)]

extern crate self as mero_sdk;

pub mod authored;
pub mod blobs;
pub mod collections;
pub mod env;
pub mod migration;
pub mod private;

mod error;
mod key;

#[doc(hidden)]
pub mod __private;

/// Bindings generated from the WIT contract. Apps rarely need them directly.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "calimero:context/context-app",
        pub_export_macro: true,
        export_macro_name: "__export_context_app",
        default_bindings_module: "::mero_sdk::bindings",
        runtime_path: "::mero_sdk::wit_bindgen::rt",
    });
}

pub use error::{Error, Result};
pub use key::StorageKey;
pub use {serde, serde_json, wit_bindgen};

/// The macros and names an app uses, as `app::state`, `app::Result`, ...
pub mod app {
    pub use crate::emit;
    pub use crate::error::{Error, Result};
    pub use mero_sdk_macros::{event, init, logic, migrate, migration_check, state, view};

    /// Returns early with an [`Error`] built from a format string.
    #[macro_export]
    macro_rules! bail {
        ($($arg:tt)*) => {
            return ::core::result::Result::Err($crate::Error::msg(::std::format!($($arg)*)).into())
        };
    }
    pub use crate::bail;
}

/// Emits an event declared with `#[app::event]`. It is delivered only if the
/// call succeeds. Emitting from a view, more events than a call may emit, or
/// an event the host refuses (data over its size limit) fails the call.
#[macro_export]
macro_rules! emit {
    ($event:expr) => {
        $crate::__private::emit(&$event)
    };
}

/// An event type declared with `#[app::event]`.
pub trait AppEvent {
    /// The event's name: its variant name.
    fn kind(&self) -> &'static str;
    /// Its JSON payload.
    fn data(&self) -> Vec<u8>;
}
