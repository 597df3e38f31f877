"""Two real `merod` processes on 127.0.0.1 and a headless Chromium.

Nodes are started as in clients/python's conftest (`merod --home H --node N
init --server-port P --swarm-port Q`, then `run`), on ports below the
kernel's ephemeral range; waits poll with a timeout, never a fixed sleep.
Binaries and apps:

- `MEROD` (default `<repo>/target/debug/merod`);
- `MERO_WASM_DIR` (default `<repo>/target/guest/wasm32-wasip2/wasm`)
  holding `kv_store.wasm` and the migration fixtures.

The browser is the system's Chromium (`MERO_CHROMIUM`, default
`/usr/bin/chromium`); Playwright never downloads one. Screenshots go to
`MERO_DASHBOARD_SCREENSHOTS` (default `<repo>/target/dashboard-screenshots`).
A missing binary, app or browser fails the tests (it never skips them).
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
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
CONVERGE = 60.0
T = TypeVar("T")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def merod_path() -> Path:
    path = Path(os.environ.get("MEROD", REPO / "target" / "debug" / "merod"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `cargo build -p merod` (or set MEROD)")
    return path


def app_path(name: str) -> str:
    """The component of a test app, e.g. `kv_store`."""
    base = Path(os.environ.get("MERO_WASM_DIR", REPO / "target" / "guest" / "wasm32-wasip2" / "wasm"))
    path = base / f"{name}.wasm"
    if not path.is_file():
        pytest.fail(f"{path} is missing: dashboard/scripts/ci builds it")
    return str(path)


_FIRST_PORT, _PORT_COUNT = 20_000, 12_000
_next_port = (os.getpid() * 991 + 7) % _PORT_COUNT


def free_port() -> int:
    """A free port on 127.0.0.1 below the ephemeral range, never twice in
    this process (the same scheme as clients/python's conftest)."""
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


def wait_for(what: str, probe: Callable[[], Optional[T]], timeout: float = CONVERGE, interval: float = 0.1) -> T:
    """Polls `probe` until it returns something other than None (exceptions
    count as not yet); fails after `timeout` naming `what`."""
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

    def __init__(self, name: str, config: Sequence[str] = (), users: Optional[Dict[str, str]] = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"mero-dash-{name}-")
        self.home = Path(self._tmp.name)
        self.name = name
        self.port = free_port()
        self.swarm_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.merod("init", "--server-port", str(self.port), "--swarm-port", str(self.swarm_port))
        if config:
            self.merod("config", *config)
        for user, password in (users or {}).items():
            self.merod("auth", "set-password", "--user", user, stdin=password + "\n")
        self.token: str = json.loads((self.dir / "credential.json").read_text())["access_token"]
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60.0, trust_env=False
        )
        self.run()

    @property
    def dir(self) -> Path:
        return self.home / self.name

    def log(self) -> str:
        try:
            return (self.dir / "merod.log").read_text(errors="replace")
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
        log = open(self.dir / "merod.log", "ab")
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

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """An admin API call with the root credential; its JSON answer."""
        r = self.http.request(method, path, json=body)
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def install(self, app: str) -> str:
        return self.api("POST", "/admin-api/install-dev-application", {"path": app_path(app), "metadata": []})[
            "data"
        ]["applicationId"]

    def execute(self, context: str, method: str, args: Dict[str, Any]) -> Any:
        r = self.api(
            "POST",
            "/jsonrpc",
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "execute",
                "params": {"contextId": context, "method": method, "argsJson": args},
            },
        )
        assert r.get("error") is None, r
        return r["result"]["output"]

    def close(self) -> None:
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._tmp.cleanup()


@pytest.fixture(scope="session")
def node1() -> Iterator[Node]:
    """The node most tests drive, with a user `alice` (password
    `alice-password`) for the login flow."""
    n = Node("node1", ["sync.frequency_ms=300"], users={"alice": "alice-password"})
    try:
        yield n
    finally:
        n.close()


@pytest.fixture(scope="session")
def node2(node1: Node) -> Iterator[Node]:
    """A second node, which joins node1's namespace from its dashboard."""
    n = Node("node2", ["sync.frequency_ms=300"])
    try:
        yield n
    finally:
        n.close()


@pytest.fixture(scope="session")
def playwright_() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_: Playwright) -> Iterator[Browser]:
    executable = os.environ.get("MERO_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).is_file():
        pytest.fail(f"{executable} is missing: `apt-get install -y chromium` (dashboard/scripts/ci does)")
    b = playwright_.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    d = Path(os.environ.get("MERO_DASHBOARD_SCREENSHOTS", REPO / "target" / "dashboard-screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


class Dashboard:
    """Opens dashboard pages of a node in the browser, signed in with a
    token (as a pasted token is: in the tab's sessionStorage)."""

    def __init__(self, browser: Browser, shots: Path) -> None:
        self.browser = browser
        self.shots = shots
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []
        # A tab one test leaves open for the next (the event stream).
        self.events_tab: Optional[Page] = None

    def context(self, node: Optional[Node] = None) -> BrowserContext:
        ctx = self.browser.new_context(viewport={"width": 1360, "height": 900}, permissions=["clipboard-read", "clipboard-write"])
        ctx.set_default_timeout(30_000)
        if node is not None:
            ctx.add_init_script(
                f"window.sessionStorage.setItem('mero.dashboard.access', {json.dumps(node.token)});"
            )
        self.contexts.append(ctx)
        return ctx

    def open(self, node: Node, route: str = "node", ctx: Optional[BrowserContext] = None) -> Page:
        page = (ctx or self.context(node)).new_page()
        page.on("pageerror", lambda e: self.errors.append(f"{node.name}: {e}"))
        page.on(
            "console",
            lambda m: self.errors.append(f"{node.name} console: {m.text}") if m.type == "error" else None,
        )
        page.goto(f"{node.url}/admin-dashboard/#/{route}")
        page.wait_for_selector("nav a.active")
        return page

    def shot(self, page: Page, name: str) -> None:
        page.wait_for_timeout(150)
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def close(self) -> None:
        for c in self.contexts:
            c.close()


@pytest.fixture(scope="module")
def dashboard(browser: Browser, shots: Path) -> Iterator[Dashboard]:
    d = Dashboard(browser, shots)
    try:
        yield d
    finally:
        d.close()
