"""Where a POP3 connection may go and how it is secured; shared by both drivers.

Addresses come from ``webpop.lib.netguard`` (checked, then pinned for the
connection); TLS is verified by default (``webpop.lib.tls``: system CAs plus an optional
bundle, TLS 1.2+), or a pinned SHA-256 certificate fingerprint replaces the chain check.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl

from webpop.lib import netguard
from webpop.lib.tls import ResumingContext, make_tls_context, normalize_fingerprint

from .errors import Pop3ConnectError, Pop3Error, Pop3PrivateAddressError, Pop3TimeoutError, Pop3TLSError

__all__ = [
    "check_peer",
    "connect_error",
    "forget_session",
    "handshake_error",
    "make_tls_context",
    "normalize_fingerprint",
    "remember_session",
    "resolve",
]


def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Every address of ``host``, checked by ``webpop.lib.netguard``, as POP3 errors.

    The client connects to exactly these addresses, so a DNS answer that
    changes between the check and the connect cannot redirect it.
    """
    try:
        return netguard.resolve(host, port, allow_private=allow_private)
    except netguard.UnresolvableHost as exc:
        raise Pop3ConnectError(str(exc), error_class="dns") from None
    except netguard.AddressNotAllowed as exc:
        raise Pop3PrivateAddressError(str(exc)) from None


def check_peer(host: str, der: bytes | None, pinned: str | None) -> str:
    """The SHA-256 fingerprint of the server's certificate; raises if it is not the pinned one."""
    fingerprint = hashlib.sha256(der or b"").hexdigest()
    if pinned is not None and not hmac.compare_digest(fingerprint, pinned):
        raise Pop3TLSError(
            f"The certificate of {host} does not match the pinned fingerprint (server presented SHA-256 {fingerprint})."
        )
    return fingerprint


def handshake_error(host: str, exc: BaseException) -> Exception:
    """A failed TLS handshake as the POP3 error a user can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Pop3TLSError(f"The certificate of {host} could not be verified: {exc.verify_message or exc.reason}.")
    if isinstance(exc, ssl.SSLError):
        return Pop3TLSError(f"TLS handshake with {host} failed: {exc.reason or exc}.")
    if isinstance(exc, TimeoutError):
        return Pop3TimeoutError(f"TLS handshake with {host} timed out.")
    return Pop3ConnectError(f"Connection to {host} failed during TLS: {exc}.")


def connect_error(host: str, port: int, timeout: float, exc: BaseException | None) -> Pop3Error:
    """A failed TCP connect as the POP3 error a user can act on."""
    where = f"{host}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return Pop3ConnectError(
            f"Connection to {where} was refused: no POP3 server is listening on that port.", error_class="refused"
        )
    if isinstance(exc, TimeoutError):
        return Pop3TimeoutError(f"Connecting to {where} timed out after {timeout:g} s.")
    reason = getattr(exc, "strerror", None) or str(exc)
    return Pop3ConnectError(f"Could not connect to {where}: {reason}.")


def remember_session(context: ssl.SSLContext | None, host: str, ssl_object) -> None:
    """Keep a finished connection's TLS session for the next poll of ``host`` (resuming contexts only)."""
    if isinstance(context, ResumingContext):
        context.remember(host, ssl_object)


def forget_session(context: ssl.SSLContext | None, host: str) -> None:
    if isinstance(context, ResumingContext):
        context.forget(host)
