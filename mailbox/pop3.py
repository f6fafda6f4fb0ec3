"""A POP3 client on ``socket`` + ``ssl`` (RFC 1939, 2449, 2595, 3206, 5034).

Why not ``poplib``: it caps lines at 2,048 bytes, holds whole messages in
memory as lists of lines, has no pipelining, no SASL, no response codes, and
does not verify certificates unless told to. This client:

* verifies TLS by default (system CAs plus an optional bundle, TLS 1.2+), or
  checks a pinned SHA-256 certificate fingerprint instead;
* streams each message into a caller-given file while hashing it, scanning
  the socket buffer for dot-stuffed lines with ``bytes.find`` rather than line
  by line, so memory is constant and lines may be of any length;
* pipelines RETR/DELE/TOP when the server offers PIPELINING;
* authenticates with USER/PASS, APOP and SASL (PLAIN, LOGIN, CRAM-MD5,
  SCRAM-SHA-1, SCRAM-SHA-256 with server signature check, XOAUTH2, OAUTHBEARER);
* turns server answers into exceptions the sync engine can act on.

It reads no Django settings: callers pass everything in. It never sends QUIT on
its own after an error, so the server rolls back the session's DELEs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import io
import re
import secrets
import socket
import ssl
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from webpop import netguard
from webpop.netguard import is_public_address  # noqa: F401 (part of this module's API)

# Status and listing lines longer than this are a protocol error; message
# lines are unbounded (they are streamed, never held whole).
MAX_STATUS_LINE = 64 * 1024
MAX_LISTING_LINES = 10_000_000
RECV_SIZE = 256 * 1024
DEFAULT_WINDOW = 50
DOT = 0x2E
LF = 0x0A


# --- Errors -----------------------------------------------------------------


class Pop3Error(Exception):
    """Base class. ``error_class`` matches ``accounts.models.ErrorClass``."""

    error_class = "protocol"

    def __init__(self, message: str, *, response: str | None = None, code: str | None = None):
        super().__init__(message)
        self.response = response
        self.code = code


class Pop3ConnectError(Pop3Error):
    """Could not reach the server, or lost it: DNS, refused, reset."""

    def __init__(self, message: str, *, error_class: str = "network"):
        super().__init__(message)
        self.error_class = error_class


class Pop3PrivateAddressError(Pop3ConnectError):
    def __init__(self, message: str):
        super().__init__(message, error_class="private_address")


class Pop3TimeoutError(Pop3Error):
    error_class = "timeout"


class Pop3TLSError(Pop3Error):
    error_class = "tls"


class Pop3ProtocolError(Pop3Error):
    """The server said something a POP3 server must not say, or closed early."""

    error_class = "protocol"


class Pop3ServerError(Pop3Error):
    """The server answered -ERR (permanent unless a response code says otherwise)."""

    error_class = "permanent"


class Pop3TemporaryError(Pop3ServerError):
    """[IN-USE], [LOGIN-DELAY], [SYS/TEMP]: try again later."""

    error_class = "temporary"


class Pop3AuthError(Pop3ServerError):
    error_class = "auth"


class Pop3InsecureError(Pop3Error):
    """Refusing to authenticate over an unencrypted connection."""

    error_class = "tls"


_LOCKED_WORDS = re.compile(r"\b(lock|locked|in use|in-use|busy|try again later)\b", re.IGNORECASE)


def server_error(line: str, *, during_login: bool = False) -> Pop3ServerError:
    """Turn a ``-ERR`` line into the exception its response code calls for (RFC 2449, 3206)."""
    text = line[4:].strip()
    code = None
    if text.startswith("["):
        end = text.find("]")
        if end > 1:
            code = text[1:end].upper()
    root = code.split("/", 1)[0] if code else None
    if root in {"IN-USE", "LOGIN-DELAY"} or code == "SYS/TEMP":
        return Pop3TemporaryError(f"Server busy: {text}", response=line, code=code)
    if code == "SYS/PERM":
        return Pop3ServerError(f"Server error: {text}", response=line, code=code)
    if during_login:
        # Older servers give no codes; a locked maildrop still must not look like a wrong password.
        if code is None and _LOCKED_WORDS.search(text):
            return Pop3TemporaryError(f"Server busy: {text}", response=line, code=None)
        return Pop3AuthError(f"The server rejected the user name or password ({text}).", response=line, code=code)
    if code == "AUTH":
        return Pop3AuthError(f"Authentication failed: {text}", response=line, code=code)
    return Pop3ServerError(f"Server error: {text}", response=line, code=code)


# --- Address checks and TLS ---------------------------------------------------


def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Every address of ``host``, checked by ``webpop.netguard``, as POP3 errors.

    The client connects to exactly these addresses, so a DNS answer that
    changes between the check and the connect cannot redirect it.
    """
    try:
        return netguard.resolve(host, port, allow_private=allow_private)
    except netguard.UnresolvableHost as exc:
        raise Pop3ConnectError(str(exc), error_class="dns") from None
    except netguard.AddressNotAllowed as exc:
        raise Pop3PrivateAddressError(str(exc)) from None


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


