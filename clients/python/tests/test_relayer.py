"""The relayer and token-gated invitations (issue #23) through the client,
against a real Ethereum chain on 127.0.0.1: Hardhat Network from
`tests/chain` (`npm ci` there, as `.ci/run` does), a test ERC-20 compiled
with solc from npm and deployed here. Node 1 has `[chains.ethereum]
rpc_url`; node 2 joins with an invitation gated by a token balance."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from mero_client import BadRequestError, ForbiddenError

from conftest import FAST_SYNC, app_path, free_port, nodes, wait_for

CHAIN_DIR = Path(__file__).resolve().parents[3] / "tests" / "chain"


class Chain:
    def __init__(self) -> None:
        hardhat = CHAIN_DIR / "node_modules" / ".bin" / "hardhat"
        if not hardhat.exists():
            pytest.skip(f"{hardhat} is missing: run `npm ci` in {CHAIN_DIR} (.ci/run does)")
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(
            [str(hardhat), "node", "--hostname", "127.0.0.1", "--port", port],
            cwd=CHAIN_DIR,
            env={**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> Any:
            try:
                return self.call("eth_chainId", [])
            except OSError:
                return None

        wait_for("the local chain", up, timeout=60)

    def call(self, method: str, params: List[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        req = urllib.request.Request(
            self.url, body.encode(), {"content-type": "application/json"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as r:
            answer = json.load(r)
        assert "result" in answer, answer
        return answer["result"]

    def send(self, tx: dict) -> dict:
        receipt = self.call("eth_getTransactionReceipt", [self.call("eth_sendTransaction", [tx])])
        assert receipt["status"] == "0x1", receipt
        return receipt

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    c = Chain()
    try:
        yield c
    finally:
        c.close()


def sign(key: Any, message: str) -> str:
    return "0x" + bytes(key.sign_message(encode_defunct(text=message)).signature).hex()


def test_balances_attestations_and_a_token_gated_invitation(chain: Chain) -> None:
    owner = chain.call("eth_accounts", [])[0]
    bytecode = json.loads(
        subprocess.check_output(["node", "compile.mjs"], cwd=CHAIN_DIR)
    )["bytecode"]
    token = chain.send({"from": owner, "data": bytecode + format(1_000_000, "064x")})[
        "contractAddress"
    ]
    rich, poor = Account.create(), Account.create()
    chain.send(
        {
            "from": owner,
            "to": token,
            "data": "0xa9059cbb" + rich.address[2:].lower().rjust(64, "0") + format(250, "064x"),
        }
    )

    (n1,) = nodes(["node1"], [*FAST_SYNC, f"chains.ethereum.rpc_url={chain.url}"])
    n2, n3 = nodes(["node2", "node3"])
    try:
        c1, c2, c3 = n1.client(), n2.client(), n3.client()

        reading = c1.chain_balance("ethereum", rich.address, token=token)["data"]
        assert reading["balance"] == "250" and reading["network"] == "eip155:31337"
        attested = c1.attest_chain("ethereum", rich.address, 100, token=token)["data"]
        assert attested["holds"] is True and attested["observed"] == "250"
        assert c2.verify_attestation(attested)["data"]["valid"] is True
        with pytest.raises(BadRequestError) as e:
            c2.verify_attestation({**attested, "observed": "1000"})
        assert e.value.error_type == "AttestationRefused"
        with pytest.raises(BadRequestError) as e:
            c2.chain_balance("ethereum", rich.address)
        assert e.value.error_type == "RelayerNotConfigured"
        with pytest.raises(BadRequestError) as e:
            c1.chain_balance("near", "alice.near")
        assert e.value.error_type == "RelayerUnsupported"

        app = c1.install_dev_application(app_path("kv_store"))["data"]["applicationId"]
        ns = c1.create_namespace(app)["data"]["namespaceId"]
        gate = f"ethereum:{token}:100"
        with pytest.raises(BadRequestError) as e:
            c1.create_namespace_invitation(ns, min_token_balances=[gate])
        assert e.value.error_type == "InvalidTokenBalance"

        def join(client: Any, wallet: Any) -> Any:
            invitation = c1.create_namespace_invitation(
                ns,
                chain_accounts=[f"ethereum:{wallet.address}"],
                min_token_balances=[gate],
            )["data"]["invitation"]
            challenge = client.get_chain_challenge(ns, "ethereum", wallet.address)["data"]
            proof = {"signature": sign(wallet, challenge["message"])}
            return client.join_namespace(ns, invitation, chain_proofs=[proof])

        with pytest.raises(ForbiddenError) as e:
            join(c3, poor)
        assert e.value.error_type == "TokenBalanceTooLow"
        assert f"{poor.address} holds 0" in str(e.value)
        assert c1.list_attestations(ns)["data"]["attestations"] == []

        join(c2, rich)
        assert len(c1.list_group_members(ns)["members"]) == 2
        recorded = c1.list_attestations(ns)["data"]["attestations"]
        assert [(a["statement"]["account"], a["holds"]) for a in recorded] == [
            (rich.address, True)
        ]
    finally:
        for n in (n1, n2, n3):
            n.close()
