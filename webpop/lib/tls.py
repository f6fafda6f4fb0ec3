"""TLS client contexts and SHA-256 certificate fingerprints, for every client that connects out
(POP3, SMTP, autoconfig lookups)."""

from __future__ import annotations

import functools
import re
import ssl


@functools.lru_cache(maxsize=16)
def make_tls_context(ca_file: str | None = None, *, pinned: bool = False) -> ssl.SSLContext:
    """System CAs plus an optional extra bundle, host name checked, TLS 1.2+.

    With a pinned fingerprint the chain is not checked (self-signed servers are
    what pinning is for); the fingerprint comparison replaces it. Contexts are
    cached: loading the system CA store costs ~30 ms, more than a whole poll.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if pinned:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def normalize_fingerprint(value: str) -> str:
    """``AB:CD:…`` or ``abcd…`` → lowercase hex of a SHA-256 fingerprint."""
    cleaned = re.sub(r"[\s:]", "", value).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", cleaned):
        raise ValueError("a SHA-256 certificate fingerprint is 64 hex digits (colons allowed)")
    return cleaned
