"""Fetch a remote image for a reader who allowed it, so the sender never learns their IP.

The request carries no cookie, no Referer and a fixed User-Agent. The host is
resolved and every address checked by ``webpop.lib.netguard`` (private, loopback,
link-local, multicast, reserved and unspecified ones are refused unless
``WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE``) and the connection goes to the checked
addresses, so DNS rebinding between the check and the connection cannot reach an
internal service. Redirects are followed (a few) and each hop is checked the
same way. The answer must be a raster image by its bytes (PNG, JPEG, GIF,
WebP, BMP, ICO, AVIF; never SVG or HTML) and within the size and time limits.
"""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin

from django.conf import settings

from webpop.lib import guarded_http, netguard

MAX_REDIRECTS = 3
USER_AGENT = "webpop-image-proxy/1"
ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8"


class ProxyError(Exception):
    """The image cannot be fetched or is not acceptable; the text says why (for logs, not users)."""


@dataclass
class Image:
    content_type: str
    data: bytes


def sniff_image(data: bytes) -> str | None:
    """The raster image type of ``data`` by its magic bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"BM") and len(data) > 14:
        return "image/bmp"
    if data.startswith(b"\x00\x00\x01\x00"):
        return "image/x-icon"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "image/avif"
    return None


def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The checked addresses of ``host`` (``webpop.lib.netguard``); ProxyError if any is not public."""
    try:
        return netguard.resolve(host, port, allow_private=allow_private)
    except netguard.UnresolvableHost as exc:
        raise ProxyError(f"cannot resolve {host!r}: {exc.reason}") from None
    except netguard.AddressNotAllowed as exc:
        raise ProxyError(f"{host!r} resolves to a non-public address {exc.address}") from None


def _target(url: str) -> tuple[str, str, int, str]:
    try:
        where = guarded_http.target(url)
    except guarded_http.BadURL as exc:
        raise ProxyError(str(exc)) from None
    return where.scheme, where.host, where.port, where.path


def fetch(
    url: str,
    *,
    max_bytes: int | None = None,
    timeout: float | None = None,
    allow_private: bool | None = None,
) -> Image:
    """GET ``url`` as an image, within the limits; ProxyError otherwise."""
    max_bytes = settings.WEBPOP_IMAGE_PROXY_MAX_BYTES if max_bytes is None else max_bytes
    timeout = settings.WEBPOP_IMAGE_PROXY_TIMEOUT if timeout is None else timeout
    allow_private = settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE if allow_private is None else allow_private
    deadline = time.monotonic() + timeout
    for _hop in range(MAX_REDIRECTS + 1):
        scheme, host, port, path = _target(url)
        addresses = resolve(host, port, allow_private=allow_private)
        remaining = max(0.1, deadline - time.monotonic())
        connection_class = (
            guarded_http.PinnedHTTPSConnection if scheme == "https" else guarded_http.PinnedHTTPConnection
        )
        connection = connection_class(host, port, addresses, remaining)
        try:
            try:
                connection.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": ACCEPT})
                response = connection.getresponse()
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                raise ProxyError(f"{host}: {exc.__class__.__name__}: {exc}") from None
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise ProxyError("redirect without Location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise ProxyError(f"{host}: HTTP {response.status}")
            length = response.getheader("Content-Length")
            if length and length.strip().isdigit() and int(length) > max_bytes:
                raise ProxyError(f"{host}: {length} bytes is over the limit")
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise ProxyError(f"{host}: too slow")
                try:
                    chunk = response.read1(65536)
                except (OSError, http.client.HTTPException) as exc:
                    raise ProxyError(f"{host}: {exc.__class__.__name__}: {exc}") from None
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise ProxyError(f"{host}: over {max_bytes} bytes")
                chunks.append(chunk)
        finally:
            connection.close()
        data = b"".join(chunks)
        content_type = sniff_image(data)
        if content_type is None:
            raise ProxyError(f"{host}: not a raster image")
        return Image(content_type, data)
    raise ProxyError("too many redirects")
