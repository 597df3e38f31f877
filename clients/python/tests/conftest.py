"""Real `merod` processes for the tests, on 127.0.0.1 only.

Each node gets its own temporary home (`merod --home H --node N init
--server-port P --swarm-port Q`, then `merod --home H --node N run`) on free
ports; waits poll with a timeout, never a fixed sleep. Binaries and apps:

- `MEROD` (default `<repo>/target/debug/merod`);
- `MERO_WASM_DIR` (default `<repo>/target/guest/wasm32-wasip2/wasm`, where
  the fixtures crate builds the apps, then `<repo>/target/wasm32-wasip2/wasm`)
  holding `kv_store.wasm` and the migration fixtures.

A missing binary or app fails the tests (it never skips them).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

import httpx
import pytest

import mero_client
from mero_client import Client, MeroError, NotFoundError, create_client, create_connection

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 60.0
CONVERGE = 60.0
FAST_SYNC = ["sync.frequency_ms=300"]

T = TypeVar("T")


def merod_path() -> Path:
    path = Path(os.environ.get("MEROD", REPO / "target" / "debug" / "merod"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `cargo build -p merod` (or set MEROD)")
    return path


def wasm_dir() -> Path:
    candidates = [
        Path(os.environ["MERO_WASM_DIR"]) if os.environ.get("MERO_WASM_DIR") else None,
        REPO / "target" / "guest" / "wasm32-wasip2" / "wasm",
        REPO / "target" / "wasm32-wasip2" / "wasm",
    ]
    for c in candidates:
        if c is not None and (c / "kv_store.wasm").is_file():
            return c
    pytest.fail(
        "kv_store.wasm is missing: build it with clients/python/scripts/ci, or "
        "`cargo build -p kv-store --target wasm32-wasip2 --profile wasm` (or set MERO_WASM_DIR)"
    )


def app_path(name: str) -> str:
    """The component of an app, e.g. `kv_store` or `migration_suite_v1`."""
    path = wasm_dir() / f"{name}.wasm"
    if not path.is_file():
        pytest.fail(f"{path} is missing: clients/python/scripts/ci builds it")
    return str(path)


_FIRST_PORT, _PORT_COUNT = 20_000, 12_000
_next_port = (os.getpid() * 997) % _PORT_COUNT


def free_port() -> int:
    """A free port on 127.0.0.1 below the kernel's ephemeral range (which
    outgoing connections draw from, so a port picked there can be some
    client's source port by the time a node binds it), never twice in this
    process. The node's own picker (mero_config::free_loopback_port) works
    the same way."""
    global _next_port
    for _ in range(_PORT_COUNT):
        port = _FIRST_PORT + _next_port % _PORT_COUNT
        _next_port += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def wait_for(
    what: str, probe: Callable[[], Optional[T]], timeout: float = CONVERGE, interval: float = 0.05
) -> T:
    """Polls `probe` until it returns something other than None (exceptions
    count as not yet); fails after `timeout` naming `what` and the last
    answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = probe()
            if value is not None:
                return value
            last = None
        except Exception as e:  # noqa: BLE001 - polling
            last = e
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


class Node:
    """One `merod` on 127.0.0.1 under a temporary home."""

    def __init__(
        self,
        name: str,
        config: Sequence[str] = (),
        users: Optional[Dict[str, str]] = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"mero-py-{name}-")
        self.home = Path(self._tmp.name)
        self.name = name
        self.port = free_port()
        self.swarm_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cache_dir = self.home / "token-cache"
        self.proc: Optional[subprocess.Popen] = None
        self.merod(
            "init", "--server-port", str(self.port), "--swarm-port", str(self.swarm_port)
        )
        if config:
            self.merod("config", *config)
        for user, password in (users or {}).items():
            self.merod("auth", "set-password", "--user", user, stdin=password + "\n")
        self.token = json.loads((self.dir / "credential.json").read_text())["access_token"]
        self.run()

    @property
    def dir(self) -> Path:
        return self.home / self.name

    @property
    def log_path(self) -> Path:
        return self.dir / "merod.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def merod(self, *args: str, stdin: Optional[str] = None) -> str:
        out = subprocess.run(
            [str(merod_path()), "--home", str(self.home), "--node", self.name, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            pytest.fail(f"merod {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
        return out.stdout

    def run(self) -> None:
        assert self.proc is None, "already running"
        log = open(self.log_path, "ab")
        env = dict(os.environ, RUST_LOG="info", NO_COLOR="1")
        self.proc = subprocess.Popen(
            [str(merod_path()), "--home", str(self.home), "--node", self.name, "run"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
        log.close()

        def healthy() -> Optional[bool]:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                pytest.fail(f"merod exited with {code}:\n{self.log()[-4000:]}")
            r = httpx.get(f"{self.url}/admin-api/health", timeout=2.0, trust_env=False)
            return True if r.status_code == 200 else None

        wait_for(f"{self.name} to answer its health check", healthy, START_TIMEOUT)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def connection(self, **options: Any) -> mero_client.ConnectionInfo:
        """A connection that finds the node's credential by its home."""
        options.setdefault("home", self.home)
        options.setdefault("token_cache_dir", self.cache_dir)
        return create_connection(self.url, self.name, **options)

    def client(self, **options: Any) -> Client:
        return create_client(self.connection(**options))


@pytest.fixture(autouse=True, scope="session")
def _isolated_home() -> Iterator[Path]:
    """HOME (hence `~/.merobox/auth_cache` and `~/.calimero`) and
    CALIMERO_HOME point into a temporary directory for the whole run."""
    saved = {k: os.environ.get(k) for k in ("HOME", "CALIMERO_HOME")}
    with tempfile.TemporaryDirectory(prefix="mero-py-home-") as home:
        os.environ["HOME"] = home
        os.environ.pop("CALIMERO_HOME", None)
        try:
            yield Path(home)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    """One node for a test module, with a user `alice` (password
    `alice-password`)."""
    n = Node("node1", users={"alice": "alice-password"})
    try:
        yield n
    finally:
        n.close()


@pytest.fixture(scope="module")
def client(node: Node) -> Iterator[Client]:
    c = node.client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def kv_app(client: Client) -> str:
    """kv-store installed on the module's node; its application id."""
    return client.install_dev_application(app_path("kv_store"))["data"]["applicationId"]


def new_namespace(client: Client, app: str) -> Dict[str, str]:
    """A fresh namespace with its first context: `{"namespaceId", "contextId"}`."""
    return dict(client.create_namespace(app)["data"])


def route_missing(client: Client, method: str, path: str) -> bool:
    """Whether the node has no such route (404 `RouteNotFound` or 405)."""
    try:
        call = (
            mero_client._http.Call(method, path)
            if method == "GET"
            else mero_client._http.Call(method, path, json={})
        )
        client.connection.request(call)
    except NotFoundError as e:
        return e.error_type == "RouteNotFound"
    except MeroError as e:
        return e.status == 405
    return False


def require_route(client: Client, method: str, path: str, route: str, issue: str) -> None:
    """Skips the test, naming the route (`route`, as upstream writes it),
    while the node does not serve `path`."""
    if route_missing(client, method, path):
        pytest.skip(f"merod has no route {method} {route} yet ({issue})")


def nodes(names: List[str], config: Sequence[str] = FAST_SYNC) -> List[Node]:
    started: List[Node] = []
    try:
        for name in names:
            started.append(Node(name, config))
    except BaseException:
        for n in started:
            n.close()
        raise
    return started
