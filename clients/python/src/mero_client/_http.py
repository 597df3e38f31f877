"""What one request is (`Call`), and how an answer becomes a result or an
exception; shared by the synchronous and the asyncio transports."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Mapping, Optional
from urllib.parse import quote

from .errors import ExecutionError, error_for_status, rpc_message

_NO_BODY = object()


def seg(value: str) -> str:
    """A path segment, escaped."""
    return quote(str(value), safe="")


@dataclasses.dataclass(frozen=True)
class Call:
    """One HTTP request and what to make of its answer."""

    method: str
    path: str
    json: Any = _NO_BODY
    content: Optional[bytes] = None
    content_type: Optional[str] = None
    params: Optional[Mapping[str, str]] = None
    jsonrpc: bool = False
    public: bool = False
    transform: Optional[Callable[[Any], Any]] = None

    @property
    def idempotent(self) -> bool:
        """Whether sending it twice is harmless (then it is retried after a
        broken connection or a 503)."""
        return self.method in ("GET", "HEAD")

    def body(self) -> "tuple[Optional[bytes], dict[str, str]]":
        """The bytes to send and their headers."""
        if self.content is not None:
            return self.content, {"Content-Type": self.content_type or "application/octet-stream"}
        if self.json is not _NO_BODY:
            return json.dumps(self.json).encode(), {"Content-Type": "application/json"}
        return None, {}


def parse_json(content: bytes) -> Any:
    """The JSON of an answer; None when empty or not JSON."""
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def decode(call: Call, status: int, content: bytes) -> Any:
    """The result of `call` from its answer, or the exception it raises."""
    body = parse_json(content)
    if call.jsonrpc and isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        err = body["error"]
        raise ExecutionError(
            str(err.get("type", "JsonRpcError")),
            rpc_message(err.get("data")),
            kind=err.get("kind") if isinstance(err.get("kind"), str) else None,
            data=err.get("data"),
            status=status,
            body=body,
        )
    if status >= 400:
        text = content.decode("utf-8", "replace")[:500] if body is None else ""
        raise error_for_status(status, body, text)
    if body is None and content:
        body = content.decode("utf-8", "replace")
    return call.transform(body) if call.transform else body
