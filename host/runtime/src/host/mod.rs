//! The host side of the WIT contract, one module per interface, over the
//! state of one call ([`CallEnv`]).

pub(crate) mod blobs;
pub(crate) mod context;
pub(crate) mod events;
pub(crate) mod private;
pub(crate) mod storage;

pub use blobs::{BlobError, BlobFuture, Blobs, MAX_BLOB_READ};
pub use context::{ChainAccount, ChainAttestation, ChainIdentities};
pub use private::PrivateOverlay;

use std::sync::Arc;

use mero_crdt::backend::StateRead;
use mero_crdt::collections::{Mutator, Ops};
use mero_crdt::overlay::Overlay;
use mero_crdt::{Author, Clock, ContextId, Event, Op};
use mero_store::ContextReader;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{Handle, StorageError};
use crate::config::RuntimeConfig;
use crate::error::CallError;

/// What a call may do to state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `describe`: no storage at all.
    Describe,
    /// A view: reads only. Carries the method name for errors.
    ReadOnly(String),
    /// A mutating method, `init` or a migration.
    Mutating,
}

/// A call's view of a context's state: its own writes over the writes of
/// the batch still being committed (if any) over a snapshot.
pub type State = Overlay<Overlay<ContextReader>>;

/// A state with nothing buffered over `reader`.
pub fn state_over(reader: ContextReader) -> State {
    Overlay::new(Overlay::new(reader))
}

/// Everything one call reads and produces. The caller builds it, the runtime
/// runs the call on it and hands it back with the ops, events and logs.
#[derive(Debug)]
pub struct CallEnv {
    /// The context.
    pub ctx: ContextId,
    /// Who executes (and will sign) the call.
    pub executor: Author,
    /// The app version the context runs.
    pub app_version: String,
    /// The state, buffered. `None` only for `describe`.
    pub state: Option<State>,
    /// Private storage, buffered. `None` only for `describe`.
    pub private: Option<PrivateOverlay>,
    /// The node's clock.
    pub clock: Clock,
    /// Wall clock at the start of the call.
    pub wall_millis: u64,
    /// Ops the call produced, if `record_ops`.
    pub ops: Vec<Op>,
    /// Whether to keep the ops in `ops`. A migration does not: its writes
    /// stay whole in its overlay, which is what commits, and the ops of a
    /// rewrite of every entry would double what it holds.
    pub record_ops: bool,
    /// Ops produced and not kept (`record_ops` off).
    pub unrecorded_ops: usize,
    /// Events the call emitted.
    pub events: Vec<Event>,
    /// Lines the app logged.
    pub logs: Vec<String>,
    pub(crate) written: usize,
    /// A violation the app cannot hide by ignoring the error it got.
    pub(crate) sticky: Option<CallError>,
    pub(crate) host_failure: Option<String>,
}

impl CallEnv {
    /// An environment for a call on `state` and `private`.
    pub fn new(
        ctx: ContextId,
        executor: Author,
        app_version: String,
        state: State,
        private: PrivateOverlay,
        clock: Clock,
    ) -> Self {
        CallEnv {
            ctx,
            executor,
            app_version,
            state: Some(state),
            private: Some(private),
            clock,
            wall_millis: mero_crdt::hlc::wall_millis(),
            ops: Vec::new(),
            record_ops: true,
            unrecorded_ops: 0,
            events: Vec::new(),
            logs: Vec::new(),
            written: 0,
            sticky: None,
            host_failure: None,
        }
    }

    /// How many ops the call produced, kept or not.
    pub fn op_count(&self) -> usize {
        self.ops.len().saturating_add(self.unrecorded_ops)
    }

    pub(crate) fn describe() -> Self {
        CallEnv {
            ctx: ContextId::default(),
            executor: Author::default(),
            app_version: String::new(),
            state: None,
            private: None,
            clock: Clock::default(),
            wall_millis: 0,
            ops: Vec::new(),
            record_ops: true,
            unrecorded_ops: 0,
            events: Vec::new(),
            logs: Vec::new(),
            written: 0,
            sticky: None,
            host_failure: None,
        }
    }
}

/// The data of a wasmtime store running one call.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) env: CallEnv,
    pub(crate) mode: Mode,
    /// A migration or its check runs: frozen handles read the old state.
    pub(crate) migration: bool,
    /// The running app's state version: what authored writes are stamped
    /// with.
    pub(crate) state_version: u32,
    pub(crate) config: Arc<RuntimeConfig>,
    /// The node's blob store, if it offers one to apps.
    pub(crate) blobs: Option<Arc<dyn Blobs>>,
    /// The node's record of members' chain identities, if it offers one.
    pub(crate) chain_identities: Option<Arc<dyn ChainIdentities>>,
    /// Blob bytes the call has read.
    pub(crate) blob_read: u64,
    /// When the call's wall-clock budget runs out (none when metered by
    /// fuel): how long a blob read may wait for a fetch.
    pub(crate) deadline: Option<std::time::Instant>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn no_storage() -> wasmtime::Error {
    wasmtime::Error::msg("storage is not available while the app describes itself")
}

