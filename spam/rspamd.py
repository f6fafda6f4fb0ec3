"""rspamd's HTTP protocol: scan a message, train the Bayes classifier, ask whether it is up. No Django.

Scanning is ``POST /checkv2`` on a normal worker, with webpop's settings (``Settings-ID``);
training is ``POST /learnspam`` or ``/learnham`` on the controller, with its password. Every
request names the webpop user in ``Deliver-To``: with ``per_user`` statistics (deploy/rspamd/)
rspamd keeps one Bayes per user, so what one user trains never decides another's mail.

Connections go through the network guard (``webpop.lib.netguard``) like every outbound one: the
URL is the operator's own service, so private and loopback addresses are allowed, and the
connection is pinned to the addresses resolved once per client.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from webpop.lib import netguard
from webpop.lib.pinned_http import PinnedHTTPConnection, PinnedHTTPSConnection

# rspamd's actions, mildest first (actions.conf); "soft reject" is a temporary refusal, not a verdict.
NO_ACTION = "no action"
GREYLIST = "greylist"
ADD_HEADER = "add header"
REWRITE_SUBJECT = "rewrite subject"
REJECT = "reject"
SPAM_ACTIONS = (ADD_HEADER, REWRITE_SUBJECT, REJECT)
# The settings rspamd applies to webpop's scans (deploy/rspamd/local.d/settings.conf).
SETTINGS_ID = "webpop"


class Unavailable(Exception):
    """rspamd could not be reached (refused, unresolvable, reset): nothing about the message itself."""


class Failed(Exception):
    """rspamd answered, but not with a result (an error status, a timeout on this message, bad JSON)."""


@dataclass(frozen=True)
class Result:
    score: float
    action: str
    required_score: float
    symbols: tuple[str, ...]
    rspamd_seconds: float  # rspamd's own time for the message (time_real), 0.0 when it did not say
    seconds: float  # the whole request, as webpop saw it
    # Each symbol's options, where rspamd's modules name what they found (R_DKIM_ALLOW: "example.com:s=sel").
    options: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def skipped(self) -> bool:
        return self.action == "" or self.action == "soft reject"


@dataclass(frozen=True)
class _Endpoint:
    scheme: str
    host: str
    port: int
    path: str


def _endpoint(url: str) -> _Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an rspamd URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return _Endpoint(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


class Client:
    """Requests to one rspamd: ``url`` its normal worker, ``controller_url`` its controller (may be "")."""

    def __init__(self, url: str, *, controller_url: str = "", password: str = "", timeout: float = 20.0) -> None:
        self.scanner = _endpoint(url)
        self.controller = _endpoint(controller_url) if controller_url else None
        self.password = password
        self.timeout = timeout
        self._addresses: dict[tuple[str, int], list[str]] = {}

    def check(self, message: bytes, *, user: str) -> Result:
        """Scan ``message`` for ``user``; raises Unavailable or Failed."""
        started = time.monotonic()
        headers = {"Deliver-To": user, "Settings-ID": SETTINGS_ID}
        status, body = self._post(self.scanner, "/checkv2", message, headers)
        seconds = time.monotonic() - started
        if status != 200:
            raise Failed(f"rspamd answered {status}")
        try:
            answer = json.loads(body)
            score = float(answer.get("score", 0.0))
            required = float(answer.get("required_score", 0.0))
            action = str(answer.get("action", ""))
            found = answer.get("symbols") or {}
            symbols = tuple(sorted(str(name) for name in found))
            options = {
                str(name): tuple(str(option) for option in (value.get("options") or ()))
                for name, value in found.items()
                if isinstance(value, dict)
            }
            rspamd_seconds = float(answer.get("time_real") or 0.0)
        except (ValueError, TypeError, AttributeError):
            raise Failed("rspamd's answer is not a scan result") from None
        return Result(score, action, required, symbols, rspamd_seconds, seconds, options)

    def learn(self, message: bytes, *, user: str, spam: bool) -> bool:
        """Train ``user``'s Bayes; False when rspamd already knew the message (it learns each once)."""
        if self.controller is None:
            raise Failed("no rspamd controller to learn with")
        headers = {"Deliver-To": user}
        if self.password:
            headers["Password"] = self.password
        status, body = self._post(self.controller, "/learnspam" if spam else "/learnham", message, headers)
        if status == 200:
            return True
        if status in (204, 208):  # learned before, or learn conditions said no (already in this class)
            return False
        if status in (401, 403):  # the site's setting, not the message: wait for the operator
            raise Unavailable("rspamd's controller refused the password (WEBPOP_RSPAMD_PASSWORD)")
        raise Failed(f"rspamd's controller answered {status}: {_error_text(body)}")

    def ping(self) -> float:
        """Seconds rspamd's normal worker took to answer /ping; raises Unavailable or Failed."""
        started = time.monotonic()
        status, body = self._request(self.scanner, "GET", "/ping", None, {})
        if status != 200 or not body.strip().startswith(b"pong"):
            raise Failed(f"rspamd answered {status} to ping")
        return time.monotonic() - started

    # --- HTTP -------------------------------------------------------------------------

    def _post(self, where: _Endpoint, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        return self._request(where, "POST", path, data, headers)

    def _request(
        self, where: _Endpoint, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        addresses = self._resolve(where)
        connection_class = PinnedHTTPSConnection if where.scheme == "https" else PinnedHTTPConnection
        conn = connection_class(where.host, where.port, addresses, timeout=self.timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise Unavailable(f"cannot connect to rspamd at {where.host}:{where.port}: {_why(exc)}") from None
            try:
                conn.request(method, where.path + path, body=data, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except TimeoutError:
                raise Failed(f"rspamd took longer than {self.timeout:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                raise Unavailable(f"rspamd at {where.host}:{where.port} dropped the request: {_why(exc)}") from None
        finally:
            conn.close()

    def _resolve(self, where: _Endpoint) -> list[str]:
        key = (where.host, where.port)
        if key not in self._addresses:
            try:
                # The operator's own service: private and loopback addresses are expected.
                self._addresses[key] = netguard.resolve(where.host, where.port, allow_private=True)
            except netguard.UnresolvableHost as exc:
                raise Unavailable(str(exc)) from None
        return self._addresses[key]


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or type(exc).__name__


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))[:200]
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace")
