"""The part of a POP3 client that is the same for both drivers (blocking.py, aio.py): settings, the
sans-I/O session (session.py) and what it has learned."""

from __future__ import annotations

import ssl
import time

from . import tls
from .core import Capabilities
from .errors import Pop3TimeoutError
from .profile import ServerProfile
from .session import DEFAULT_WINDOW, Session


class Driver:
    """What the blocking and the asyncio client share: their settings, the session, what it knows.

    A subclass adds the I/O: running the session's steps on a socket or on an event loop.
    """

    def __init__(
        self,
        host: str,
        port: int,
        security: str = "ssl",
        *,
        timeout: float = 60.0,
        session_timeout: float | None = None,
        ca_file: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        fingerprint_sha256: str | None = None,
        allow_private: bool = False,
        window: int = DEFAULT_WINDOW,
        profile: ServerProfile | None = None,
        pipelining: bool = True,
    ):
        if security not in {"ssl", "starttls", "none"}:
            raise ValueError(f"security must be ssl, starttls or none, not {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.timeout = timeout
        self.session_timeout = session_timeout
        self.allow_private = allow_private
        self.fingerprint = tls.normalize_fingerprint(fingerprint_sha256) if fingerprint_sha256 else None
        if tls_context is None and security != "none":
            tls_context = tls.make_tls_context(ca_file, pinned=self.fingerprint is not None, resume=True)
        self._tls_context = tls_context
        usable = profile if profile is not None and profile.usable() else None
        self.session = Session(host, port, window=window, pipelining=pipelining, profile=usable)
        self._deadline: float | None = None
        self.peer_fingerprint: str | None = None
        self._tls_object: ssl.SSLObject | ssl.SSLSocket | None = None  # once its certificate passed
        self.tls_resumed = False  # whether the TLS handshake resumed an earlier session

    def _tls_done(self, ssl_object) -> None:
        """The handshake is over: check the certificate, then let the session be kept at close."""
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.peer_fingerprint = tls.check_peer(self.host, der, self.fingerprint)
        self._tls_object = ssl_object
        self.tls_resumed = bool(ssl_object is not None and ssl_object.session_reused)
        self.session.tls_started()

    def _tls_failed(self, exc: BaseException) -> Exception:
        # A server that fails the handshake may have been offered a session it no longer takes.
        tls.forget_session(self._tls_context, self.host)
        return tls.handshake_error(self.host, exc)

    def _keep_tls_session(self) -> None:
        ssl_object, self._tls_object = self._tls_object, None
        if ssl_object is not None:
            tls.remember_session(self._tls_context, self.host, ssl_object)

    def _start_clock(self) -> None:
        """The session's whole-session limit starts with the connection."""
        if self.session_timeout is not None:
            self._deadline = time.monotonic() + self.session_timeout

    def _op_timeout(self) -> float:
        if self._deadline is None:
            return self.timeout
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise Pop3TimeoutError(f"The session with {self.host} ran past its {self.session_timeout:g} s limit.")
        return min(self.timeout, remaining)

    @property
    def window(self) -> int:
        return self.session.window

    @property
    def greeting(self) -> str:
        return self.session.greeting

    @property
    def apop_timestamp(self) -> str | None:
        return self.session.apop_timestamp

    @property
    def capabilities(self) -> Capabilities:
        return self.session.capabilities

    @property
    def encrypted(self) -> bool:
        return self.session.encrypted

    @property
    def authenticated_with(self) -> str | None:
        return self.session.authenticated_with

    @property
    def profile(self) -> ServerProfile | None:
        """What to pass as ``profile`` next time (None until logged in)."""
        return self.session.learned_profile(time.time())

    def offered_mechanisms(self) -> list[str]:
        """The password login methods this server offers, best first for this connection."""
        return self.session.offered_mechanisms()

    def choose_mechanism(self) -> str:
        return self.session.choose_mechanism()
