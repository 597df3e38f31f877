"""Exceptions: every failure is a `MeroError` carrying the node's error type
and message.

`MeroError` subclasses `RuntimeError` because calimero-client-py raises
`RuntimeError` for failed calls, so `except RuntimeError` written for it keeps
working; argument errors found before any request is sent are
`InvalidArgumentError`, which is also a `ValueError` (upstream raises
`ValueError` for those).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

__all__ = [
    "MeroError",
    "NetworkError",
    "InvalidArgumentError",
    "BadRequestError",
    "AuthenticationError",
    "ForbiddenError",
    "NotFoundError",
    "ConflictError",
    "UnavailableError",
    "ServerError",
    "ExecutionError",
    "EventStreamError",
    "error_for_status",
]


class MeroError(RuntimeError):
    """A failed request.

    `error_type` is the node's stable error name (`ContextNotFound`,
    `InvalidGroupId`, `MigrationCheckFailed`, ...; for JSON-RPC the error's
    `type`, e.g. `FunctionCallError`), `message` its words, `status` the HTTP
    status (None when no answer came), `body` the decoded answer.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        status: Optional[int] = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.status = status
        self.body = body

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error_type={self.error_type!r}, "
            f"message={self.message!r}, status={self.status!r})"
        )


class NetworkError(MeroError):
    """No answer: the node could not be reached, or the connection broke."""


class InvalidArgumentError(MeroError, ValueError):
    """An argument was refused before sending (a malformed id, bad JSON)."""


class BadRequestError(MeroError):
    """HTTP 400, 415 or 422: the node refused the request's content."""


class AuthenticationError(MeroError):
    """HTTP 401: no token, or one the node does not accept, and none could be
    obtained (by refresh, login or the node's credential file)."""


class ForbiddenError(MeroError):
    """HTTP 403: the token or the member may not do this."""


class NotFoundError(MeroError):
    """HTTP 404: unknown id or route."""


class ConflictError(MeroError):
    """HTTP 409: refused in the current state (an upgrade refused, an
    application still in use, ...)."""


class UnavailableError(MeroError):
    """HTTP 503 or 504 (for example no member reachable on a join)."""


class ServerError(MeroError):
    """Any other 5xx."""


class ExecutionError(MeroError):
    """A JSON-RPC call answered with an error.

    `error_type` is upstream's error class (`FunctionCallError`,
    `SerdeError`, `ContextNotFound`, `Unauthorized`, `ParseError`,
    `InternalError`), `kind` the node's exact failure (`AppError`,
    `UnknownMethod`, `ReadOnly`, ...; may be None), `data` the error's data
    (for an app error, the app's JSON error), `body` the whole JSON-RPC
    response.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        kind: Optional[str] = None,
        data: Any = None,
        status: Optional[int] = None,
        body: Any = None,
    ) -> None:
        super().__init__(error_type, message, status=status, body=body)
        self.kind = kind
        self.data = data


class EventStreamError(MeroError):
    """An event stream ended in a way that cannot be resumed (the node
    dropped a WebSocket subscriber that fell behind, or SSE reconnects ran
    out)."""


_BY_STATUS = {
    400: (BadRequestError, "BadRequest"),
    401: (AuthenticationError, "Unauthorized"),
    403: (ForbiddenError, "Forbidden"),
    404: (NotFoundError, "NotFound"),
    409: (ConflictError, "Conflict"),
    415: (BadRequestError, "UnsupportedMediaType"),
    421: (ForbiddenError, "MisdirectedRequest"),
    422: (BadRequestError, "Unprocessable"),
    429: (UnavailableError, "TooManyRequests"),
    503: (UnavailableError, "Unavailable"),
    504: (UnavailableError, "Unreachable"),
}


def error_for_status(status: int, body: Any, text: str = "") -> MeroError:
    """The exception for a non-2xx answer: its class from the status, its
    type and message from the node's `{"error", "type"}` body."""
    cls, default_type = _BY_STATUS.get(
        status, (ServerError if status >= 500 else MeroError, f"Http{status}")
    )
    error_type = default_type
    message = text or f"HTTP {status}"
    if isinstance(body, Mapping):
        if isinstance(body.get("type"), str):
            error_type = body["type"]
        err = body.get("error")
        if isinstance(err, str):
            message = err
        elif isinstance(err, Mapping):
            # A JSON-RPC error object outside a call (e.g. a 400 envelope).
            error_type = str(err.get("type", error_type))
            message = rpc_message(err.get("data"))
    return cls(error_type, message, status=status, body=body)


def rpc_message(data: Any) -> str:
    """What to tell a person about a JSON-RPC error's `data`."""
    if isinstance(data, str):
        return data
    if isinstance(data, Mapping) and set(data) == {"message"}:
        return str(data["message"])
    if data is None:
        return ""
    return json.dumps(data, sort_keys=True)
