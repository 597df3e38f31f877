"""Tokens: where a connection gets its bearer token, and the per-node token
cache shared with calimero-client-py and merobox.

A connection looks for a token, in this order, the first time it needs one:

1. the `token` passed to `create_connection`;
2. the token cache of its `node_name` (`~/.merobox/auth_cache/<slug>-<hash>.json`,
   the file calimero-client-py and merobox read and write);
3. a login with `username` and `password` (`POST /auth/token`, provider
   `user_password`), whose token pair is then cached;
4. the node's root credential `<home>/<node>/credential.json`, written by
   `merod --node <node> init` (`credential_file`, or `home` and the
   connection's `node_name`; `home` defaults to `$CALIMERO_HOME`, then
   `~/.calimero`).

Without any, requests go out without a token (fine for a node in proxy mode).
On a 401 (or an access token about to expire) it refreshes the pair with
`POST /auth/refresh`, else logs in again, else re-reads the credential file
or the cache (another process may have replaced them), and retries once.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

__all__ = [
    "JwtToken",
    "AuthMode",
    "get_token_cache_dir",
    "get_token_cache_path",
    "token_cache_filename",
    "read_credential",
    "node_credential_path",
    "login_body",
    "refresh_body",
]

#: Refresh an access token this many seconds before it expires.
EXPIRY_MARGIN_SECS = 30


@dataclasses.dataclass
class JwtToken:
    """An access token, with its refresh token and expiry when known."""

    access_token: str
    refresh_token: Optional[str] = None
    expires_at: Optional[int] = None
    """Unix seconds; read from the token's `exp` claim when not given."""

    def __post_init__(self) -> None:
        if self.expires_at is None:
            self.expires_at = jwt_expiry(self.access_token)

    def is_expired(self, margin: int = 0) -> bool:
        """Whether `expires_at` is past (or within `margin` seconds); False
        when unknown."""
        return self.expires_at is not None and time.time() + margin >= self.expires_at

    def to_json(self) -> Dict[str, Any]:
        """The cache file's fields."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "JwtToken":
        """From a cache file or a token answer (extra keys are ignored)."""
        access = data.get("access_token") or data.get("accessToken")
        if not isinstance(access, str) or not access:
            raise ValueError("no access_token")
        refresh = data.get("refresh_token") or data.get("refreshToken")
        expires = data.get("expires_at")
        return cls(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=int(expires) if isinstance(expires, (int, float)) else None,
        )

    def __repr__(self) -> str:  # never print a whole secret
        return f"JwtToken(access_token='{self.access_token[:10]}...', expires_at={self.expires_at})"


class AuthMode:
    """Whether a node requires a token: `AuthMode("required")` or
    `AuthMode("none")` (calimero-client-py's type)."""

    def __init__(self, mode: str) -> None:
        mode = mode.lower()
        if mode not in ("required", "none"):
            raise ValueError("AuthMode must be 'required' or 'none'")
        self.value = mode

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"AuthMode('{self.value}')"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AuthMode):
            return other.value == self.value
        return other == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def jwt_expiry(token: str) -> Optional[int]:
    """The `exp` claim of a JWT, unverified; None if it has none."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        exp = claims.get("exp")
        return int(exp) if isinstance(exp, (int, float)) else None
    except Exception:
        return None


# ------------------------------------------------------------------ cache


def get_token_cache_dir() -> str:
    """`~/.merobox/auth_cache`: where calimero-client-py and merobox keep
    tokens."""
    return str(Path.home() / ".merobox" / "auth_cache")


def token_cache_filename(node_name: str) -> str:
    """`<slug>-<sha256[:12]>.json`: the node name with characters outside
    `[A-Za-z0-9._-]` replaced by `_`, cut to 64, then a hash of the name;
    the same name as calimero-client-py derives."""
    slug = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in node_name)
    digest = hashlib.sha256(node_name.encode()).hexdigest()[:12]
    return f"{slug[:64]}-{digest}.json"


def get_token_cache_path(node_name: str, cache_dir: Optional[Union[str, Path]] = None) -> str:
    """The cache file of `node_name` (in `cache_dir`, default
    `get_token_cache_dir()`)."""
    base = Path(cache_dir) if cache_dir is not None else Path(get_token_cache_dir())
    return str(base / token_cache_filename(node_name))


def load_cached(path: Union[str, Path]) -> Optional[JwtToken]:
    """The token in a cache file; None if it is absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return JwtToken.from_json(json.load(f))
    except (OSError, ValueError):
        return None


def save_cached(path: Union[str, Path], token: JwtToken) -> None:
    """Writes `token` to a cache file atomically, readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(token.to_json(), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ------------------------------------------------------------ credential


def node_credential_path(node_name: str, home: Optional[Union[str, Path]] = None) -> Path:
    """`<home>/<node_name>/credential.json`; `home` defaults to
    `$CALIMERO_HOME`, then `~/.calimero` (as merod's)."""
    if home is None:
        home = os.environ.get("CALIMERO_HOME") or str(Path.home() / ".calimero")
    return Path(home) / node_name / "credential.json"


def read_credential(path: Union[str, Path]) -> Optional[str]:
    """The access token of a node's `credential.json`; None if absent."""
    try:
        with open(path, encoding="utf-8") as f:
            token = json.load(f).get("access_token")
    except (OSError, ValueError, AttributeError):
        return None
    return token if isinstance(token, str) and token else None


# ----------------------------------------------------------------- bodies


def login_body(api_url: str, username: str, password: str) -> Dict[str, Any]:
    """`POST /auth/token`'s body for the `user_password` provider, in
    upstream's shape."""
    return {
        "auth_method": "user_password",
        "public_key": username,
        "client_name": api_url.rstrip("/"),
        "timestamp": int(time.time()),
        "provider_data": {"username": username, "password": password},
    }


def refresh_body(token: JwtToken) -> Dict[str, Any]:
    """`POST /auth/refresh`'s body."""
    return {"access_token": token.access_token, "refresh_token": token.refresh_token}


def token_from_answer(body: Any) -> Optional[JwtToken]:
    """The pair in `{"data": {"access_token", "refresh_token"}, "error": null}`."""
    if not isinstance(body, Mapping):
        return None
    data = body.get("data")
    if not isinstance(data, Mapping):
        return None
    try:
        return JwtToken.from_json(data)
    except ValueError:
        return None
