//! Errors as HTTP responses: `{"error": "<message>", "type": "<Kind>"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mero_api::ErrorBody;
use mero_node::CallError;
use mero_node::NodeError;

/// An admin API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: String,
    message: String,
}

impl ApiError {
    /// A 400.
    pub fn bad(kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A 404.
    pub fn not_found(kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// Any status.
    pub fn status(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A 403.
    pub fn forbidden(kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            kind: kind.into(),
            message: message.into(),
        }
    }
}

/// Status of a failed app call when reached through the admin API.
fn call_status(e: &CallError) -> StatusCode {
    match e {
        CallError::ContextNotFound => StatusCode::NOT_FOUND,
        CallError::Host(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            NodeError::NotFound { .. } => StatusCode::NOT_FOUND,
            NodeError::Forbidden { .. } => StatusCode::FORBIDDEN,
            NodeError::Conflict { .. } => StatusCode::CONFLICT,
            NodeError::Call(c) => call_status(c),
            NodeError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::Unreachable { .. } => StatusCode::GATEWAY_TIMEOUT,
            NodeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "internal error answering a request");
        }
        ApiError {
            status,
            kind: e.kind().to_string(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(ErrorBody {
                error: self.message,
                kind: self.kind,
            }),
        )
            .into_response()
    }
}

/// Result of handlers.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
