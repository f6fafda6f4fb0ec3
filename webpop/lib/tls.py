"""TLS client contexts and SHA-256 certificate fingerprints, for every client that connects out
(POP3, SMTP, autoconfig lookups)."""

from __future__ import annotations

import collections
import functools
import re
import ssl
import threading


class ResumingContext(ssl.SSLContext):
    """A client context that offers each server the TLS session it last handed out.

    A poll connects to the same few servers every few minutes: resuming spares the server its
    certificate and signature (measured: a third of a Dovecot login process's CPU with an RSA
    certificate; under TLS 1.3 no round trip and none of our CPU, bench/RESULTS.md).
    Sessions are kept per host name, as SNI and the certificate check are: a session is offered only
    to the name it was made with. Both ``wrap_socket`` and ``wrap_bio`` (what asyncio's
    ``start_tls`` calls) pick the session up, so both POP3 drivers resume the same way.
    """

    MAX_HOSTS = 1024

    def __new__(cls, protocol=ssl.PROTOCOL_TLS_CLIENT, *args, **kwargs):
        self = super().__new__(cls, protocol, *args, **kwargs)
        self._sessions: collections.OrderedDict[str, ssl.SSLSession] = collections.OrderedDict()
        self._sessions_lock = threading.Lock()
        return self

    def session_for(self, server_hostname: str | None) -> ssl.SSLSession | None:
        if not server_hostname:
            return None
        with self._sessions_lock:
            return self._sessions.get(server_hostname)

    def remember(self, server_hostname: str, ssl_object: ssl.SSLObject | ssl.SSLSocket) -> None:
        """Keep the connection's session for the next one to ``server_hostname``, if it can resume.

        Under TLS 1.3 a session is resumable only once the server's ticket has arrived (after the
        handshake, with the first data read), so call this when the connection is done.
        """
        session = ssl_object.session
        if session is None or not (session.has_ticket or (ssl_object.version() != "TLSv1.3" and session.id)):
            return
        with self._sessions_lock:
            self._sessions[server_hostname] = session
            self._sessions.move_to_end(server_hostname)
            while len(self._sessions) > self.MAX_HOSTS:
                self._sessions.popitem(last=False)

    def forget(self, server_hostname: str) -> None:
        with self._sessions_lock:
            self._sessions.pop(server_hostname, None)

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, suppress_ragged_eofs=True,
                    server_hostname=None, session=None):  # fmt: skip
        if session is None and not server_side:
            session = self.session_for(server_hostname)
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )

    def wrap_bio(self, incoming, outgoing, server_side=False, server_hostname=None, session=None):
        if session is None and not server_side:
            session = self.session_for(server_hostname)
        return super().wrap_bio(
            incoming, outgoing, server_side=server_side, server_hostname=server_hostname, session=session
        )


@functools.lru_cache(maxsize=16)
def make_tls_context(ca_file: str | None = None, *, pinned: bool = False, resume: bool = False) -> ssl.SSLContext:
    """System CAs plus an optional extra bundle, host name checked, TLS 1.2+.

    With a pinned fingerprint the chain is not checked (self-signed servers are
    what pinning is for); the fingerprint comparison replaces it. Contexts are
    cached: loading the system CA store costs ~30 ms, more than a whole poll.
    ``resume`` gives a ``ResumingContext`` (the POP3 clients'): its sessions are
    kept per host name, so one protocol's clients share it, not two protocols
    that may meet the same name on different ports.
    """
    if resume:
        # As ssl.create_default_context(SERVER_AUTH) builds it, in the subclass (a test keeps the two alike).
        context: ssl.SSLContext = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
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
