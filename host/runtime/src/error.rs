use thiserror::Error;

/// Why a component could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The bytes are not a component implementing `calimero:context/context-app`.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The host failed (I/O on the compile cache, ...).
    #[error("cannot load component: {0}")]
    Host(String),
}

/// Why a call failed. Every variant except [`CallError::Host`] is the app's
/// or the caller's doing; the node goes on.
#[derive(Debug, Error)]
pub enum CallError {
    /// The app has no such method.
    #[error("unknown method `{0}`")]
    UnknownMethod(String),
    /// The arguments did not match the method.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The method returned an error; the payload is its JSON.
    #[error("app error: {0}")]
    App(serde_json::Value),
    /// A view tried to change state, private storage or emit an event.
    #[error("method `{0}` is read-only and tried to write")]
    ReadOnly(String),
    /// A key, value or event was over its size limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The app emitted an event that cannot be delivered: too large, a bad
    /// kind or data that is not JSON. The whole call fails, even if the app
    /// ignored the error it got, so an event is never lost silently.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The call went over a per-call budget.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A vector index was out of range and the app passed the error on.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A write to an authored element another member owns, and the app
    /// passed the error on.
    #[error("not the owner: {0}")]
    NotOwner(String),
    /// Another storage error the app passed on.
    #[error("storage: {0}")]
    Storage(String),
    /// The call ran past its deadline and was stopped.
    #[error("the call ran longer than {0} ms and was stopped")]
    DeadlineExceeded(u64),
    /// A deterministic call (a migration) used up its fuel.
    #[error("the app used up its fuel budget of {0}")]
    OutOfFuel(u64),
    /// The app tried to use more memory than allowed.
    #[error("the app ran out of memory: {0}")]
    OutOfMemory(String),
    /// The app trapped: a panic, a stack overflow, an invalid operation.
    #[error("the app trapped: {0}")]
    Trapped(String),
    /// The app returned something that is not JSON.
    #[error("the app returned invalid JSON: {0}")]
    InvalidOutput(String),
    /// The context does not exist.
    #[error("context not found")]
    ContextNotFound,
    /// The host failed; this is a bug or an infrastructure failure.
    #[error("host failure: {0}")]
    Host(String),
}

impl CallError {
    /// A stable name for the error kind, for APIs and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::UnknownMethod(_) => "UnknownMethod",
            CallError::InvalidArguments(_) => "InvalidArguments",
            CallError::App(_) => "AppError",
            CallError::ReadOnly(_) => "ReadOnlyViolation",
            CallError::TooLarge(_) => "TooLarge",
            CallError::InvalidEvent(_) => "InvalidEvent",
            CallError::LimitExceeded(_) => "LimitExceeded",
            CallError::OutOfRange(_) => "OutOfRange",
            CallError::NotOwner(_) => "NotOwner",
            CallError::Storage(_) => "StorageError",
            CallError::DeadlineExceeded(_) => "DeadlineExceeded",
            CallError::OutOfFuel(_) => "OutOfFuel",
            CallError::OutOfMemory(_) => "OutOfMemory",
            CallError::Trapped(_) => "Trapped",
            CallError::InvalidOutput(_) => "InvalidOutput",
            CallError::ContextNotFound => "ContextNotFound",
            CallError::Host(_) => "InternalError",
        }
    }
}
