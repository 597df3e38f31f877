"""Chain identities (issue #23): a member proves an Ethereum account by
signing the node's challenge with eth-account, as a wallet's
`personal_sign` would; forged, replayed and wrong-account proofs are
refused and change nothing."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from mero_client import BadRequestError, Client

from conftest import new_namespace


def sign(key: Account, message: str) -> str:
    return "0x" + bytes(key.sign_message(encode_defunct(text=message)).signature).hex()


def test_a_member_proves_an_ethereum_account(client: Client, kv_app: str) -> None:
    ns = new_namespace(client, kv_app)["namespaceId"]
    wallet, other = Account.create(), Account.create()

    challenge = client.get_chain_challenge(ns, "ethereum", wallet.address.lower())["data"]
    # The account comes back EIP-55 checksummed, and the message names it.
    assert challenge["account"] == wallet.address
    assert f"account: {wallet.address}" in challenge["message"]
    assert f"namespace: {ns}" in challenge["message"]
    assert "personal_sign" in challenge["signing"]

    # Another key's signature: refused, nothing recorded.
    with pytest.raises(BadRequestError) as e:
        client.prove_chain_identity(ns, "ethereum", wallet.address, sign(other, challenge["message"]))
    assert e.value.error_type == "ChainProofRefused"
    assert "wrong account" in str(e.value)
    # A tampered message: refused.
    with pytest.raises(BadRequestError):
        client.prove_chain_identity(
            ns, "ethereum", wallet.address, sign(wallet, challenge["message"] + " ")
        )
    assert client.list_chain_identities(ns)["data"]["identities"] == []

    signature = sign(wallet, challenge["message"])
    proven = client.prove_chain_identity(ns, "ethereum", wallet.address, signature)["data"]
    assert proven["account"] == wallet.address and proven["onChain"] == "verified"
    listed = client.list_chain_identities(ns)["data"]["identities"]
    assert [(i["chain"], i["account"]) for i in listed] == [("ethereum", wallet.address)]
    me = client.list_group_members(ns)["members"][0]["identity"]
    assert listed[0]["member"] == me

    # Replayed: the nonce proved once; the next challenge is a new one.
    with pytest.raises(BadRequestError) as e:
        client.prove_chain_identity(ns, "ethereum", wallet.address, signature)
    assert "replayed" in str(e.value)
    again = client.get_chain_challenge(ns, "ethereum", wallet.address)["data"]
    assert again["nonce"] != challenge["nonce"]


def test_chain_identity_errors(client: Client, kv_app: str) -> None:
    ns = new_namespace(client, kv_app)["namespaceId"]
    with pytest.raises(BadRequestError) as e:
        client.get_chain_challenge(ns, "dogecoin", "D123")
    assert e.value.error_type == "InvalidChain"
    with pytest.raises(BadRequestError) as e:
        # Mixed case that is not the EIP-55 checksum.
        client.get_chain_challenge(ns, "ethereum", "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
    assert e.value.error_type == "InvalidChainAccount"
    with pytest.raises(BadRequestError) as e:
        client.prove_chain_identity(ns, "ethereum", "0x" + "11" * 20, "0x1234")
    assert e.value.error_type == "InvalidChainProof"
