"""`mero_client`: a Python client of a mero node (`merod`).

The admin REST API and JSON-RPC, synchronously (`Client`) or with asyncio
(`AsyncClient`), with events over WebSocket and SSE as async iterators.
Entry points, method names, arguments and results follow
calimero-client-py, so scripts written for it change only their import:

```python
from mero_client import create_connection, create_client

client = create_client(create_connection("http://127.0.0.1:2528", "node1"))
app = client.install_dev_application("/abs/path/kv_store.wasm")["data"]["applicationId"]
ns = client.create_namespace(app)["data"]["namespaceId"]
ctx = client.create_context(app, ns)["data"]["contextId"]
client.execute_function(ctx, "set", '{"key": "a", "value": "b"}')
print(client.execute_function(ctx, "get", {"key": "a"})["result"]["output"])
```

Modules: `mero_client.connection` (connections, tokens, timeouts and
retries), `mero_client.client` and `mero_client.aio` (the clients),
`mero_client.events` (subscriptions), `mero_client.types` (the results'
`TypedDict`s), `mero_client.errors` (exceptions),
`mero_client.capabilities` (roles and capability flags),
`mero_client.auth` (tokens and their cache).
"""

from .aio import AsyncClient, create_async_client
from .auth import AuthMode, JwtToken, get_token_cache_dir, get_token_cache_path
from .capabilities import Capability, capability_mask
from .client import Client, cascade_summary, create_client
from .connection import ConnectionInfo, create_connection
from .errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EventStreamError,
    ExecutionError,
    ForbiddenError,
    InvalidArgumentError,
    MeroError,
    NetworkError,
    NotFoundError,
    ServerError,
    UnavailableError,
)
from .events import Event, SseSubscription, WsSubscription

VERSION = "0.1.0"
__version__ = VERSION

__all__ = [
    "create_connection",
    "create_client",
    "create_async_client",
    "ConnectionInfo",
    "Client",
    "AsyncClient",
    "JwtToken",
    "AuthMode",
    "Capability",
    "capability_mask",
    "cascade_summary",
    "get_token_cache_path",
    "get_token_cache_dir",
    "Event",
    "WsSubscription",
    "SseSubscription",
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
    "VERSION",
]
