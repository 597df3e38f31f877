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
}

/// The dispatcher `#[app::logic]` generates.
pub trait App {
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

impl<T: App> Guest for Export<T> {
    fn describe() -> AppInfo {
        T::describe()
    }
    fn init(args_json: String) -> Result<(), AppError> {
        T::init(&args_json)
    }
    fn call(method: String, args_json: String) -> Result<String, AppError> {
        T::call(&method, &args_json)
    }
    fn migrate(from_version: u32) -> Result<(), AppError> {
        T::migrate(from_version)
    }
    fn check_migration(from_version: u32) -> Result<(), AppError> {
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
