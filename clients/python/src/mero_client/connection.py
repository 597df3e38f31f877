"""A connection to one node: its URL, how to authenticate, timeouts and
retries, and the synchronous transport the `Client` uses.

Nothing is global: every setting and every token lives on the
`ConnectionInfo`; clients made from one connection share its token.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union
from urllib.parse import urlsplit

import httpx

from . import auth as _auth
from ._http import Call, decode, parse_json
from .auth import AuthMode, JwtToken
from .errors import InvalidArgumentError, NetworkError

__all__ = ["ConnectionInfo", "create_connection"]

_RETRY_SAFE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_RETRY_IDEMPOTENT = (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout, httpx.WriteError)


class ConnectionInfo:
    """How to reach and authenticate to one node.

    Made by `create_connection`; see there for the arguments.
    """

    def __init__(
        self,
        api_url: str,
        node_name: Optional[str] = None,
        *,
        token: Union[str, JwtToken, None] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        home: Union[str, Path, None] = None,
        credential_file: Union[str, Path, None] = None,
        token_cache_dir: Union[str, Path, None] = None,
        use_token_cache: bool = True,
        timeout: float = 60.0,
        retries: int = 2,
        retry_backoff: float = 0.25,
    ) -> None:
        parts = urlsplit(api_url) if isinstance(api_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgumentError(
                "InvalidUrl", f"Invalid URL: {api_url!r} (expected http(s)://host:port)"
            )
        if (username is None) != (password is None):
            raise InvalidArgumentError("InvalidArgument", "username and password go together")
        if timeout <= 0 or retries < 0 or retry_backoff < 0:
            raise InvalidArgumentError(
                "InvalidArgument", "timeout must be > 0, retries and retry_backoff >= 0"
            )
        self._base = api_url.rstrip("/")
        self._node_name = node_name
        self.timeout = float(timeout)
        """Seconds a request may take (connecting: at most 10)."""
        self.retries = int(retries)
        """How many times a request is sent again after a failure that is
        safe to retry (no connection; or, for GETs, a broken one or a 503)."""
        self.retry_backoff = float(retry_backoff)
        """Seconds before the first retry; doubled for each next one."""
        self._explicit: Optional[JwtToken] = (
            JwtToken(token) if isinstance(token, str) else token
        )
        self._login: Optional[Tuple[str, str]] = (
            (username, password) if username is not None and password is not None else None
        )
        if credential_file is not None:
            self._credential: Optional[Path] = Path(credential_file)
        elif node_name is not None:
            self._credential = _auth.node_credential_path(node_name, home)
        else:
            self._credential = None
        self._cache: Optional[str] = (
            _auth.get_token_cache_path(node_name, token_cache_dir)
            if node_name is not None and use_token_cache
            else None
        )
        self._token: Optional[JwtToken] = None
        self._source = "none"
        self._resolved = False
        self._lock = threading.Lock()
        self._http: Optional[httpx.Client] = None

    # ----------------------------------------------------------- properties

    @property
    def api_url(self) -> str:
        """The node's URL, with a trailing slash (as upstream shows it)."""
        return self._base + "/"

    @property
    def node_name(self) -> Optional[str]:
        """The name tokens are cached under (and the node's directory name
        for its credential file)."""
        return self._node_name

    @property
    def token_source(self) -> str:
        """Where the current token came from: `explicit`, `cache`, `login`,
        `refresh`, `credential` or `none`."""
        return self._source

    @property
    def token_cache_path(self) -> Optional[str]:
        """The cache file of this connection's node, if it caches tokens."""
        return self._cache

    def url(self, path: str) -> str:
        """`path` on this node."""
        return self._base + "/" + path.lstrip("/")

    def httpx_timeout(self, read: Optional[float] = -1.0) -> httpx.Timeout:
        """The connection's timeouts for httpx (`read=None`: no read limit)."""
        return httpx.Timeout(
            self.timeout,
            connect=min(10.0, self.timeout),
            read=self.timeout if read == -1.0 else read,
        )

    # -------------------------------------------------------------- tokens

    def _resolve_local(self) -> Tuple[Optional[JwtToken], str]:
        if self._explicit is not None:
            return self._explicit, "explicit"
        if self._cache is not None:
            cached = _auth.load_cached(self._cache)
            if cached is not None:
                return cached, "cache"
        return None, "none"

    def _credential_token(self) -> Optional[JwtToken]:
        if self._credential is None:
            return None
        text = _auth.read_credential(self._credential)
        return JwtToken(text) if text else None

    def _adopt(self, token: Optional[JwtToken], source: str) -> None:
        self._token, self._source, self._resolved = token, source, True
        if token is not None and source in ("login", "refresh") and self._cache is not None:
            try:
                _auth.save_cached(self._cache, token)
            except OSError:
                pass

    def _local_fallback(self, failed: Optional[str]) -> Optional[Tuple[JwtToken, str]]:
        """A token from the cache or the credential file other than the one
        that just failed (another process may have replaced it)."""
        if self._cache is not None:
            cached = _auth.load_cached(self._cache)
            if cached is not None and cached.access_token != failed:
                return cached, "cache"
        cred = self._credential_token()
        if cred is not None and cred.access_token != failed:
            return cred, "credential"
        return None

    def _post_public(self, path: str, body: Dict[str, Any]) -> Tuple[int, Any]:
        call = Call("POST", path, json=body, public=True)
        resp = self._send(call, None)
        return resp.status_code, parse_json(resp.content)

    def _login_sync(self) -> Optional[JwtToken]:
        assert self._login is not None
        status, body = self._post_public(
            "/auth/token", _auth.login_body(self._base, *self._login)
        )
        return _auth.token_from_answer(body) if status == 200 else None

    def _refresh_sync(self, token: JwtToken) -> Optional[JwtToken]:
        status, body = self._post_public("/auth/refresh", _auth.refresh_body(token))
        return _auth.token_from_answer(body) if status == 200 else None

    def _recover_sync(self, failed: Optional[str]) -> bool:
        """After `failed` was refused (or is about to expire): refresh, log in,
        or re-read local tokens. Whether a new token is in place."""
        if self._token is not None and self._token.access_token != failed:
            return True  # another thread already replaced it
        current = self._token
        if current is not None and current.refresh_token:
            new = self._refresh_sync(current)
            if new is not None:
                self._adopt(new, "refresh")
                return True
        if self._login is not None:
            new = self._login_sync()
            if new is not None:
                self._adopt(new, "login")
                return True
        found = self._local_fallback(failed)
        if found is not None:
            self._adopt(*found)
            return True
        return False

    def _bearer_sync(self) -> Optional[str]:
        with self._lock:
            if not self._resolved:
                token, source = self._resolve_local()
                if token is None and self._login is not None:
                    token, source = self._login_sync(), "login"
                if token is None:
                    token, source = self._credential_token(), "credential"
                self._adopt(token, source if token is not None else "none")
            tok = self._token
            if tok is not None and tok.refresh_token and tok.is_expired(_auth.EXPIRY_MARGIN_SECS):
                self._recover_sync(tok.access_token)
            return self._token.access_token if self._token is not None else None

    def token(self) -> Optional[JwtToken]:
        """The token requests carry now (finding one first if needed)."""
        self._bearer_sync()
        return self._token

    # ----------------------------------------------------------- transport

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.httpx_timeout(), trust_env=False)
        return self._http

    def _send(self, call: Call, bearer: Optional[str]) -> httpx.Response:
        content, headers = call.body()
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        last: Optional[Exception] = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_backoff * (2 ** (attempt - 1)))
            try:
                resp = self._client().request(
                    call.method,
                    self.url(call.path),
                    content=content,
                    headers=headers,
                    params=dict(call.params) if call.params else None,
                )
            except _RETRY_SAFE as e:
                last = e
                continue
            except _RETRY_IDEMPOTENT as e:
                last = e
                if call.idempotent:
                    continue
                break
            except httpx.HTTPError as e:
                last = e
                break
            if resp.status_code == 503 and call.idempotent and attempt < self.retries:
                continue
            return resp
        raise NetworkError(
            type(last).__name__ if last else "NetworkError",
            f"{call.method} {self.url(call.path)}: {last}",
        )

    def request(self, call: Call) -> Any:
        """Sends `call` with a token (recovering once from a 401) and decodes
        the answer."""
        bearer = None if call.public else self._bearer_sync()
        resp = self._send(call, bearer)
        if resp.status_code == 401 and not call.public:
            with self._lock:
                renewed = self._recover_sync(bearer)
            if renewed:
                resp = self._send(call, self._token.access_token if self._token else None)
        return decode(call, resp.status_code, resp.content)

    # ------------------------------------------------------ upstream's API

    def get(self, path: str) -> Any:
        """An authenticated `GET` of `path` (e.g. `admin-api/health`); its
        JSON."""
        return self.request(Call("GET", "/" + path.lstrip("/")))

    def detect_auth_mode(self) -> AuthMode:
        """`required` if the node refuses `GET /admin-api/contexts` without a
        token (as upstream's clients probe it), else `none`."""
        resp = self._send(Call("GET", "/admin-api/contexts", public=True), None)
        return AuthMode("required" if resp.status_code == 401 else "none")

    def close(self) -> None:
        """Closes the connection's HTTP pool (it reopens when used again)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> "ConnectionInfo":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ConnectionInfo(api_url={self.api_url!r}, node_name={self._node_name!r})"


def create_connection(
    api_url: str,
    node_name: Optional[str] = None,
    *,
    token: Union[str, JwtToken, None] = None,
    username: Optional[str] = None,
    password: Optional[str] = None,
    home: Union[str, Path, None] = None,
    credential_file: Union[str, Path, None] = None,
    token_cache_dir: Union[str, Path, None] = None,
    use_token_cache: bool = True,
    timeout: float = 60.0,
    retries: int = 2,
    retry_backoff: float = 0.25,
) -> ConnectionInfo:
    """A connection to the node at `api_url` (`http://127.0.0.1:2528`).

    - `node_name`: names the token cache file and, with `home`, the node's
      directory holding `credential.json` (keep it stable and unique per
      node, as with calimero-client-py).
    - `token`: a bearer token (or `JwtToken`) to use as is.
    - `username`, `password`: log in with `POST /auth/token` when no cached
      token exists, and again when a refresh fails.
    - `home`, `credential_file`: where the node's root credential is
      (default `$CALIMERO_HOME/<node_name>/credential.json`, then
      `~/.calimero/<node_name>/credential.json`).
    - `token_cache_dir`: the cache directory (default `~/.merobox/auth_cache`);
      `use_token_cache=False` neither reads nor writes it.
    - `timeout`: seconds per request; `retries` and `retry_backoff`: see
      `ConnectionInfo.retries`.

    Raises `InvalidArgumentError` (a `ValueError`) for a malformed URL.
    """
    return ConnectionInfo(
        api_url,
        node_name,
        token=token,
        username=username,
        password=password,
        home=home,
        credential_file=credential_file,
        token_cache_dir=token_cache_dir,
        use_token_cache=use_token_cache,
        timeout=timeout,
        retries=retries,
        retry_backoff=retry_backoff,
    )
