"""A POP3 client on ``socket`` + ``ssl`` (RFC 1939, 2449, 2595, 3206).

The standard library's ``poplib`` caps lines at 2,048 bytes, keeps whole
messages in memory as lists of lines and does not verify certificates unless
told to; this client streams each message into a file while hashing it, has
no line-length limit inside messages, verifies TLS by default and turns server
answers into exceptions the sync engine can act on.

It does not import Django: callers pass everything in.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

# Status lines and listing lines longer than this are a protocol error; message
# lines are unbounded (they are streamed, never held whole).
MAX_STATUS_LINE = 64 * 1024
MAX_LISTING_LINES = 10_000_000
READ_CHUNK = 64 * 1024


# --- Errors -----------------------------------------------------------------


class Pop3Error(Exception):
    """Base class. ``error_class`` matches ``accounts.models.ErrorClass``."""

    error_class = "protocol"

    def __init__(self, message: str, *, response: str | None = None, code: str | None = None):
        super().__init__(message)
        self.response = response
        self.code = code


class Pop3ConnectError(Pop3Error):
    """Could not reach the server: DNS, refused, unreachable."""

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
    """The server answered -ERR."""

    error_class = "permanent"


class Pop3TemporaryError(Pop3ServerError):
    """[IN-USE], [LOGIN-DELAY], [SYS/TEMP]: try again later."""

    error_class = "temporary"


class Pop3AuthError(Pop3ServerError):
    error_class = "auth"


class Pop3InsecureError(Pop3Error):
    """Refusing to send a password over an unencrypted connection."""

    error_class = "tls"


TEMPORARY_CODES = {"IN-USE", "LOGIN-DELAY", "SYS/TEMP"}


# --- Address checks ---------------------------------------------------------


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(host: str, port: int, *, allow_private: bool) -> list[tuple]:
    """Resolve ``host`` and refuse non-public addresses unless allowed.

    The caller connects to exactly these addresses, so a DNS answer that
    changes between the check and the connect cannot redirect it.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise Pop3ConnectError(
            f"Host name {host!r} could not be resolved ({exc.strerror}).", error_class="dns"
        ) from None
    except UnicodeError:
        raise Pop3ConnectError(f"Host name {host!r} is not a valid host name.", error_class="dns") from None
    if not infos:
        raise Pop3ConnectError(f"Host name {host!r} has no addresses.", error_class="dns")
    if not allow_private:
        for info in infos:
            address = info[4][0]
            if not is_public_address(address):
                raise Pop3PrivateAddressError(
                    f"{host} resolves to {address}, a private, loopback or reserved address; "
                    "connections there are not allowed on this server."
                )
    return infos