# --- Results ----------------------------------------------------------------


@dataclass
class Capabilities:
    """CAPA (RFC 2449), typed. Empty when the server has no CAPA."""

    raw: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Capabilities:
        raw: dict[str, list[str]] = {}
        for line in lines:
            words = line.split()
            if words:
                raw[words[0].upper()] = words[1:]
        return cls(raw)

    def __contains__(self, name: str) -> bool:
        return name.upper() in self.raw

    def _int_arg(self, name: str) -> int | None:
        args = self.raw.get(name)
        if args:
            with contextlib.suppress(ValueError):
                return int(args[0])
        return None

    @property
    def stls(self) -> bool:
        return "STLS" in self.raw

    @property
    def uidl(self) -> bool:
        return "UIDL" in self.raw

    @property
    def top(self) -> bool:
        return "TOP" in self.raw

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.raw

    @property
    def user(self) -> bool:
        return "USER" in self.raw

    @property
    def resp_codes(self) -> bool:
        return "RESP-CODES" in self.raw

    @property
    def auth_resp_code(self) -> bool:
        return "AUTH-RESP-CODE" in self.raw

    @property
    def utf8(self) -> bool:
        return "UTF8" in self.raw

    @property
    def sasl(self) -> list[str]:
        return [m.upper() for m in self.raw.get("SASL", [])]

    @property
    def login_delay(self) -> int | None:
        """Minimum seconds between logins the server asks for (LOGIN-DELAY)."""
        return self._int_arg("LOGIN-DELAY")

    @property
    def expire(self) -> int | None:
        """Days the server keeps retrieved mail (EXPIRE n); None if NEVER or not said."""
        return self._int_arg("EXPIRE")

    @property
    def expire_never(self) -> bool:
        args = self.raw.get("EXPIRE")
        return bool(args) and args[0].upper() == "NEVER"

    @property
    def implementation(self) -> str | None:
        args = self.raw.get("IMPLEMENTATION")
        return " ".join(args) if args else None


@dataclass(frozen=True)
class RetrResult:
    size: int
    sha256: str


