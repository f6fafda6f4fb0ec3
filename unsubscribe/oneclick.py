"""The one-click unsubscribe request of RFC 8058: ``POST List-Unsubscribe=One-Click`` to the list's https URL.

The URL comes from untrusted mail, so it goes out as the image proxy's requests do
(``webpop/lib/guarded_http.py``): the host is resolved once and every address checked by
``webpop.lib.netguard`` (private, loopback, link-local, reserved addresses are refused unless
``WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE``, which only tests set), and the connection goes to the
checked addresses, TLS verified. The request carries no cookie, no Referer and a neutral
User-Agent. Redirects are not followed: RFC 8058 forbids them for this POST, and following
one would let the sender point the server anywhere. Each network operation is bounded by
``WEBPOP_IMAGE_PROXY_TIMEOUT``, and only the answer's status line and headers are read.
"""

from __future__ import annotations

import enum
import http.client
import ssl
from dataclasses import dataclass

from django.conf import settings

from webpop.lib import guarded_http, netguard

USER_AGENT = "webpop/1 (one-click unsubscribe)"
BODY = b"List-Unsubscribe=One-Click"


class Outcome(enum.Enum):
    OK = "ok"  # 2xx: the server took the request
    REDIRECT = "redirect"  # 3xx: not followed
    REFUSED = "refused"  # 4xx: the server said no
    TEMPORARY = "temporary"  # 5xx, 408, 429, no answer: worth another try
    NOT_ALLOWED = "not_allowed"  # a private or reserved address: never contacted
    TLS = "tls"  # the certificate could not be verified
    BAD_URL = "bad_url"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    status: int | None = None
    detail: str = ""  # for the reader and operators: "HTTP 404 Not Found", "timed out" …


def _context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def _judge(status: int, reason: str) -> Result:
    detail = f"HTTP {status} {reason}".strip()
    if 200 <= status < 300:
        return Result(Outcome.OK, status, detail)
    if 300 <= status < 400:
        return Result(Outcome.REDIRECT, status, detail)
    if status in (408, 429) or status >= 500:
        return Result(Outcome.TEMPORARY, status, detail)
    return Result(Outcome.REFUSED, status, detail)


def post(
    url: str,
    *,
    timeout: float | None = None,
    allow_private: bool | None = None,
    ca_file: str | None = None,
) -> Result:
    """Send the one-click request to ``url``; never raises for what the network or the server does."""
    timeout = settings.WEBPOP_IMAGE_PROXY_TIMEOUT if timeout is None else timeout
    allow_private = settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE if allow_private is None else allow_private
    ca_file = settings.WEBPOP_UNSUBSCRIBE_CA_FILE if ca_file is None else ca_file
    try:
        where = guarded_http.target(url, ("https",))
    except guarded_http.BadURL as exc:
        return Result(Outcome.BAD_URL, detail=str(exc))
    try:
        addresses = netguard.resolve(where.host, where.port, allow_private=allow_private)
    except netguard.AddressNotAllowed as exc:
        return Result(Outcome.NOT_ALLOWED, detail=f"{where.host} resolves to {exc.address}")
    except netguard.UnresolvableHost as exc:
        return Result(Outcome.TEMPORARY, detail=f"{where.host}: {exc.reason}")
    connection = guarded_http.PinnedHTTPSConnection(where.host, where.port, addresses, timeout, _context(ca_file))
    try:
        connection.request(
            "POST",
            where.path,
            body=BODY,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": USER_AGENT,
                "Accept": "*/*",
            },
        )
        response = connection.getresponse()  # the status is all that counts: the body is never read
        return _judge(response.status, response.reason or "")
    except ssl.SSLCertVerificationError as exc:
        return Result(Outcome.TLS, detail=exc.verify_message or str(exc))
    except (OSError, http.client.HTTPException) as exc:
        return Result(Outcome.TEMPORARY, detail=f"{exc.__class__.__name__}: {exc}"[:500])
    finally:
        connection.close()
