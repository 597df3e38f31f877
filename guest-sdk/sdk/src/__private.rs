//! What the macros expand to. Not a stable API.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AppEvent;
pub use crate::bindings::exports::calimero::context::app::{
    AppError, AppInfo, FieldInfo, Guest, Intent, MethodInfo, MigrationInfo,
};
pub use crate::collections::{Crdt, Location};

/// Loading and storing the `#[app::state]` struct.
pub trait AppState: Sized {
    /// From `#[app::state(version = N)]`; 1 by default.
    const STATE_VERSION: u32;
    /// From `#[app::state(package = "..")]`; the crate name by default.
    const PACKAGE: &'static str;
    /// The crate's version.
    const VERSION: &'static str;
    /// Each field's name and collection type, in declaration order.
    const SCHEMA: &'static [(&'static str, &'static str)];
    /// Handles to every field's collection.
    fn __load() -> Self;
    /// Read-only handles to every field's collection as it was before the
    /// running migration.
    fn __load_frozen() -> Self;
    /// Writes a detached state (from `init`) to the roots.
    fn __store(self) -> crate::Result<()>;
    /// Whether a field is an authored collection: the app then answers
    /// `migrate_my_entries` and `count_my_pending`.
    const AUTHORED: bool = false;
    /// The calling member's authored entries written under an older state
    /// version, over every field.
    fn __count_my_pending(&self) -> crate::Result<u64> {
        Ok(0)
    }
    /// Rewrites them under the running state version; returns how many.
    fn __migrate_my_entries(&mut self) -> crate::Result<u64> {
        Ok(0)
    }
}

/// The methods every app with an authored field answers, unless it
/// defines its own of the same name.
pub const MIGRATE_MY_ENTRIES: &str = "migrate_my_entries";
/// See [`MIGRATE_MY_ENTRIES`].
pub const COUNT_MY_PENDING: &str = "count_my_pending";

#[derive(Serialize)]
struct MigrateMyEntriesSummary {
    converted: u64,
    remaining: u64,
}

fn authored_builtin<S: AppState>(method: &str) -> Option<Result<String, AppError>> {
    if !S::AUTHORED {
        return None;
    }
    let run = || -> crate::Result<String> {
        let mut state = S::__load();
        if method == MIGRATE_MY_ENTRIES {
            let converted = state.__migrate_my_entries()?;
            let remaining = state.__count_my_pending()?;
            Ok(serde_json::to_string(&MigrateMyEntriesSummary {
                converted,
                remaining,
            })?)
        } else {
            Ok(serde_json::to_string(&state.__count_my_pending()?)?)
        }
    };
    (method == MIGRATE_MY_ENTRIES || method == COUNT_MY_PENDING).then(|| run().map_err(app_error))
}

/// The dispatcher `#[app::logic]` generates.
pub trait App {
    /// The `#[app::state]` struct.
    type State: AppState;
    /// See the WIT `describe`.
    fn describe() -> AppInfo;
    /// See the WIT `init`.
    fn init(args: &str) -> Result<(), AppError>;
    /// See the WIT `call`.
    fn call(method: &str, args: &str) -> Result<String, AppError>;
    /// See the WIT `migrate`.
    fn migrate(from_version: u32) -> Result<(), AppError>;
    /// See the WIT `check-migration`.
    fn check_migration(from_version: u32) -> Result<(), AppError>;
}

/// Adapts an [`App`] to the WIT exports.
pub struct Export<T>(PhantomData<T>);

impl<T: App> Export<T> {
    fn running() {
        crate::authored::__set_running_state_version(T::State::STATE_VERSION);
    }
}

impl<T: App> Guest for Export<T> {
    fn describe() -> AppInfo {
        let mut info = T::describe();
        if T::State::AUTHORED {
            for (name, intent) in [
                (MIGRATE_MY_ENTRIES, Intent::Mutating),
                (COUNT_MY_PENDING, Intent::ReadOnly),
            ] {
                if !info.methods.iter().any(|m| m.name == name) {
                    info.methods.push(MethodInfo {
                        name: name.into(),
                        intent,
                    });
                }
            }
        }
        info
    }
    fn init(args_json: String) -> Result<(), AppError> {
        Self::running();
        T::init(&args_json)
    }
    fn call(method: String, args_json: String) -> Result<String, AppError> {
        Self::running();
        match T::call(&method, &args_json) {
            Err(AppError::UnknownMethod(m)) => {
                authored_builtin::<T::State>(&method).unwrap_or(Err(AppError::UnknownMethod(m)))
            }
            r => r,
        }
    }
    fn migrate(from_version: u32) -> Result<(), AppError> {
        Self::running();
        T::migrate(from_version)
    }
    fn check_migration(from_version: u32) -> Result<(), AppError> {
        Self::running();
        T::check_migration(from_version)
    }
}

/// A schema as the WIT declares it.
pub fn fields(schema: &[(&str, &str)]) -> Vec<FieldInfo> {
    schema
        .iter()
        .map(|(name, kind)| FieldInfo {
            name: (*name).to_string(),
            kind: (*kind).to_string(),
        })
        .collect()
}

/// A check's `bool` verdict as a result.
pub fn check_output(holds: bool, method: &str) -> Result<String, AppError> {
    if holds {
        value_output(())
    } else {
        Err(AppError::Failed(json_string(&format!(
            "migration check `{method}` failed"
        ))))
    }
}

/// Parses a method's arguments. An empty body or `null` counts as `{}`.
pub fn parse_args<A: DeserializeOwned>(method: &str, json: &str) -> Result<A, AppError> {
    let json = json.trim();
    let json = if json.is_empty() || json == "null" {
        "{}"
    } else {
        json
    };
    serde_json::from_str(json)
        .map_err(|e| AppError::InvalidArguments(format!("arguments of `{method}`: {e}")))
}

/// A method's plain return value as JSON.
pub fn value_output<T: Serialize>(value: T) -> Result<String, AppError> {
    serde_json::to_string(&value)
        .map_err(|e| AppError::Failed(json_string(&format!("result does not encode: {e}"))))
}

/// A method's `Result<T, E>` as JSON.
pub fn result_output<T: Serialize, E: Serialize>(r: Result<T, E>) -> Result<String, AppError> {
    match r {
        Ok(v) => value_output(v),
        Err(e) => Err(AppError::Failed(
            serde_json::to_string(&e).unwrap_or_else(|_| "null".into()),
        )),
    }
}

/// A method's `app::Result<T>`; storage errors stay storage errors.
pub fn app_result_output<T: Serialize>(r: crate::Result<T>) -> Result<String, AppError> {
    match r {
        Ok(v) => value_output(v),
        Err(e) => Err(app_error(e)),
    }
}

/// An [`crate::Error`] as the WIT error.
pub fn app_error(e: crate::Error) -> AppError {
    match e.as_storage() {
        Some(s) => AppError::Storage(s.clone()),
        None => AppError::Failed(serde_json::to_string(&e).unwrap_or_else(|_| "null".into())),
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "null".into())
}

/// The error for a method name nothing answers to.
pub fn unknown_method(method: &str) -> AppError {
    AppError::UnknownMethod(method.to_string())
}

/// Emits an event. A failure (emitting from a view, too many events) is
/// recorded by the node, which fails the call.
pub fn emit<E: AppEvent + ?Sized>(event: &E) {
    // Nothing to handle here: the host fails the whole call on any event
    // it refuses, whatever the app does with the error.
    let _ = crate::bindings::calimero::context::events::emit(event.kind(), &event.data());
}

/// One field of an event payload as JSON.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

pub use serde_json::{Map as JsonMap, Value as JsonValue};
