"""A Web Push service on loopback for tests, which also plays the subscribed browser.

It takes the POSTs a push service takes, checks the VAPID authorization (the ES256 JWT's
signature and its aud / exp / sub claims, RFC 8292) and decrypts the ``aes128gcm`` payload
with the browser's private key and auth secret (RFC 8291 + RFC 8188). Both are written
here from the RFCs with ``cryptography``'s primitives, independently of what webpop sends
with (http_ece, py_vapid), so a mistake on either side shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def decrypt(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """RFC 8291 §3.4 keys, RFC 8188 §2 records: the plaintext of a Web Push message body."""
    salt, rs, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    as_public, ciphertext = body[21 : 21 + id_length], body[21 + id_length :]
    assert id_length == 65 and as_public[0] == 4, "the key id is the sender's uncompressed P-256 key"
    assert rs >= 18, "a record holds at least the padding delimiter and the tag"
    sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public)
    ecdh_secret = ua_private.exchange(ec.ECDH(), sender)
    prk_key = _hmac(auth_secret, ecdh_secret)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + public_bytes(ua_private) + as_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = int.from_bytes(_hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12], "big")
    records = [ciphertext[i : i + rs] for i in range(0, len(ciphertext), rs)]
    plaintext = b""
    for seq, record in enumerate(records):
        padded = AESGCM(cek).decrypt((nonce ^ seq).to_bytes(12, "big"), record, None)
        data = padded.rstrip(b"\x00")
        last = seq == len(records) - 1
        assert data[-1:] == (b"\x02" if last else b"\x01"), "bad padding delimiter"
        plaintext += data[:-1]
    return plaintext


@dataclass
class Vapid:
    """A checked ``Authorization: vapid t=…, k=…`` header."""

    claims: dict
    public_key: str  # k, base64url


def verify_vapid(header: str) -> Vapid:
    """Check the JWT's ES256 signature against the key in the header; returns its claims and the key."""
    scheme, _, rest = header.partition(" ")
    assert scheme.lower() == "vapid", f"not a VAPID authorization: {header[:20]!r}"
    parts = dict(item.strip().split("=", 1) for item in rest.split(","))
    token, key = parts["t"], parts["k"]
    head, payload, signature = token.split(".")
    assert json.loads(unb64url(head)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64url(signature)
    assert len(raw) == 64, "an ES256 signature is r || s, 64 bytes"
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    signature_der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(signature_der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    return Vapid(json.loads(unb64url(payload)), key)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    vapid: Vapid
    plaintext: bytes
    status: int  # what the service answered

    @property
    def payload(self) -> dict:
        return json.loads(self.plaintext)


@dataclass
class PushService:
    """Start with ``start()``; ``answers`` are the statuses of the next requests (then 201)."""

    tls_files: tuple[Path, Path] | None = None  # (cert, key): serve https with this certificate
    browser_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))
    answers: list[int | tuple[int, dict]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # requests whose VAPID or encryption did not check out
    on_request: Callable[[], None] | None = None  # runs before the answer (e.g. new mail meanwhile)

    def start(self) -> PushService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    vapid = verify_vapid(headers.get("authorization", ""))
                    plaintext = decrypt(body, service.browser_key, service.auth_secret)
                except Exception as exc:  # the test fails on service.errors; the sender sees a refusal
                    service.errors.append(f"{type(exc).__name__}: {exc}")
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if service.on_request is not None:
                    service.on_request()
                answer = service.answers.pop(0) if service.answers else 201
                status, extra = answer if isinstance(answer, tuple) else (answer, {})
                service.received.append(Received(self.path, headers, body, vapid, plaintext, status))
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls_files:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, self.tls_files))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls_files else 'http'}://127.0.0.1:{self.server.server_port}"

    def endpoint(self, name: str = "browser-1") -> str:
        return f"{self.origin}/push/{name}"

    @property
    def p256dh(self) -> str:
        return b64url(public_bytes(self.browser_key))

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def check_claims(self, received: Received, *, subject: str, public_key: str) -> None:
        """The JWT names this service's origin, our subject, expires within 24 hours, and has our key."""
        claims = received.vapid.claims
        assert claims["aud"] == self.origin
        assert claims["sub"] == subject
        assert time.time() < claims["exp"] <= time.time() + 24 * 3600
        assert received.vapid.public_key == public_key

    def wait(self, count: int = 1, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"the push service received {len(self.received)} of {count}"
            time.sleep(0.1)
        return self.received


SUBJECT = "mailto:postmaster@example.org"


def turn_push_on(settings) -> str:
    """Give the server a new VAPID key pair and let it push to loopback (our push service); returns the public key."""
    from push import vapid

    private = vapid.generate_private_key()
    settings.WEBPOP_VAPID_PRIVATE_KEY = private
    settings.WEBPOP_VAPID_PUBLIC_KEY = vapid.public_key_of(private)
    settings.WEBPOP_VAPID_SUBJECT = SUBJECT
    settings.WEBPOP_PUSH_ALLOW_PRIVATE = True
    return settings.WEBPOP_VAPID_PUBLIC_KEY
