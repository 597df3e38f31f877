"""Facts about the running call."""

from __future__ import annotations

from ._host import backend


def context_id() -> bytes:
    """The 32-byte id of the context the call runs in."""
    return bytes(backend().context.context_id())


def executor_id() -> bytes:
    """The 32-byte Ed25519 public key of the member executing the call."""
    return bytes(backend().context.executor_id())


def app_version() -> str:
    """The version of the app, as installed."""
    return backend().context.app_version()


def chain_identities() -> list:
    """The chain accounts the executing member proved it holds in the
    context's namespace: dicts with `chain`, `account` (canonical) and
    `verified_on_chain`. Empty in a migration."""
    return [
        {
            "chain": i.chain,
            "account": i.account,
            "verified_on_chain": bool(i.verified_on_chain),
        }
        for i in backend().context.chain_identities()
    ]


def chain_attestations() -> list:
    """Attestations recorded in the context's namespace about the executing
    member's proven chain accounts (a member's node's signed claim of what
    the chain said): dicts with `chain`, `network`, `block_number`,
    `block_hash`, `kind`, `account`, `token`, `at_least`, `observed`,
    `holds`, `attested_by` (bytes), `at_millis`. Empty in a migration."""
    return [
        {
            "chain": a.chain,
            "network": a.network,
            "block_number": a.block_number,
            "block_hash": a.block_hash,
            "kind": a.kind,
            "account": a.account,
            "token": a.token,
            "at_least": a.at_least,
            "observed": a.observed,
            "holds": bool(a.holds),
            "attested_by": bytes(a.attested_by),
            "at_millis": a.at_millis,
        }
        for a in backend().context.chain_attestations()
    ]


def now_millis() -> int:
    """Milliseconds since the Unix epoch, from the call's hybrid logical clock."""
    return backend().context.now_millis()


def log(message: str, level: str = "info") -> None:
    """Writes a line to the node's log (`trace`, `debug`, `info`, `warn`, `error`)."""
    ctx = backend().context
    lv = getattr(ctx, "LogLevel", None)
    ctx.log(getattr(lv, level.upper()) if lv is not None else level, message)