impl HostState {
    /// Refuses a write in a view, recording the violation.
    pub(crate) fn deny_write(&mut self) -> Option<StorageError> {
        match &self.mode {
            Mode::Mutating => None,
            Mode::ReadOnly(method) => {
                self.env
                    .sticky
                    .get_or_insert_with(|| CallError::ReadOnly(method.clone()));
                Some(StorageError::ReadOnly)
            }
            Mode::Describe => Some(StorageError::ReadOnly),
        }
    }

    pub(crate) fn over_budget(&mut self, what: String) -> StorageError {
        self.env
            .sticky
            .get_or_insert_with(|| CallError::LimitExceeded(what.clone()));
        StorageError::LimitExceeded(what)
    }

    /// Charges `bytes` to the call's write budget.
    pub(crate) fn charge(&mut self, bytes: usize) -> Option<StorageError> {
        self.env.written = self.env.written.saturating_add(bytes);
        let max = self.config.max_bytes_written_per_call;
        (self.env.written > max)
            .then(|| self.over_budget(format!("more than {max} bytes written in one call")))
    }

    /// Runs a read against the call's view of the state, or, through a
    /// frozen handle, against the state the running migration started from.
    pub(crate) fn read<T>(
        &mut self,
        at: Handle,
        f: impl FnOnce(&dyn StateRead) -> mero_crdt::Result<T>,
    ) -> wasmtime::Result<Result<T, StorageError>> {
        let state = self.env.state.as_ref().ok_or_else(no_storage)?;
        let r = if !at.frozen {
            f(state)
        } else if self.migration {
            // A migration runs first in its batch on an empty overlay (the
            // executor sees to it), so the layer under it is the state
            // before the migration.
            f(state.base())
        } else {
            return Ok(Err(StorageError::Other(
                "frozen state is readable only while a migration runs".into(),
            )));
        };
        self.map(r)
    }

    /// Runs a write, charging `bytes` and the ops it produces to the budget.
    /// [`write`](Self::write) to an authored collection: refused in a
    /// migration, which runs as no member and would take every entry it
    /// wrote from its owner.
    pub(crate) fn write_authored<T>(
        &mut self,
        at: Handle,
        bytes: usize,
        f: impl FnOnce(&mut Mutator<'_, State>, u32) -> mero_crdt::Result<T>,
    ) -> wasmtime::Result<Result<T, StorageError>> {
        if self.migration && !at.frozen {
            return Ok(Err(StorageError::Other(
                "a migration cannot write authored entries: only their owners can; they carry over as they are".into(),
            )));
        }
        let version = self.state_version;
        self.write(at, bytes, |m| f(m, version))
    }

    pub(crate) fn write<T>(
        &mut self,
        at: Handle,
        bytes: usize,
        f: impl FnOnce(&mut Mutator<'_, State>) -> mero_crdt::Result<T>,
    ) -> wasmtime::Result<Result<T, StorageError>> {
        if at.frozen {
            return Ok(Err(StorageError::ReadOnly));
        }
        if let Some(e) = self.deny_write() {
            return Ok(Err(e));
        }
        if let Some(e) = self.charge(bytes) {
            return Ok(Err(e));
        }
        let env = &mut self.env;
        let state = env.state.as_mut().ok_or_else(no_storage)?;
        let ops = if env.record_ops {
            Ops::Record(&mut env.ops)
        } else {
            Ops::Count(&mut env.unrecorded_ops)
        };
        let mut m = Mutator::with_ops(state, env.executor, &mut env.clock, env.wall_millis, ops);
        let r = f(&mut m);
        let max = self.config.max_ops_per_call;
        if self.env.op_count() > max {
            return Ok(Err(self.over_budget(format!(
                "more than {max} state operations in one call"
            ))));
        }
        self.map(r)
    }

    fn map<T>(&mut self, r: mero_crdt::Result<T>) -> wasmtime::Result<Result<T, StorageError>> {
        match r {
            Ok(v) => Ok(Ok(v)),
            Err(
                e @ (mero_crdt::Error::KeyTooLong { .. } | mero_crdt::Error::ValueTooLarge { .. }),
            ) => Ok(Err(StorageError::TooLarge(e.to_string()))),
            Err(e @ mero_crdt::Error::OutOfRange { .. }) => {
                Ok(Err(StorageError::OutOfRange(e.to_string())))
            }
            Err(e @ mero_crdt::Error::NotOwner { .. }) => {
                Ok(Err(StorageError::NotOwner(e.to_string())))
            }
            Err(e) => {
                let msg = format!("{e:#}");
                self.env.host_failure.get_or_insert_with(|| msg.clone());
                Err(wasmtime::Error::msg(msg))
            }
        }
    }
}
