"""HTTP(S) connections to hosts that mail names, pinned to addresses ``webpop.lib.netguard`` checked.

The image proxy (``mailbox/imageproxy.py``) and one-click unsubscribe (``unsubscribe/oneclick.py``)
fetch or post to URLs taken from untrusted mail. Both resolve the host once through
``netguard.resolve`` and connect here to exactly the addresses it allowed, never to the name
again, so a DNS answer that changes in between (rebinding) cannot reach an internal service.
TLS still verifies the certificate against the host name of the URL.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from webpop.lib import netguard


class BadURL(ValueError):
    """The URL cannot be requested (scheme, credentials, host or port); the text says why, for logs."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII (an IDN host in its xn-- form)
    port: int
    path: str  # path and query, percent-encoded as a browser sends them


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "replace"))


def target(url: str, schemes: tuple[str, ...] = ("http", "https")) -> Target:
    """Where ``url`` points; BadURL for anything that is not a plain http(s) URL with a host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise BadURL(f"scheme {scheme!r} is not fetched")
    if parts.username is not None or parts.password is not None:
        raise BadURL("URLs with credentials are not fetched")
    host = parts.hostname
    if not host:
        raise BadURL("no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise BadURL("bad port") from None
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise BadURL("bad host name") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # Spaces and non-ASCII characters percent-encoded, as a browser sends them.
    path = "".join(c if 0x21 <= ord(c) <= 0x7E else _percent(c) for c in path)
    return Target(scheme, host, port, path)


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to addresses checked beforehand, never to the name (no DNS rebinding)."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = netguard.connect_first(self._addresses, self.port, timeout=self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to checked addresses; the certificate is verified for ``host`` (system CAs unless ``context`` says)."""

    def __init__(
        self, host: str, port: int, addresses: list[str], timeout: float, context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context or ssl.create_default_context())
        self._addresses = addresses

    def connect(self) -> None:
        sock = netguard.connect_first(self._addresses, self.port, timeout=self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
