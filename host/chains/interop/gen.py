#!/usr/bin/env python3
"""Signs chain identity proofs with the chains' own libraries and prints
them as JSON (the format of host/chains/tests/fixtures/proofs.json):
Ethereum with eth-account, Stellar with stellar-sdk (here), NEAR with
@near-js/signers and ICP with @dfinity/identity (gen.mjs, run from here).

Each proof is a Case of mero_chains::interop: `accept` ones are signed as
a wallet would sign our challenge; `reject` ones are signed by a key that
is not the account's. The message is built here from the documented format,
independently of the Rust code, so a change of format fails the check."""

import base64
import json
import secrets
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from stellar_sdk import Keypair

HERE = Path(__file__).resolve().parent
# 2100-01-01: committed fixtures stay valid; the checker tests expiry itself.
EXPIRES = 4102444800
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def message(chain, account, scope, member, nonce, expires=EXPIRES):
    kind, ident = scope.split(":", 1)
    return (
        f"mero chain identity proof\nchain: {chain}\naccount: {account}\n"
        f"{kind}: {ident}\nmember: {member}\nnonce: {nonce}\nexpires: {expires}"
    )


def case(name, chain, scheme, scope, member, account, nonce, msg, signature,
         expect="accept", public_key=None):
    return {
        "name": name, "chain": chain, "scheme": scheme, "scope": scope,
        "member": member, "account": account, "nonce": nonce, "expires": EXPIRES,
        "message": msg, "public_key": public_key, "signature": signature,
        "expect": expect,
    }


def eth_typed(scope, member, account, nonce):
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
            ],
            "ChainIdentity": [
                {"name": "scope", "type": "string"},
                {"name": "member", "type": "string"},
                {"name": "account", "type": "address"},
                {"name": "nonce", "type": "bytes32"},
                {"name": "expires", "type": "uint64"},
            ],
        },
        "primaryType": "ChainIdentity",
        "domain": {"name": "mero", "version": "1"},
        "message": {
            "scope": scope, "member": member, "account": account,
            "nonce": bytes.fromhex(nonce), "expires": EXPIRES,
        },
    }


def ethereum(ns, ctx, member):
    out = []
    acct, other = Account.create(), Account.create()
    hexsig = lambda s: "0x" + bytes(s.signature).hex()  # noqa: E731
    for label, scope, account in [
        ("namespace", ns, acct.address),
        ("context", ctx, acct.address),
        ("lower-case address", ns, acct.address.lower()),
    ]:
        nonce = secrets.token_hex(32)
        msg = message("ethereum", acct.address, scope, member, nonce)
        signed = acct.sign_message(encode_defunct(text=msg))
        out.append(case(f"ethereum personal_sign, {label}", "ethereum", "eip191",
                        scope, member, account, nonce, msg, hexsig(signed)))
    nonce = secrets.token_hex(32)
    msg = message("ethereum", acct.address, ns, member, nonce)
    signed = acct.sign_message(encode_typed_data(full_message=eth_typed(ns, member, acct.address, nonce)))
    out.append(case("ethereum EIP-712 typed data", "ethereum", "eip712", ns, member,
                    acct.address, nonce, msg, hexsig(signed)))
    nonce = secrets.token_hex(32)
    msg = message("ethereum", acct.address, ns, member, nonce)
    signed = other.sign_message(encode_defunct(text=msg))
    out.append(case("ethereum personal_sign by another key", "ethereum", "eip191", ns,
                    member, acct.address, nonce, msg, hexsig(signed), "reject"))
    return out


def stellar(ns, member):
    out = []
    kp, other = Keypair.random(), Keypair.random()
    for label, encode in [("base64", lambda s: base64.b64encode(s).decode()),
                          ("hex", lambda s: s.hex())]:
        nonce = secrets.token_hex(32)
        msg = message("stellar", kp.public_key, ns, member, nonce)
        out.append(case(f"stellar SEP-53, {label} signature", "stellar", "sep53", ns, member,
                        kp.public_key, nonce, msg, encode(kp.sign_message(msg))))
    nonce = secrets.token_hex(32)
    msg = message("stellar", kp.public_key, ns, member, nonce)
    out.append(case("stellar SEP-53 by another key", "stellar", "sep53", ns, member,
                    kp.public_key, nonce, msg,
                    base64.b64encode(other.sign_message(msg)).decode(), "reject"))
    return out


def main():
    ns = "namespace:" + secrets.token_hex(32)
    ctx = "context:" + b58(secrets.token_bytes(32))
    member = b58(secrets.token_bytes(32))
    cases = ethereum(ns, ctx, member) + stellar(ns, member)
    js = subprocess.run(
        ["node", str(HERE / "gen.mjs")],
        input=json.dumps({"scope": ns, "member": member, "expires": EXPIRES}),
        capture_output=True, text=True, check=True, cwd=HERE,
    )
    js_out = json.loads(js.stdout)
    cases += js_out["cases"]
    generated_by = {"eth-account": version("eth-account"), "stellar-sdk": version("stellar-sdk")}
    generated_by.update(js_out["generated_by"])
    json.dump({"generated_by": generated_by, "cases": cases}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
