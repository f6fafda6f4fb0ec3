"""Web Push (RFC 8030) with VAPID (RFC 8292) and payloads encrypted per RFC 8291.

The payload is encrypted for one browser subscription (``aes128gcm``, RFC 8188, keyed by
ECDH with the browser's ``p256dh`` key and its ``auth`` secret: ``http_ece``) and signed
for the push service with our VAPID key (``py_vapid``). Only the push service sees the
request; only the browser can read the payload.

The endpoint URL comes from a browser, so the request goes through ``webpop.lib.netguard``:
the host is resolved once, every address checked (no private, loopback or reserved
ones unless ``allow_private``) and the connection pinned to them. Endpoints are https
(plain http only with ``allow_private``, for a test's push service on loopback). No
Django here; ``push.delivery`` decides what to send and records the outcome.
"""

from __future__ import annotations

import enum
import http.client
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException

from webpop.lib import netguard
from webpop.lib.pinned_http import PinnedHTTPConnection, PinnedHTTPSConnection

from . import vapid

# RFC 8291 §4: a push message carries at most 4096 octets, so at most 3993 of plaintext.
MAX_PLAINTEXT = 3993
MAX_ENDPOINT_LENGTH = 2048
# RFC 8292 §2: a JWT valid for no more than 24 hours.
JWT_LIFETIME = 12 * 3600
_ANSWER_READ = 4096  # of an error answer, for the record


class EndpointError(ValueError):
    """An endpoint URL we do not send to; the message says why."""


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # the push service took it (201)
    GONE = "gone"  # 404 / 410: the subscription expired or was removed
    RETRY = "retry"  # the service or the network failed for now (429, 5xx, timeouts)
    REFUSED = "refused"  # the request was refused (400, 401, 403, 413, a refused address): retrying is no use


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str  # the browser's ECDH public key (uncompressed P-256 point, base64url)
    auth: str  # its 16-byte authentication secret (base64url)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    status: int | None  # the HTTP status, None when there was no answer
    detail: str  # for the subscription's record; never the endpoint URL (a capability) in full
    retry_after: int | None = None


def check_endpoint(endpoint: str, *, allow_private: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an endpoint URL we may send to; EndpointError otherwise."""
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise EndpointError("the endpoint URL is too long")
    if not endpoint.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in endpoint):
        raise EndpointError("the endpoint URL has characters a URL may not have")
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        raise EndpointError("push endpoints are https URLs")
    if parts.username is not None or parts.password is not None:
        raise EndpointError("the endpoint URL has credentials")
    if parts.fragment:
        raise EndpointError("the endpoint URL has a fragment")
    host = parts.hostname
    if not host:
        raise EndpointError("the endpoint URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise EndpointError("the endpoint URL has a bad port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, path


def check_subscription(subscription: Subscription, *, allow_private: bool) -> None:
    """Raise EndpointError or vapid.VapidKeyError unless a push can be encrypted and sent to it."""
    check_endpoint(subscription.endpoint, allow_private=allow_private)
    vapid.load_public_key(subscription.p256dh)
    try:
        secret = vapid.b64url_decode(subscription.auth)
    except ValueError:
        raise vapid.VapidKeyError("the auth secret is not base64url text") from None
    if len(secret) != 16:
        raise vapid.VapidKeyError("the auth secret has 16 bytes")


def encrypt(plaintext: bytes, subscription: Subscription) -> bytes:
    """The request body: ``plaintext`` encrypted for the subscription's browser (one aes128gcm record)."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"a push payload has at most {MAX_PLAINTEXT} bytes")
    return http_ece.encrypt(
        plaintext,
        private_key=ec.generate_private_key(ec.SECP256R1()),  # a new key for every message
        dh=vapid.b64url_decode(subscription.p256dh),
        auth_secret=vapid.b64url_decode(subscription.auth),
        version="aes128gcm",
    )


def authorization(endpoint: str, private_key: str, subject: str, *, now: float | None = None) -> str:
    """The ``Authorization: vapid t=<JWT>, k=<public key>`` header for a push to ``endpoint``."""
    parts = urlsplit(endpoint)
    audience = f"{parts.scheme.lower()}://{parts.netloc.rsplit('@', 1)[-1].lower()}"
    signer = Vapid02(vapid.load_private_key(private_key))
    claims = {"aud": audience, "sub": subject, "exp": int((now or time.time()) + JWT_LIFETIME)}
    try:
        return signer.sign(claims)["Authorization"]
    except VapidException as exc:
        raise EndpointError(str(exc)) from None


def send(
    subscription: Subscription,
    plaintext: bytes,
    *,
    private_key: str,
    subject: str,
    ttl: int,
    topic: str,
    urgency: str = "normal",
    timeout: float = 10,
    allow_private: bool = False,
) -> Result:
    """Encrypt ``plaintext`` for the subscription and POST it to its push service."""
    try:
        scheme, host, port, path = check_endpoint(subscription.endpoint, allow_private=allow_private)
        body = encrypt(plaintext, subscription)
        headers = {
            "Authorization": authorization(subscription.endpoint, private_key, subject),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(body)),
            "TTL": str(ttl),
            "Urgency": urgency,
            "Topic": topic,  # a newer message with the same topic replaces one not yet delivered
        }
    except (EndpointError, vapid.VapidKeyError, ValueError) as exc:
        return Result(Outcome.REFUSED, None, str(exc)[:300])
    try:
        addresses = netguard.resolve(host, port, allow_private=allow_private)
    except netguard.AddressNotAllowed as exc:
        return Result(Outcome.REFUSED, None, f"{host} resolves to the non-public address {exc.address}")
    except netguard.UnresolvableHost as exc:
        return Result(Outcome.RETRY, None, f"cannot resolve {host}: {exc.reason}")
    connection_class = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
    connection = connection_class(host, port, addresses, timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(_ANSWER_READ)
        retry_after = _retry_after(response.getheader("Retry-After"))
    except ssl.SSLError as exc:
        return Result(Outcome.RETRY, None, f"{host}: TLS: {exc.reason or exc.__class__.__name__}")
    except (OSError, http.client.HTTPException) as exc:
        return Result(Outcome.RETRY, None, f"{host}: {exc.__class__.__name__}: {exc}"[:300])
    finally:
        connection.close()
    return Result(_outcome(response.status), response.status, _describe(host, response, answer), retry_after)


def _outcome(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (404, 410):
        return Outcome.GONE
    if status == 429 or status >= 500:
        return Outcome.RETRY
    return Outcome.REFUSED


def _describe(host: str, response: http.client.HTTPResponse, answer: bytes) -> str:
    text = answer.decode("utf-8", "replace").strip().replace("\n", " ")
    return (f"{host}: {response.status} {response.reason}" + (f": {text}" if text else ""))[:300]


def _retry_after(value: str | None) -> int | None:
    if value and value.strip().isdigit():
        return int(value.strip())
    return None