# Strongest first. Challenge-response mechanisms never put the password on the wire.
MECHANISM_ORDER = ("SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "APOP", "PLAIN", "LOGIN", "USER")
_APOP_TIMESTAMP = re.compile(r"<[\x21-\x7e]+@[\x21-\x7e]+>")


# --- Client -----------------------------------------------------------------


class Pop3Client:
    """One POP3 session. Use as a context manager; ``quit()`` commits DELEs.

    Leaving the ``with`` block because of an exception closes the connection
    without QUIT, so the server rolls back any DELE of this session.
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
    ):
        if security not in {"ssl", "starttls", "none"}:
            raise ValueError(f"security must be ssl, starttls or none, not {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.timeout = timeout
        self.session_timeout = session_timeout
        self.allow_private = allow_private
        self.window = max(1, window)
        self.fingerprint = normalize_fingerprint(fingerprint_sha256) if fingerprint_sha256 else None
        if tls_context is None and security != "none":
            tls_context = make_tls_context(ca_file, pinned=self.fingerprint is not None)
        self._tls_context = tls_context
        self._sock: socket.socket | None = None
        self._buf = b""
        self._pos = 0
        self._deadline: float | None = None
        self._broken = False
        self.greeting = ""
        self.apop_timestamp: str | None = None
        self.capabilities = Capabilities()
        self.encrypted = False
        self.peer_fingerprint: str | None = None
        self.authenticated_with: str | None = None

    # Connection ------------------------------------------------------------

    def __enter__(self) -> Pop3Client:
        self.connect()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def connect(self) -> str:
        if self.session_timeout is not None:
            self._deadline = time.monotonic() + self.session_timeout
        addresses = resolve(self.host, self.port, allow_private=self.allow_private)
        try:
            sock = netguard.connect_first(addresses, self.port, timeout=self._op_timeout())
        except OSError as exc:
            raise self._connect_error(exc) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        try:
            if self.security == "ssl":
                self._start_tls()
            self.greeting = self._read_greeting()
            self.capa()
            if self.security == "starttls":
                if not self.capabilities.stls:
                    raise Pop3TLSError(f"{self.host} does not offer STLS; choose SSL/TLS or check the port.")
                self._command("STLS")
                if self._pos < len(self._buf):
                    # Anything sent before the handshake could be injected in clear text (CVE-2011-0411 style).
                    raise Pop3ProtocolError(f"{self.host} sent data after STLS before the TLS handshake.")
                self._start_tls()
                self.capa()  # RFC 2595: capabilities may change after TLS.
        except BaseException:
            self.close()
            raise
        return self.greeting

    def _read_greeting(self) -> str:
        raw = self._readline(MAX_STATUS_LINE)
        line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        if line.startswith("-ERR"):
            error = server_error(line)
            if type(error) is Pop3ServerError and error.code is None:
                # A refusing greeting is usually "too many connections".
                raise Pop3TemporaryError(f"{self.host} refused the session: {line[4:].strip()}", response=line)
            raise error
        if not line.startswith("+OK"):
            raise Pop3ProtocolError(f"{self.host} does not greet like a POP3 server: {line[:100]!r}")
        match = _APOP_TIMESTAMP.search(line)
        self.apop_timestamp = match.group(0) if match else None
        return line

    def _connect_error(self, exc: Exception | None) -> Pop3Error:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, ConnectionRefusedError):
            return Pop3ConnectError(
                f"Connection to {where} was refused: no POP3 server is listening on that port.", error_class="refused"
            )
        if isinstance(exc, TimeoutError | socket.timeout):
            return Pop3TimeoutError(f"Connecting to {where} timed out after {self.timeout:g} s.")
        reason = getattr(exc, "strerror", None) or str(exc)
        return Pop3ConnectError(f"Could not connect to {where}: {reason}.")

    def _start_tls(self) -> None:
        assert self._sock is not None and self._tls_context is not None
        try:
            self._sock = self._tls_context.wrap_socket(self._sock, server_hostname=self.host)
        except ssl.SSLCertVerificationError as exc:
            raise Pop3TLSError(
                f"The certificate of {self.host} could not be verified: {exc.verify_message or exc.reason}."
            ) from None
        except ssl.SSLError as exc:
            raise Pop3TLSError(f"TLS handshake with {self.host} failed: {exc.reason or exc}.") from None
        except TimeoutError:
            raise Pop3TimeoutError(f"TLS handshake with {self.host} timed out.") from None
        except OSError as exc:
            raise Pop3ConnectError(f"Connection to {self.host} failed during TLS: {exc}.") from None
        der = self._sock.getpeercert(binary_form=True) or b""
        self.peer_fingerprint = hashlib.sha256(der).hexdigest()
        if self.fingerprint is not None and not hmac.compare_digest(self.peer_fingerprint, self.fingerprint):
            raise Pop3TLSError(
                f"The certificate of {self.host} does not match the pinned fingerprint "
                f"(server presented SHA-256 {self.peer_fingerprint})."
            )
        self.encrypted = True
        self._buf, self._pos = b"", 0

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buf, self._pos = b"", 0

    # Wire ------------------------------------------------------------------

    def _op_timeout(self) -> float:
        if self._deadline is None:
            return self.timeout
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise Pop3TimeoutError(f"The session with {self.host} ran past its {self.session_timeout:g} s limit.")
        return min(self.timeout, remaining)

    def _check_usable(self) -> socket.socket:
        if self._sock is None:
            raise Pop3ProtocolError("not connected")
        if self._broken:
            raise Pop3ProtocolError("the session was abandoned mid-response and cannot be used")
        return self._sock

    def _send_raw(self, data: bytes) -> None:
        sock = self._check_usable()
        try:
            sock.settimeout(self._op_timeout())
            sock.sendall(data)
        except TimeoutError:
            raise Pop3TimeoutError(f"{self.host} did not accept data within {self.timeout:g} s.") from None
        except OSError as exc:
            raise Pop3ConnectError(f"Connection to {self.host} lost: {exc}.") from None

    def _send(self, line: str) -> None:
        if "\r" in line or "\n" in line or "\0" in line:
            raise ValueError("POP3 command arguments may not contain CR, LF or NUL")
        self._send_raw(line.encode("utf-8") + b"\r\n")

    def _fill(self) -> None:
        """Append the next bytes from the socket to the unread part of the buffer."""
        sock = self._check_usable()
        try:
            sock.settimeout(self._op_timeout())
            data = sock.recv(RECV_SIZE)
        except TimeoutError:
            raise Pop3TimeoutError(f"{self.host} did not answer within {self.timeout:g} s.") from None
        except ssl.SSLError as exc:
            raise Pop3ProtocolError(f"TLS error from {self.host}: {exc.reason or exc}.") from None
        except OSError as exc:
            raise Pop3ConnectError(f"Connection to {self.host} lost: {exc}.") from None
        if not data:
            raise Pop3ProtocolError(f"{self.host} closed the connection unexpectedly.")
        if self._pos < len(self._buf):
            self._buf = self._buf[self._pos :] + data
        else:
            self._buf = data
        self._pos = 0

    def _readline(self, limit: int) -> bytes:
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0:
                if end - self._pos >= limit:
                    raise Pop3ProtocolError(f"{self.host} sent an overlong line.")
                line = self._buf[self._pos : end + 1]
                self._pos = end + 1
                return line
            if len(self._buf) - self._pos >= limit:
                raise Pop3ProtocolError(f"{self.host} sent an overlong line.")
            self._fill()

    def _read_status(self, *, during_login: bool = False) -> str:
        raw = self._readline(MAX_STATUS_LINE)
        line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        if line.startswith("+OK"):
            return line
        if line.startswith("-ERR"):
            raise server_error(line, during_login=during_login)
        raise Pop3ProtocolError(f"{self.host} sent an unexpected reply: {line[:200]!r}", response=line)

    def _command(self, line: str, *, during_login: bool = False) -> str:
        self._send(line)
        return self._read_status(during_login=during_login)

    def _read_listing(self) -> list[str]:
        lines: list[str] = []
        while True:
            line = self._readline(MAX_STATUS_LINE).rstrip(b"\r\n")
            if line == b".":
                return lines
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line.decode("utf-8", "replace"))
            if len(lines) > MAX_LISTING_LINES:
                raise Pop3ProtocolError(f"{self.host} sent an endless listing.")

    def _read_body_to(self, out: BinaryIO) -> RetrResult:
        """Read a multi-line body up to the terminating dot into ``out``.

        Scans for ``\\n.`` with ``bytes.find`` instead of looping per line:
        dot-stuffed lines are rare, so most of a message is written in large
        slices. Line endings are kept exactly as sent (CRLF or bare LF).
        """
        digest = hashlib.sha256()
        size = 0
        at_line_start = True
        write = out.write
        update = digest.update
        while True:
            buf, pos, end = self._buf, self._pos, len(self._buf)
            if pos >= end:
                self._fill()
                continue
            if at_line_start and buf[pos] == DOT:
                # Need ".\r\n" or ".\n" to tell the terminator from a stuffed dot.
                if end - pos < 2 or (end - pos < 3 and buf[pos + 1] != LF):
                    self._fill()
                    continue
                if buf[pos + 1] == LF or buf[pos + 1 : pos + 3] == b"\r\n":
                    self._pos = pos + (2 if buf[pos + 1] == LF else 3)
                    return RetrResult(size=size, sha256=digest.hexdigest())
                pos += 1  # a stuffed dot: drop it
            hit = buf.find(b"\n.", pos)
            stop = end if hit < 0 else hit + 1
            if stop > pos:
                chunk = memoryview(buf)[pos:stop]
                write(chunk)
                update(chunk)
                size += stop - pos
                at_line_start = buf[stop - 1] == LF
            self._pos = stop

    # Authentication ----------------------------------------------------------

    def capa(self) -> Capabilities:
        try:
            self._command("CAPA")
        except Pop3ServerError:
            self.capabilities = Capabilities()
            return self.capabilities
        self.capabilities = Capabilities.parse(self._read_listing())
        return self.capabilities

    def _require_secure(self, allow_plaintext: bool) -> None:
        if not self.encrypted and not allow_plaintext:
            raise Pop3InsecureError(
                "Refusing to authenticate over an unencrypted connection; choose SSL/TLS or STARTTLS."
            )

    def choose_mechanism(self) -> str:
        offered = set(self.capabilities.sasl)
        if self.apop_timestamp:
            offered.add("APOP")
        if self.capabilities.user or not self.capabilities.raw or not offered:
            offered.add("USER")  # RFC 1939 servers without CAPA still take USER/PASS
        for mechanism in MECHANISM_ORDER:
            if mechanism in offered:
                return mechanism
        return "USER"

    def login(
        self, username: str, password: str, *, allow_plaintext: bool = False, mechanism: str | None = None
    ) -> str:
        """Authenticate with ``mechanism`` or the strongest one offered; returns the mechanism used."""
        self._require_secure(allow_plaintext)
        for value in (username, password):
            if "\r" in value or "\n" in value or "\0" in value:
                raise Pop3AuthError("User name and password may not contain line breaks or NUL.")
        mechanism = (mechanism or self.choose_mechanism()).upper()
        if mechanism == "USER":
            self._command(f"USER {username}", during_login=True)
            self._command(f"PASS {password}", during_login=True)
        elif mechanism == "APOP":
            if not self.apop_timestamp:
                raise Pop3AuthError(f"{self.host} does not offer APOP (no timestamp in its greeting).")
            digest = hashlib.md5((self.apop_timestamp + password).encode(), usedforsecurity=False).hexdigest()
            self._command(f"APOP {username} {digest}", during_login=True)
        elif mechanism == "PLAIN":
            self._sasl("PLAIN", f"\0{username}\0{password}".encode(), None)
        elif mechanism == "LOGIN":
            answers = iter([username.encode(), password.encode()])
            self._sasl("LOGIN", None, lambda _challenge: next(answers, b""))
        elif mechanism == "CRAM-MD5":

            def cram(challenge: bytes) -> bytes:
                mac = hmac.new(password.encode(), challenge, "md5").hexdigest()
                return f"{username} {mac}".encode()

            self._sasl("CRAM-MD5", None, cram)
        elif mechanism in {"SCRAM-SHA-1", "SCRAM-SHA-256"}:
            scram = _Scram("sha1" if mechanism == "SCRAM-SHA-1" else "sha256", username, password)
            self._sasl(mechanism, scram.client_first(), scram.step)
            if not scram.server_verified:
                raise Pop3AuthError(f"{self.host} accepted the login without proving it knows the password.")
        else:
            raise ValueError(f"unknown authentication mechanism {mechanism!r}")
        self.authenticated_with = mechanism
        self.capa()  # RFC 2449: capabilities may change after login.
        return mechanism

    def login_oauth(
        self,
        username: str,
        access_token: str,
        *,
        mechanism: str = "XOAUTH2",
        two_step: bool = False,
        allow_plaintext: bool = False,
    ) -> str:
        """SASL XOAUTH2 (Google, Microsoft; two-step for Outlook) or OAUTHBEARER (RFC 7628)."""
        self._require_secure(allow_plaintext)
        mechanism = mechanism.upper()
        if mechanism == "XOAUTH2":
            initial = f"user={username}\x01auth=Bearer {access_token}\x01\x01".encode()
        elif mechanism == "OAUTHBEARER":
            user = username.replace("=", "=3D").replace(",", "=2C")
            initial = f"n,a={user},\x01host={self.host}\x01port={self.port}\x01auth=Bearer {access_token}\x01\x01"
            initial = initial.encode()
        else:
            raise ValueError(f"unknown OAuth mechanism {mechanism!r}")
        # A challenge after the token is the server's JSON error: answer so it can send -ERR (RFC 7628 3.2.3).
        failure_answer = b"" if mechanism == "XOAUTH2" else b"\x01"
        self._sasl(mechanism, initial, lambda _challenge: failure_answer, two_step=two_step)
        self.authenticated_with = mechanism
        self.capa()
        return mechanism

    def _sasl(
        self,
        mechanism: str,
        initial: bytes | None,
        step: Callable[[bytes], bytes] | None,
        *,
        two_step: bool = False,
    ) -> None:
        """RFC 5034 AUTH exchange. ``initial`` goes with the command unless ``two_step``."""
        if initial is not None and not two_step:
            encoded = base64.b64encode(initial).decode() or "="
            self._send(f"AUTH {mechanism} {encoded}")
            pending_initial = None
        else:
            self._send(f"AUTH {mechanism}")
            pending_initial = initial
        for _round in range(16):
            raw = self._readline(MAX_STATUS_LINE)
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if line.startswith("+OK"):
                extra = line[3:].strip()
                if extra and step is not None and mechanism.startswith("SCRAM"):
                    # Some servers send SCRAM's server-final message with +OK.
                    with contextlib.suppress(binascii.Error, ValueError):
                        step(base64.b64decode(extra, validate=True))
                return
            if line.startswith("-ERR"):
                raise server_error(line, during_login=True)
            if not line.startswith("+"):
                raise Pop3ProtocolError(f"{self.host} sent an unexpected reply during AUTH: {line[:100]!r}")
            try:
                challenge = base64.b64decode(line[1:].strip(), validate=True)
            except (binascii.Error, ValueError):
                self._send("*")  # cancel the exchange
                self._read_status(during_login=True)
                raise Pop3ProtocolError(f"{self.host} sent a malformed AUTH challenge.") from None
            if pending_initial is not None:
                response, pending_initial = pending_initial, None
            elif step is not None:
                try:
                    response = step(challenge)
                except Pop3AuthError:
                    self._send("*")
                    with contextlib.suppress(Pop3ServerError):
                        self._read_status(during_login=True)
                    raise
            else:
                response = b""
            self._send(base64.b64encode(response).decode())
        raise Pop3ProtocolError(f"{self.host} never ended the AUTH exchange.")

    def utf8(self) -> None:
        """Enable UTF-8 mode (RFC 6856) when offered; must come before login to affect it."""
        self._command("UTF8")

    # Commands --------------------------------------------------------------

    def stat(self) -> tuple[int, int]:
        parts = self._command("STAT").split()
        try:
            return int(parts[1]), int(parts[2])
        except (IndexError, ValueError):
            raise Pop3ProtocolError(f"Bad STAT answer from {self.host}.") from None

    def list(self) -> dict[int, int]:
        self._command("LIST")
        sizes: dict[int, int] = {}
        for line in self._read_listing():
            parts = line.split()
            try:
                sizes[int(parts[0])] = int(parts[1])
            except (IndexError, ValueError):
                raise Pop3ProtocolError(f"Bad LIST line from {self.host}: {line[:100]!r}") from None
        return sizes

    def list_one(self, number: int) -> int:
        parts = self._command(f"LIST {int(number)}").split()
        try:
            return int(parts[2])
        except (IndexError, ValueError):
            raise Pop3ProtocolError(f"Bad LIST answer from {self.host}.") from None

    def uidl(self) -> list[tuple[int, str]]:
        """``[(message number, unique id), ...]`` in server order, duplicates included."""
        self._command("UIDL")
        result: list[tuple[int, str]] = []
        for line in self._read_listing():
            parts = line.split()
            try:
                result.append((int(parts[0]), parts[1]))
            except (IndexError, ValueError):
                raise Pop3ProtocolError(f"Bad UIDL line from {self.host}: {line[:100]!r}") from None
        return result

    def uidl_one(self, number: int) -> str:
        parts = self._command(f"UIDL {int(number)}").split()
        if len(parts) < 3:
            raise Pop3ProtocolError(f"Bad UIDL answer from {self.host}.")
        return parts[2]

    def retr_to(self, number: int, out: BinaryIO) -> RetrResult:
        """RETR ``number`` into ``out``, undoing dot-stuffing, hashing as it goes.

        Memory stays constant whatever the message or line length. If the
        connection ends before the terminating dot, ``Pop3ProtocolError`` is
        raised and what was written must be discarded.
        """
        self._command(f"RETR {int(number)}")
        return self._read_body_to(out)

    def top_to(self, number: int, lines: int, out: BinaryIO) -> RetrResult:
        self._command(f"TOP {int(number)} {int(lines)}")
        return self._read_body_to(out)

    def top(self, number: int, lines: int = 0) -> bytes:
        out = io.BytesIO()
        self.top_to(number, lines, out)
        return out.getvalue()

    def retr_many(
        self, numbers: Iterable[int], open_out: Callable[[int], BinaryIO]
    ) -> Iterator[tuple[int, RetrResult | Pop3ServerError]]:
        """RETR each number, pipelined when the server offers PIPELINING.

        Yields ``(number, RetrResult)`` in order, or ``(number, error)`` when the
        server answers -ERR for that one message. Connection-level failures
        raise. Abandoning the iterator mid-way leaves responses in flight, so
        the session is then unusable (and no QUIT will be sent).
        """
        return self._pipeline("RETR", numbers, open_out)

    def top_many(
        self, numbers: Iterable[int], lines: int, open_out: Callable[[int], BinaryIO]
    ) -> Iterator[tuple[int, RetrResult | Pop3ServerError]]:
        return self._pipeline(f"TOP {{}} {int(lines)}", numbers, open_out)

    def _pipeline(
        self, command: str, numbers: Iterable[int], open_out: Callable[[int], BinaryIO]
    ) -> Iterator[tuple[int, RetrResult | Pop3ServerError]]:
        template = command if "{}" in command else command + " {}"
        window = self.window if self.capabilities.pipelining else 1
        todo = iter(numbers)
        in_flight: deque[int] = deque()
        done = False

        def refill() -> None:
            batch = []
            while len(in_flight) < window:
                number = next(todo, None)
                if number is None:
                    break
                in_flight.append(number)
                batch.append(template.format(int(number)).encode() + b"\r\n")
            if batch:
                self._send_raw(b"".join(batch))

        try:
            refill()
            while in_flight:
                number = in_flight.popleft()
                try:
                    self._read_status()
                except Pop3ServerError as exc:
                    refill()
                    yield number, exc
                    continue
                refill()  # keep the window full while this body streams in
                out = open_out(number)
                result = self._read_body_to(out)
                yield number, result
            done = True
        finally:
            if not done:
                self._broken = True

    def dele(self, number: int) -> None:
        self._command(f"DELE {int(number)}")

    def dele_many(self, numbers: Iterable[int]) -> list[Pop3ServerError | None]:
        """DELE each number (pipelined when offered); one entry per number, None when accepted."""
        numbers = [int(n) for n in numbers]
        window = self.window if self.capabilities.pipelining else 1
        results: list[Pop3ServerError | None] = []
        for start in range(0, len(numbers), window):
            chunk = numbers[start : start + window]
            self._send_raw(b"".join(f"DELE {n}\r\n".encode() for n in chunk))
            for _ in chunk:
                try:
                    self._read_status()
                    results.append(None)
                except Pop3ServerError as exc:
                    results.append(exc)
        return results

    def rset(self) -> None:
        self._command("RSET")

    def noop(self) -> None:
        self._command("NOOP")

    def quit(self) -> None:
        """QUIT: the server commits DELEs now. Raises unless it confirms."""
        try:
            self._command("QUIT")
        finally:
            self.close()


# --- SCRAM (RFC 5802, RFC 7677) ----------------------------------------------------


def _saslprep(value: str) -> str:
    # Full SASLprep (RFC 4013) is NFKC plus mapping and prohibitions; NFKC covers
    # what real passwords contain and leaves ASCII untouched.
    return unicodedata.normalize("NFKC", value)


class _Scram:
    def __init__(self, hash_name: str, username: str, password: str):
        self.hash_name = hash_name
        self.username = _saslprep(username).replace("=", "=3D").replace(",", "=2C")
        self.password = _saslprep(password).encode()
        self.client_nonce = base64.b64encode(secrets.token_bytes(24)).decode()
        self.server_verified = False
        self._expected_server_signature: bytes | None = None
        self._client_first_bare = f"n={self.username},r={self.client_nonce}"

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self.hash_name).digest()

    def client_first(self) -> bytes:
        return ("n,," + self._client_first_bare).encode()

    def step(self, challenge: bytes) -> bytes:
        text = challenge.decode("utf-8", "replace")
        fields = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        if self._expected_server_signature is None:
            return self._client_final(text, fields)
        if "e" in fields:
            raise Pop3AuthError(f"SCRAM authentication failed: {fields['e']}")
        try:
            signature = base64.b64decode(fields.get("v", ""), validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if not signature or not hmac.compare_digest(signature, self._expected_server_signature):
            raise Pop3AuthError("The server's SCRAM signature is wrong: it may not be the server you think it is.")
        self.server_verified = True
        return b""

    def _client_final(self, server_first: str, fields: dict[str, str]) -> bytes:
        nonce, salt, iterations = fields.get("r", ""), fields.get("s", ""), fields.get("i", "")
        if not nonce.startswith(self.client_nonce) or not salt or not iterations.isdigit():
            raise Pop3AuthError("The server's SCRAM challenge is malformed.")
        if int(iterations) < 1 or int(iterations) > 10_000_000:
            raise Pop3AuthError("The server's SCRAM iteration count is out of range.")
        salted = hashlib.pbkdf2_hmac(self.hash_name, self.password, base64.b64decode(salt), int(iterations))
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._client_first_bare},{server_first},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._expected_server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
