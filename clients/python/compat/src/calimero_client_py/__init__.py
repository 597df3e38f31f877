"""`calimero_client_py` over `mero_client`: the module name, entry points and
behaviour of calimero-client-py, so that merobox (whose no-docker mode
imports this name) runs against `merod` with this client.

Differences from `mero_client` itself, to behave as upstream does:

- `Client.execute_function` returns the JSON-RPC response when the call
  failed too (with its `error` object), rather than raising
  `ExecutionError`; merobox inspects `error` in the body.
- `ClientError(error_type, message)` is the base exception (`MeroError`),
  so `except ClientError` also catches every failed request; failed
  requests are `RuntimeError`s and bad arguments `ValueError`s, as
  upstream's.

Everything else is `mero_client`'s (see its README for the differences
from calimero-client-py).
"""

from __future__ import annotations

from typing import Any, Optional

from mero_client import AuthMode, ConnectionInfo, JwtToken, VERSION
from mero_client import Client as _Client
from mero_client import create_connection as _create_connection
from mero_client import get_token_cache_dir, get_token_cache_path
from mero_client._specs import JsonLike
from mero_client.errors import ExecutionError, MeroError

ClientError = MeroError
"""Upstream's error type: `error_type` and `message`."""

__all__ = [
    "create_connection",
    "create_client",
    "ConnectionInfo",
    "Client",
    "JwtToken",
    "ClientError",
    "AuthMode",
    "get_token_cache_path",
    "get_token_cache_dir",
    "VERSION",
]


class Client(_Client):
    """`mero_client.Client` with upstream's `execute_function`."""

    def execute_function(  # type: ignore[override]
        self,
        context_id: str,
        method: str,
        args: Optional[JsonLike] = None,
        executor_public_key: str = "",
    ) -> Any:
        """The JSON-RPC response, `result` or `error` (upstream's behaviour)."""
        try:
            return super().execute_function(context_id, method, args, executor_public_key)
        except ExecutionError as e:
            if isinstance(e.body, dict):
                return e.body
            raise


def create_connection(api_url: str, node_name: Optional[str] = None, **options: Any) -> ConnectionInfo:
    """`mero_client.create_connection` (same keyword options)."""
    return _create_connection(api_url, node_name, **options)


def create_client(connection: ConnectionInfo) -> Client:
    """A `Client` over `connection`."""
    return Client(connection)
