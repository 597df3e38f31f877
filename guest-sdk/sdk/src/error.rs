use serde::Serialize;
use serde::ser::SerializeMap;

use crate::bindings::calimero::context::types::StorageError;

/// An app error: a message, a JSON payload, or a failed storage operation.
///
/// Methods that return `app::Result<T>` report it to the client as JSON:
/// a message as a string, a payload as itself, a storage error as
/// `{"kind": "StorageError", "data": "..."}`.
#[derive(Debug)]
pub struct Error(Kind);

#[derive(Debug)]
enum Kind {
    Message(String),
    Payload(serde_json::Value),
    Storage(StorageError),
}

impl Error {
    /// An error carrying a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error(Kind::Message(message.into()))
    }

    /// An error carrying any serializable payload, e.g.
    /// `Error::payload(json!({"kind": "NotFound", "data": key}))`.
    pub fn payload(value: impl Serialize) -> Self {
        Error(Kind::Payload(
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// The storage error inside, if this is one.
    pub fn as_storage(&self) -> Option<&StorageError> {
        match &self.0 {
            Kind::Storage(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is a write to an authored entry another member owns.
    pub fn is_not_owner(&self) -> bool {
        matches!(&self.0, Kind::Storage(StorageError::NotOwner(_)))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Message(m) => f.write_str(m),
            Kind::Payload(v) => write!(f, "{v}"),
            Kind::Storage(e) => write!(f, "storage: {}", describe_storage_error(e)),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn describe_storage_error(e: &StorageError) -> String {
    match e {
        StorageError::ReadOnly => "read-only: a view cannot change state".to_string(),
        StorageError::TooLarge(s) => format!("too large: {s}"),
        StorageError::LimitExceeded(s) => format!("limit exceeded: {s}"),
        StorageError::OutOfRange(s) => format!("out of range: {s}"),
        StorageError::NotOwner(s) => format!("not the owner: {s}"),
        StorageError::Other(s) => s.clone(),
    }
}

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Kind::Message(m) => s.serialize_str(m),
            Kind::Payload(v) => v.serialize(s),
            Kind::Storage(e) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("kind", "StorageError")?;
                map.serialize_entry("data", &describe_storage_error(e))?;
                map.end()
            }
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error(Kind::Storage(e))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::msg(format!("JSON: {e}"))
    }
}

impl From<String> for Error {
    fn from(m: String) -> Self {
        Error::msg(m)
    }
}

impl From<&str> for Error {
    fn from(m: &str) -> Self {
        Error::msg(m)
    }
}

/// Result of app methods and SDK operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