def make_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """System CAs plus an optional extra bundle; hostname checked; TLS 1.2+."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


# --- Results ----------------------------------------------------------------


@dataclass
class Capabilities:
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
    def sasl(self) -> list[str]:
        return [m.upper() for m in self.raw.get("SASL", [])]


@dataclass(frozen=True)
class RetrResult:
    size: int
    sha256: str


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
        ca_file: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        allow_private: bool = False,
    ):
        if security not in {"ssl", "starttls", "none"}:
            raise ValueError(f"security must be ssl, starttls or none, not {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.timeout = timeout
        self.allow_private = allow_private
        self._tls_context = tls_context or (make_tls_context(ca_file) if security != "none" else None)
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None
        self.greeting = ""
        self.capabilities = Capabilities()
        self.encrypted = False

    # Connection ------------------------------------------------------------

    def __enter__(self) -> Pop3Client:
        self.connect()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def connect(self) -> str:
        infos = resolve(self.host, self.port, allow_private=self.allow_private)
        last_error: Exception | None = None
        sock = None
        for family, socktype, proto, _canon, sockaddr in infos:
            try:
                sock = socket.socket(family, socktype, proto)
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
                break
            except OSError as exc:
                last_error = exc
                if sock is not None:
                    sock.close()
                sock = None
        if sock is None:
            raise self._connect_error(last_error)
        self._sock = sock
        try:
            if self.security == "ssl":
                self._start_tls()
            self._file = self._sock.makefile("rb")
            self.greeting = self._read_status()
            self.capa()
            if self.security == "starttls":
                if not self.capabilities.stls:
                    raise Pop3TLSError(f"{self.host} does not offer STLS; choose SSL/TLS or check the port.")
                self._command("STLS")
                self._file.close()
                self._start_tls()
                self._file = self._sock.makefile("rb")
                self.capa()  # RFC 2595: capabilities may change after TLS.
        except BaseException:
            self.close()
            raise
        return self.greeting

    def _connect_error(self, exc: Exception | None) -> Pop3Error:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, ConnectionRefusedError):
            return Pop3ConnectError(
                f"Connection to {where} was refused: no POP3 server is listening on that port.", error_class="refused"
            )
        if isinstance(exc, (TimeoutError, socket.timeout)):
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
        self.encrypted = True

    def close(self) -> None:
        for closable in (self._file, self._sock):
            if closable is not None:
                with contextlib.suppress(OSError):
                    closable.close()
        self._file = None
        self._sock = None

    # Wire ------------------------------------------------------------------

    def _send(self, line: str) -> None:
        if self._sock is None:
            raise Pop3ProtocolError("not connected")
        try:
            self._sock.sendall(line.encode("utf-8") + b"\r\n")
        except TimeoutError:
            raise Pop3TimeoutError(f"{self.host} did not accept data within {self.timeout:g} s.") from None
        except OSError as exc:
            raise Pop3ConnectError(f"Connection to {self.host} lost: {exc}.") from None

    def _readline(self, limit: int) -> bytes:
        assert self._file is not None
        try:
            line = self._file.readline(limit)
        except TimeoutError:
            raise Pop3TimeoutError(f"{self.host} did not answer within {self.timeout:g} s.") from None
        except ssl.SSLError as exc:
            raise Pop3ProtocolError(f"TLS error from {self.host}: {exc.reason or exc}.") from None
        except OSError as exc:
            raise Pop3ConnectError(f"Connection to {self.host} lost: {exc}.") from None
        if not line:
            raise Pop3ProtocolError(f"{self.host} closed the connection unexpectedly.")
        return line

    def _read_status(self) -> str:
        raw = self._readline(MAX_STATUS_LINE + 1)
        if len(raw) > MAX_STATUS_LINE or not raw.endswith(b"\n"):
            raise Pop3ProtocolError(f"{self.host} sent an overlong status line.")
        line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        if line.startswith("+OK"):
            return line
        if line.startswith("-ERR"):
            raise self._server_error(line)
        raise Pop3ProtocolError(f"{self.host} sent an unexpected reply: {line[:200]!r}", response=line)

    @staticmethod
    def _server_error(line: str) -> Pop3ServerError:
        text = line[4:].strip()
        code = None
        if text.startswith("[") and "]" in text:
            code = text[1 : text.index("]")].upper()
        if (code and code.split("/")[0] in {"IN-USE", "LOGIN-DELAY"}) or code == "SYS/TEMP":
            return Pop3TemporaryError(f"Server busy: {text}", response=line, code=code)
        if code == "AUTH":
            return Pop3AuthError(f"Authentication failed: {text}", response=line, code=code)
        return Pop3ServerError(f"Server error: {text}", response=line, code=code)

    def _command(self, line: str) -> str:
        self._send(line)
        return self._read_status()

    def _read_listing(self) -> list[str]:
        lines: list[str] = []
        while True:
            raw = self._readline(MAX_STATUS_LINE + 1)
            if len(raw) > MAX_STATUS_LINE:
                raise Pop3ProtocolError(f"{self.host} sent an overlong listing line.")
            line = raw.rstrip(b"\r\n")
            if line == b".":
                return lines
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line.decode("utf-8", "replace"))
            if len(lines) > MAX_LISTING_LINES:
                raise Pop3ProtocolError(f"{self.host} sent an endless listing.")

    # Commands --------------------------------------------------------------

    def capa(self) -> Capabilities:
        try:
            self._command("CAPA")
        except Pop3ServerError:
            self.capabilities = Capabilities()
            return self.capabilities
        self.capabilities = Capabilities.parse(self._read_listing())
        return self.capabilities

    def login(self, username: str, password: str, *, allow_plaintext: bool = False) -> None:
        """USER/PASS. Refused over clear text unless the account chose it."""
        if not self.encrypted and not allow_plaintext:
            raise Pop3InsecureError(
                "Refusing to send the password over an unencrypted connection; choose SSL/TLS or STARTTLS."
            )
        if "\r" in username or "\n" in username or "\r" in password or "\n" in password:
            raise Pop3AuthError("User name and password may not contain line breaks.")
        try:
            self._command(f"USER {username}")
            self._command(f"PASS {password}")
        except Pop3TemporaryError:
            raise
        except Pop3ServerError as exc:
            if exc.code and exc.code.startswith("SYS"):
                raise
            raise Pop3AuthError(
                f"The server rejected the user name or password ({exc.response[4:].strip() if exc.response else ''}).",
                response=exc.response,
                code=exc.code,
            ) from None
        # Capabilities after login may differ (RFC 2449).
        self.capa()

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

    def uidl(self) -> list[tuple[int, str]]:
        """``[(message number, unique id), ...]`` in server order."""
        self._command("UIDL")
        result: list[tuple[int, str]] = []
        for line in self._read_listing():
            parts = line.split()
            try:
                result.append((int(parts[0]), parts[1]))
            except (IndexError, ValueError):
                raise Pop3ProtocolError(f"Bad UIDL line from {self.host}: {line[:100]!r}") from None
        return result

    def retr_to(self, number: int, out: BinaryIO) -> RetrResult:
        """RETR ``number`` into ``out``, undoing dot-stuffing, hashing as it goes.

        Memory stays constant whatever the message or line length. If the
        connection ends before the terminating dot, ``Pop3ProtocolError`` is
        raised and what was written must be discarded.
        """
        self._command(f"RETR {number}")
        return self._read_multiline_to(out)

    def _read_multiline_to(self, out: BinaryIO) -> RetrResult:
        digest = hashlib.sha256()
        size = 0
        at_line_start = True
        write = out.write
        update = digest.update
        readline = self._readline
        while True:
            chunk = readline(READ_CHUNK)
            if at_line_start and chunk[:1] == b".":
                if chunk in (b".\r\n", b".\n"):
                    return RetrResult(size=size, sha256=digest.hexdigest())
                chunk = chunk[1:]
            at_line_start = chunk.endswith(b"\n")
            write(chunk)
            update(chunk)
            size += len(chunk)

    def dele(self, number: int) -> None:
        self._command(f"DELE {number}")

    def rset(self) -> None:
        self._command("RSET")

    def noop(self) -> None:
        self._command("NOOP")

    def quit(self) -> None:
        """QUIT: the server commits DELEs now. Raises if it does not confirm."""
        try:
            self._command("QUIT")
        finally:
            self.close()
