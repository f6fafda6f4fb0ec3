"""A POP3 client (RFC 1939, 2449, 2595, 3206, 5034): one protocol core, two drivers.

Why not ``poplib``: it caps lines at 2,048 bytes, holds whole messages in
memory as lists of lines, has no pipelining, no SASL, no response codes, and
does not verify certificates unless told to. This client:

* verifies TLS by default (system CAs plus an optional bundle, TLS 1.2+), or
  checks a pinned SHA-256 certificate fingerprint instead;
* streams each message into a caller-given file while hashing it, scanning
  the receive buffer for dot-stuffed lines with ``bytes.find`` rather than line
  by line, so memory is constant and lines may be of any length;
* pipelines RETR/DELE/TOP, and the commands that follow a login, when the
  server offers PIPELINING; remembers a server's capabilities and login method
  (:class:`ServerProfile`) so the next session need not ask again;
* authenticates with USER/PASS, APOP and SASL (PLAIN, LOGIN, CRAM-MD5,
  SCRAM-SHA-1, SCRAM-SHA-256 with server signature check and a SaltedPassword
  cache, XOAUTH2, OAUTHBEARER), with initial responses (RFC 5034);
* turns server answers into exceptions the sync engine can act on.

Layout: ``core`` (wire format, no I/O), ``sasl`` (login methods), ``session``
(the protocol logic as generators, no I/O), ``profile``, ``tls`` (network guard
and certificates), and two drivers running the same session logic:
``blocking.Pop3Client`` (sockets; ingest) and ``aio.AsyncPop3Client`` (asyncio;
many sessions in one process). docs/pop3.md says why asyncio.

It reads no Django settings: callers pass everything in. It never sends QUIT on
its own after an error, so the server rolls back the session's DELEs.
"""

from webpop.lib.netguard import is_public_address

from .blocking import RECV_SIZE, Pop3Client
from .core import MAX_LISTING_LINES, MAX_STATUS_LINE, Capabilities, RetrResult
from .errors import (
    Pop3AuthError,
    Pop3ConnectError,
    Pop3Error,
    Pop3InsecureError,
    Pop3PrivateAddressError,
    Pop3ProtocolError,
    Pop3ServerError,
    Pop3TemporaryError,
    Pop3TimeoutError,
    Pop3TLSError,
    server_error,
)
from .profile import ServerProfile
from .sasl import MECHANISM_NAMES, PASSWORD_MECHANISMS, RANKING_CLEAR, RANKING_TLS, Scram, ScramCache
from .session import DEFAULT_WINDOW
from .tls import make_tls_context, normalize_fingerprint, resolve

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_LISTING_LINES",
    "MAX_STATUS_LINE",
    "MECHANISM_NAMES",
    "PASSWORD_MECHANISMS",
    "RANKING_CLEAR",
    "RANKING_TLS",
    "RECV_SIZE",
    "Capabilities",
    "Pop3AuthError",
    "Pop3Client",
    "Pop3ConnectError",
    "Pop3Error",
    "Pop3InsecureError",
    "Pop3PrivateAddressError",
    "Pop3ProtocolError",
    "Pop3ServerError",
    "Pop3TLSError",
    "Pop3TemporaryError",
    "Pop3TimeoutError",
    "RetrResult",
    "Scram",
    "ScramCache",
    "ServerProfile",
    "is_public_address",
    "make_tls_context",
    "normalize_fingerprint",
    "resolve",
    "server_error",
]
