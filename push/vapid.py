"""VAPID keys (RFC 8292): the P-256 key pair a push service knows this server by.

Keys travel as unpadded base64url text: the private key as its 32-byte scalar (what
``manage.py vapidkeys`` writes, and what web-push tools print), the public key as the
65-byte uncompressed point (the ``applicationServerKey`` browsers subscribe with).
Plain ``cryptography``, no Django: settings.py checks the configured keys with it.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


class VapidKeyError(ValueError):
    """The text is not a usable key; the message says why."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded (or padded) base64url; ValueError on anything else."""
    text = text.strip()
    if not text or any(c not in _B64URL for c in text.rstrip("=")):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def generate_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise VapidKeyError("not base64url text") from None
    if len(raw) != 32:
        raise VapidKeyError(f"a private key has 32 bytes, this one {len(raw)}")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise VapidKeyError("not a P-256 private key") from None


def public_key_of(private_text: str) -> str:
    """The public key (uncompressed point, base64url) of a private key given as text."""
    public = load_private_key(private_text).public_key()
    return b64url_encode(public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its uncompressed point (a browser's ``p256dh`` key, or ours)."""
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise VapidKeyError("not base64url text") from None
    if len(raw) != 65 or raw[0] != 4:
        raise VapidKeyError("not an uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise VapidKeyError("not a point on P-256") from None
