"""The real merobox (from PyPI, installed with `--no-deps` so upstream's
compiled calimero-client-py is absent) runs a workflow in its no-docker
(binary) mode against our merod, talking to it through our
`calimero_client_py`.

merobox starts the nodes itself: `merod --home data/N/N --node N init
--server-port P --swarm-port Q --auth-mode proxy`, sets `dev = true` in
config.toml, then `merod ... run`, all under the directory it runs in (its
pid files are `data/.pids/*.pid` there). `--auth-mode proxy` is merobox's
documented default for upstream merod ("no embedded auth"); our merod accepts
it only on loopback, and merod binds 127.0.0.1 by default. `--e2e-mode` is
not passed, so merobox does not turn `discovery.mdns` on (our merod ignores
that key anyway). The workflow is tests/workflows/merobox-kv-two-nodes.yml.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Iterator

import pytest
import toml  # merobox's requirements (tests/merobox-requirements.txt)
import yaml

from conftest import app_path, free_port, merod_path

WORKFLOW = Path(__file__).parent / "workflows" / "merobox-kv-two-nodes.yml"
MEROBOX_VERSION = "0.6.86"
RUN_TIMEOUT = 300


def _stop_leftovers(run_dir: Path) -> None:
    """Stops merod processes merobox started in `run_dir` and left running
    (after a failure or a timeout): by the pids merobox recorded, and only if
    that process is our merod under `run_dir`."""
    for pid_file in (run_dir / "data" / ".pids").glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        args = [a.decode(errors="replace") for a in cmdline]
        if not args or args[0] != str(merod_path()) or not any(str(run_dir) in a for a in args):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:
        _stop_leftovers(tmp_path)


def test_merobox_uses_our_calimero_client_py() -> None:
    assert metadata.version("merobox") == MEROBOX_VERSION
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("calimero-client-py")  # upstream's is not installed
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import merobox.commands.client, calimero_client_py, importlib.metadata as m;"
            "print(calimero_client_py.__file__);"
            "print(m.version('mero-client-calimero-compat'))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    path, version = out.stdout.split()
    assert Path(path).parent.name == "calimero_client_py"
    assert version


def test_merobox_runs_a_workflow_against_merod(run_dir: Path) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    for node in workflow["nodes"].values():
        node["port"] = free_port()
        node["rpc_port"] = free_port()
    (run_dir / "workflow.yml").write_text(yaml.safe_dump(workflow, sort_keys=False))
    shutil.copy(app_path("kv_store"), run_dir / "kv_store.wasm")

    env = dict(
        os.environ,
        COLUMNS="400",  # rich wraps at 80 columns otherwise
        NO_COLOR="1",
        NO_PROXY="localhost,127.0.0.1",
        no_proxy="localhost,127.0.0.1",
    )
    cmd = [
        sys.executable, "-m", "merobox.cli", "bootstrap", "run", "workflow.yml",
        "--no-docker", "--binary-path", str(merod_path()),
        "--auth-mode", "proxy", "--log-level", "info",
    ]  # fmt: skip
    try:
        out = subprocess.run(
            cmd,
            cwd=run_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"merobox did not finish in {RUN_TIMEOUT}s:\n{e.stdout}\n{e.stderr}")
    logs = "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
        for p in sorted((run_dir / "data").glob("*/logs/*.log"))
    )
    report = f"exit {out.returncode}\n{out.stdout[-12000:]}\n{out.stderr[-4000:]}\n{logs}"
    assert out.returncode == 0, report
    assert "Workflow completed successfully" in out.stdout, report
    assert "got_on_node2: {'output': 'hello from node 1'}" in out.stdout, report
    assert "got_on_node1: {'output': 'hi from node 2'}" in out.stdout, report
    assert "Assertion #2: contains" in out.stdout, report
    assert "Stop Summary: 2/2 nodes stopped successfully" in out.stdout, report

    # What merobox left in each node's config: loopback only, no mDNS, no
    # bootstrap peers, the auth mode it asked for.
    for name, node in workflow["nodes"].items():
        text = (run_dir / "data" / name / name / name / "config.toml").read_text()
        config = toml.loads(text)
        assert config["server"]["listen"] == [f"/ip4/127.0.0.1/tcp/{node['rpc_port']}"]
        assert config["swarm"]["listen"] == [f"/ip4/127.0.0.1/tcp/{node['port']}"]
        assert config["server"]["auth_mode"] == "proxy"
        assert config["discovery"]["mdns"] is False
        assert config["bootstrap"]["nodes"] == []
        assert config["dev"] is True
