//! `calimero:context/events`: events delivered after the call commits.

use mero_crdt::Event;

use super::HostState;
use crate::CallError;
use crate::bindings::StorageError;
use crate::bindings::calimero::context::events;

const MAX_KIND_BYTES: usize = 100;

impl events::Host for HostState {
    fn emit(&mut self, kind: String, data: Vec<u8>) -> wasmtime::Result<Result<(), StorageError>> {
        if let Some(e) = self.deny_write() {
            return Ok(Err(e));
        }
        if kind.is_empty() || kind.len() > MAX_KIND_BYTES {
            return Ok(Err(self.bad_event(
                format!("event kind must be 1 to {MAX_KIND_BYTES} bytes"),
                StorageError::TooLarge,
            )));
        }
        let max = self.config.max_event_bytes;
        if data.len() > max {
            return Ok(Err(self.bad_event(
                format!("event data of {} bytes (max {max})", data.len()),
                StorageError::TooLarge,
            )));
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_err() {
            return Ok(Err(self.bad_event(
                format!("data of event `{kind}` is not JSON"),
                StorageError::Other,
            )));
        }
        let max_events = self.config.max_events_per_call;
        if self.env.events.len() >= max_events {
            return Ok(Err(self.over_budget(format!(
                "more than {max_events} events in one call"
            ))));
        }
        self.env.events.push(Event { kind, data });
        Ok(Ok(()))
    }
}

impl HostState {
    /// Refuses an event and fails the call with it: an app that ignores the
    /// error (the SDK's `emit!` returns nothing) must not succeed without it.
    fn bad_event(&mut self, why: String, as_error: fn(String) -> StorageError) -> StorageError {
        self.env
            .sticky
            .get_or_insert_with(|| CallError::InvalidEvent(why.clone()));
        as_error(why)
    }
}
