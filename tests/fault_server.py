"""A fault-injecting POP3 server for tests: what a healthy server never does.

Plain asyncio in a background thread (tests/aioserver.py), no Django, no third-party server code:

    with FaultServer([b"Subject: a\\r\\n\\r\\nbody\\r\\n"], {"alice": "pw"}, Faults(no_uidl=True)) as server:
        pop = poplib.POP3(server.host, server.port)
        ...
        assert server.messages_left() == 1
        assert server.commands[-1] == ["CAPA", "USER alice", "PASS pw", ...]

Behaviour is proper POP3 (RFC 1939, 2449, 5034) unless a fault in ``Faults``
says otherwise: DELE marks, RSET unmarks, only QUIT commits (UPDATE state); a
session that ends any other way rolls its DELEs back. Messages are given as
the exact bytes of each message; the server dot-stuffs on output and adds a
CRLF before the terminator when a message does not end with a line break.

Everything is recorded per session (``server.session_log``): every line the
client sent (``commands``, secrets included: this is a test server), a
byte-exact ``transcript`` of client lines and server status/challenge lines
(message and listing bodies are left out), the SASL mechanism that succeeded
and the decoded SASL client responses, ``login_attempts`` (PASS, APOP and AUTH
commands; ``server.login_attempts`` adds up all sessions), and ``max_in_flight``:
the largest number of client lines received before the server had finished
answering the earlier ones (1 for a lock-step client, more for a pipelining one).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import functools
import hashlib
import hmac
import ipaddress
import itertools
import json
import math
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from tests.aioserver import HOST, ThreadedServer

OVERLONG_STATUS_SIZE = 70_000  # > 64 KiB, the client's status line limit
MAX_CLIENT_LINE = 1_000_000

SYS_TEMP_REPLY = "-ERR [SYS/TEMP] try later"
XOAUTH2_ERROR = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
OAUTHBEARER_ERROR = {
    "status": "invalid_token",
    "scope": "https://mail.example/pop",
    "openid-configuration": "https://auth.example/.well-known/openid-configuration",
}
SASL_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER")


@dataclass
class Faults:
    """Switchable misbehaviours. The defaults are a healthy, capable server."""

    # Capabilities
    no_capa: bool = False  # CAPA answers -ERR
    no_uidl: bool = False  # UIDL answers -ERR and is not advertised
    no_top: bool = False  # TOP answers -ERR and is not advertised
    no_user: bool = False  # USER answers -ERR and is not advertised (SASL/APOP only)
    pipelining: bool = True  # advertise PIPELINING (commands are always read as a stream)
    resp_codes: bool = True  # advertise RESP-CODES and AUTH-RESP-CODE; plain -ERR on bad PASS when False
    utf8: bool = False  # advertise UTF8 and accept the UTF8 command
    expire: str | None = None  # EXPIRE argument, e.g. "0", "30", "NEVER"
    login_delay: int | None = None  # LOGIN-DELAY argument, e.g. 900
    implementation: str | None = "FaultServer"
    extra_capa: list[str] = field(default_factory=list)
    sasl: list[str] = field(default_factory=list)  # advertised and accepted: PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER
    apop_timestamp: bool | str = False  # True: greeting carries <pid.clock@host> and APOP is accepted

    # Listings and content
    duplicate_uidls: bool = False  # message 2 gets message 1's UIDL
    uidls: list[str] | None = None  # explicit UIDLs, one per message
    bare_lf: bool = False  # message/TOP lines and the terminator end in LF only
    bad_stuffing: bool = False  # no dot-stuffing at all: ".hidden" goes out as ".hidden"
    list_size_delta: int = 0  # LIST (and STAT) report each size off by this many octets
    retr_errors: dict[int, str] = field(default_factory=dict)  # RETR n answers "-ERR <text>"
    overlong_reply: str | None = None  # command name (or "GREETING") whose status line is > 64 KiB

    # Login
    login_error: str | None = None  # PASS/APOP/AUTH with good credentials answer "-ERR <this>"
    in_use: bool = False  # shorthand for login_error="[IN-USE] Mailbox locked"
    # Offered but refused, as a wrong password is (a timestamp in the greeting implied):
    apop_only_for: list[str] | None = None  # APOP works only for these users (given an APOP secret)
    sasl_refused: list[str] = field(default_factory=list)  # in CAPA; AUTH answers -ERR at once (any name)
    sasl_failing: list[str] = field(default_factory=list)  # in CAPA; AUTH takes the client's response, then -ERR
    # After a refused login: "continue"; "close" the connection; or "refuse" every later login in the session.
    after_auth_failure: str = "continue"

    # Failures during the session
    sys_temp_after: int | None = None  # after N commands following login (CAPA not counted): -ERR [SYS/TEMP]
    drop_during_retr: tuple[int, int] | None = None  # (message number, body bytes sent before closing)
    drop_after_command: str | None = None  # close without answering once this command arrives (e.g. "QUIT")
    slow: float = 0.0  # seconds before each reply
    slow_commands: frozenset[str] | None = None  # only these commands are slow (None: all)
    stall_greeting: float = 0.0  # seconds before the greeting; math.inf: never
    trickle: tuple[int, float] | None = None  # RETR bodies sent as (chunk size, delay between chunks)

    def __post_init__(self) -> None:
        if self.in_use and self.login_error is None:
            self.login_error = "[IN-USE] Mailbox locked"
        self.sasl = [m.upper() for m in self.sasl]
        unknown = set(self.sasl) - set(SASL_MECHANISMS)
        if unknown:
            raise ValueError(f"unsupported SASL mechanisms for the fault server: {sorted(unknown)}")
        self.sasl_refused = [m.upper() for m in self.sasl_refused]
        self.sasl_failing = [m.upper() for m in self.sasl_failing]
        if set(self.sasl) & set(self.sasl_refused + self.sasl_failing):
            raise ValueError("a SASL mechanism is either accepted, refused or failing")
        if self.apop_only_for is not None and not self.apop_timestamp:
            self.apop_timestamp = True
        if self.after_auth_failure not in {"continue", "close", "refuse"}:
            raise ValueError(f"after_auth_failure must be continue, close or refuse, not {self.after_auth_failure!r}")
        if self.slow_commands is not None:
            self.slow_commands = frozenset(c.upper() for c in self.slow_commands)
        if self.drop_after_command:
            self.drop_after_command = self.drop_after_command.upper()
        if self.overlong_reply:
            self.overlong_reply = self.overlong_reply.upper()


FAULT_NAMES = frozenset(f.name for f in fields(Faults))


@dataclass
class Session:
    """What happened in one connection."""

    number: int
    commands: list[str] = field(default_factory=list)  # every client line, without CRLF
    transcript: list[tuple[str, bytes]] = field(default_factory=list)  # ("C"|"S", raw line with line ending)
    user: str | None = None  # set on successful login
    mechanism: str | None = None  # "USER", "APOP" or the SASL mechanism that succeeded
    login_attempts: int = 0  # PASS, APOP and AUTH commands received before a login succeeded
    sasl_responses: list[bytes] = field(default_factory=list)  # decoded SASL client responses
    marked: set[int] = field(default_factory=set)  # message numbers marked by DELE, at the end of the session
    committed: bool = False  # QUIT in TRANSACTION state removed the marked messages
    rolled_back: bool = False  # the session ended without QUIT while messages were marked
    dropped: bool = False  # the server closed the connection on purpose (a drop fault)
    utf8: bool = False
    max_in_flight: int = 0
    closed: bool = False
    error: str | None = None  # an exception inside the test server itself


@dataclass
class _Message:
    data: bytes
    uidl: str
    deleted: bool = False
    wire: bytes | None = None  # dot-stuffed body with terminator, built on first use


class FaultServer(ThreadedServer):
    """A POP3 server on 127.0.0.1 (or ``host``) with a free port, served from a background thread."""

    name = "fault server"

    def __init__(
        self,
        messages: list[bytes] | None = None,
        users: dict[str, str] | None = None,
        faults: Faults | None = None,
        *,
        tokens: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        host: str = HOST,
        **fault_kwargs,
    ):
        if faults is not None and fault_kwargs:
            raise TypeError("pass either a Faults object or fault keyword arguments, not both")
        unknown = set(fault_kwargs) - FAULT_NAMES
        if unknown:
            raise TypeError(f"unknown faults: {sorted(unknown)}")
        super().__init__(host, ssl_context=ssl_context, limit=MAX_CLIENT_LINE)
        self.faults = faults if faults is not None else Faults(**fault_kwargs)
        self.users = dict(users if users is not None else {"alice": "secret"})
        self.tokens = dict(tokens or {})  # user -> valid OAuth access token
        messages = list(messages or [])
        uidls = self.faults.uidls or [f"uid-{i:05d}" for i in range(1, len(messages) + 1)]
        if len(uidls) != len(messages):
            raise ValueError("uidls must have one entry per message")
        uidls = list(uidls)
        if self.faults.duplicate_uidls:
            if len(messages) < 2:
                raise ValueError("duplicate_uidls needs at least two messages")
            uidls[1] = uidls[0]
        self._store = [_Message(bytes(m), u) for m, u in zip(messages, uidls, strict=True)]
        self.apop_timestamp: str | None = None
        if self.faults.apop_timestamp:
            if isinstance(self.faults.apop_timestamp, str):
                self.apop_timestamp = self.faults.apop_timestamp
            else:
                self.apop_timestamp = f"<{os.getpid()}.{int(datetime.datetime.now().timestamp())}@faultserver.test>"
        self.session_log: list[Session] = []
        self.errors: list[str] = []  # exceptions inside the test server (bugs), not faults
        self._state = threading.Condition()
        self._cram_counter = itertools.count(1)
        self._open_sessions = 0
        self.max_open_sessions = 0  # connections open at the same time, at most

    # Inspection (thread-safe) ----------------------------------------------

    @property
    def sessions(self) -> int:
        """How many connections were accepted."""
        return len(self.session_log)

    @property
    def commands(self) -> list[list[str]]:
        """Every line each session received from the client, session by session."""
        return [list(s.commands) for s in self.session_log]

    @property
    def last(self) -> Session:
        return self.session_log[-1]

    @property
    def login_attempts(self) -> int:
        """Login commands (PASS, APOP, AUTH) received, all sessions together."""
        return sum(s.login_attempts for s in self.session_log)

    @property
    def max_in_flight(self) -> int:
        """The largest ``max_in_flight`` of any session."""
        return max((s.max_in_flight for s in self.session_log), default=0)

    def messages_left(self) -> int:
        """Messages still in the maildrop (deletions count once a QUIT committed them)."""
        with self._state:
            return sum(1 for m in self._store if not m.deleted)

    def remaining_messages(self) -> list[bytes]:
        with self._state:
            return [m.data for m in self._store if not m.deleted]

    def remaining_uidls(self) -> list[str]:
        with self._state:
            return [m.uidl for m in self._store if not m.deleted]

    def deliver(self, data: bytes) -> str:
        """New mail arrives at the end of the maildrop, as on a real server; its UIDL is returned."""
        with self._state:
            uidl = f"uid-{len(self._store) + 1:05d}"
            self._store.append(_Message(bytes(data), uidl))
            return uidl

    def wire_body(self, data: bytes) -> bytes:
        """What RETR sends after the status line for a message with these bytes."""
        eol = b"\n" if self.faults.bare_lf else b"\r\n"
        if self.faults.bare_lf:
            data = data.replace(b"\r\n", b"\n")
        if data and not data.endswith(b"\n"):
            data += eol
        if not self.faults.bad_stuffing:
            if data.startswith(b"."):
                data = b"." + data
            data = data.replace(b"\n.", b"\n..")
        return data + b"." + eol

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every session so far has ended (so a rollback has happened)."""
        with self._state:
            if not self._state.wait_for(lambda: all(s.closed for s in self.session_log), timeout):
                raise TimeoutError("fault server sessions still open")

    # Sessions --------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._state:
            session = Session(number=len(self.session_log) + 1)
            self.session_log.append(session)
            self._open_sessions += 1
            self.max_open_sessions = max(self.max_open_sessions, self._open_sessions)
        connection = _Connection(self, session, reader, writer)
        try:
            await connection.run()
        except (ConnectionError, ssl.SSLError, OSError, asyncio.CancelledError):
            pass
        except Exception as exc:  # a bug in the test server: make it visible to the test
            session.error = repr(exc)
            self.errors.append(f"session {session.number}: {exc!r}")
        finally:
            await connection.stop_reading()
            if not session.committed and session.marked:
                session.rolled_back = True
            with contextlib.suppress(Exception):
                writer.close()
            with self._state:
                session.closed = True
                self._open_sessions -= 1
                self._state.notify_all()

    def _commit(self, messages: list[_Message]) -> None:
        with self._state:
            for message in messages:
                message.deleted = True

    def _snapshot(self) -> list[_Message]:
        with self._state:
            return [m for m in self._store if not m.deleted]

    def _wire(self, message: _Message) -> bytes:
        if message.wire is None:
            message.wire = self.wire_body(message.data)
        return message.wire

    def _capabilities(self) -> list[str]:
        f = self.faults
        lines = []
        if not f.no_top:
            lines.append("TOP")
        if not f.no_uidl:
            lines.append("UIDL")
        if not f.no_user:
            lines.append("USER")
        if f.pipelining:
            lines.append("PIPELINING")
        if f.resp_codes:
            lines += ["RESP-CODES", "AUTH-RESP-CODE"]
        sasl = f.sasl + f.sasl_refused + f.sasl_failing
        if sasl:
            lines.append("SASL " + " ".join(sasl))
        if f.expire is not None:
            lines.append(f"EXPIRE {f.expire}")
        if f.login_delay is not None:
            lines.append(f"LOGIN-DELAY {f.login_delay}")
        if f.utf8:
            lines.append("UTF8")
        if f.implementation:
            lines.append(f"IMPLEMENTATION {f.implementation}")
        return lines + list(f.extra_capa)


class _Closed(Exception):
    """The session is over (client gone, or the server dropped it)."""


class _Connection:
    def __init__(self, server: FaultServer, session: Session, reader, writer):
        self.server = server
        self.faults = server.faults
        self.session = session
        self.reader = reader
        self.writer = writer
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.received = 0  # lines read from the socket
        self.consumed = 0  # lines taken by the command loop
        self.answered = 0  # lines fully answered
        self.reader_task: asyncio.Task | None = None
        self.authenticated = False
        self.pending_user: str | None = None
        self.maildrop: list[_Message] = []
        self.tx_commands = 0
        self.sys_temp = False
        self.auth_failed = False  # a login was refused in this session

    # Plumbing --------------------------------------------------------------

    async def run(self) -> None:
        f = self.faults
        if f.stall_greeting:
            if math.isinf(f.stall_greeting):
                await asyncio.Event().wait()
            await asyncio.sleep(f.stall_greeting)
        if f.overlong_reply == "GREETING":
            await self.status("+OK " + "x" * OVERLONG_STATUS_SIZE)
        else:
            greeting = "+OK FaultServer ready"
            if self.server.apop_timestamp:
                greeting += " " + self.server.apop_timestamp
            await self.status(greeting)
        self.reader_task = asyncio.create_task(self._read_lines())
        try:
            while True:
                line = await self.next_line()
                await self.dispatch(line)
                self.answered = self.consumed
        except _Closed:
            return

    async def stop_reading(self) -> None:
        if self.reader_task is not None:
            self.reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self.reader_task

    async def _read_lines(self) -> None:
        buffer = b""
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                buffer += data
                while (end := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[: end + 1], buffer[end + 1 :]
                    self.received += 1
                    in_flight = self.received - self.answered
                    self.session.max_in_flight = max(self.session.max_in_flight, in_flight)
                    self.queue.put_nowait(line)
                if len(buffer) > MAX_CLIENT_LINE:
                    break
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        self.queue.put_nowait(None)

    async def next_line(self) -> str:
        raw = await self.queue.get()
        if raw is None:
            raise _Closed
        self.consumed += 1
        self.session.transcript.append(("C", raw))
        text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        self.session.commands.append(text)
        return text

    async def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise _Closed
        self.writer.write(data)
        await self.writer.drain()

    async def status(self, line: str) -> None:
        raw = line.encode("utf-8") + b"\r\n"
        self.session.transcript.append(("S", raw))
        await self.send(raw)

    async def ok(self, text: str = "") -> None:
        await self.status("+OK" + (" " + text if text else ""))

    async def err(self, text: str) -> None:
        await self.status("-ERR " + text)

    async def listing(self, lines: list[str]) -> None:
        body = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in (x.encode() for x in lines))
        await self.send(body + b".\r\n")

    async def drop(self) -> None:
        self.session.dropped = True
        with contextlib.suppress(Exception):
            await self.writer.drain()
        raise _Closed

    async def challenge(self, data: bytes) -> str:
        """Send a SASL challenge and return the client's answer line."""
        await self.status("+ " + base64.b64encode(data).decode())
        self.answered = self.consumed
        return await self.next_line()

    # Commands --------------------------------------------------------------

    async def dispatch(self, line: str) -> None:
        f = self.faults
        name, _, arg = line.partition(" ")
        name = name.upper()
        if f.drop_after_command and name == f.drop_after_command:
            await self.drop()
        if f.slow and (f.slow_commands is None or name in f.slow_commands):
            await asyncio.sleep(f.slow)
        if self.authenticated and f.sys_temp_after is not None and not self.sys_temp:
            if name != "CAPA":
                self.tx_commands += 1
            self.sys_temp = self.tx_commands > f.sys_temp_after
        if self.sys_temp:
            await self.status(SYS_TEMP_REPLY)
            if name == "QUIT":
                raise _Closed
            return
        if f.overlong_reply and name == f.overlong_reply:
            await self.status("+OK " + "x" * OVERLONG_STATUS_SIZE)
            return
        handler = getattr(self, "cmd_" + name.lower().replace("-", "_"), None)
        if handler is None:
            await self.err(f"Unknown command: {name}")
            return
        if name not in {"CAPA", "QUIT"} and (name in AUTH_STATE_COMMANDS) == self.authenticated:
            await self.err("Command not valid in this state")
            return
        if name in LOGIN_COMMANDS:
            self.session.login_attempts += 1
        if name in LOGIN_COMMANDS | {"USER"} and self.auth_failed and f.after_auth_failure == "refuse":
            await self.err("[AUTH] Too many authentication failures in this session")
            return
        await handler(arg.strip() if name not in {"PASS", "AUTH"} else arg)

    async def cmd_capa(self, arg: str) -> None:
        if self.faults.no_capa:
            await self.err("Unknown command: CAPA")
            return
        await self.ok("Capability list follows")
        await self.listing(self.server._capabilities())

    async def cmd_noop(self, arg: str) -> None:
        await self.ok()

    async def cmd_quit(self, arg: str) -> None:
        if self.authenticated:
            marked = [self.maildrop[n - 1] for n in sorted(self.session.marked)]
            self.server._commit(marked)
            self.session.committed = True
            await self.ok(f"Logging out, {len(marked)} messages deleted")
        else:
            await self.ok("Logging out")
        raise _Closed

    async def cmd_utf8(self, arg: str) -> None:
        if not self.faults.utf8:
            await self.err("Unknown command: UTF8")
            return
        self.session.utf8 = True
        await self.ok("UTF8 enabled")

    # Authorization state

    async def cmd_user(self, arg: str) -> None:
        if self.faults.no_user:
            await self.err("USER not supported; use SASL")
            return
        self.pending_user = arg
        await self.ok()

    async def cmd_pass(self, arg: str) -> None:
        if self.faults.no_user or self.pending_user is None:
            await self.err("USER first")
            return
        user, self.pending_user = self.pending_user, None
        await self.finish_login(user, self.server.users.get(user) == arg, "USER")

    async def cmd_apop(self, arg: str) -> None:
        timestamp = self.server.apop_timestamp
        if not timestamp:
            await self.err("APOP not supported")
            return
        user, _, digest = arg.partition(" ")
        password = self.server.users.get(user)
        good = password is not None and hmac.compare_digest(
            hashlib.md5((timestamp + password).encode()).hexdigest(), digest.strip()
        )
        if self.faults.apop_only_for is not None and user not in self.faults.apop_only_for:
            good = False  # no APOP secret for this user: refused like a wrong password
        await self.finish_login(user, good, "APOP")

    async def refuse_login(self) -> None:
        """The answer to a refused login, the same whatever the reason; then the after-failure fault."""
        await self.err("[AUTH] Authentication failed" if self.faults.resp_codes else "Authentication failed")
        self.auth_failed = True
        if self.faults.after_auth_failure == "close":
            await self.drop()

    async def finish_login(self, user: str, good: bool, mechanism: str) -> None:
        if not good:
            await self.refuse_login()
            return
        if self.faults.login_error:
            await self.err(self.faults.login_error)
            return
        self.authenticated = True
        self.session.user = user
        self.session.mechanism = mechanism
        self.maildrop = self.server._snapshot()
        await self.ok(f"Logged in, {len(self.maildrop)} messages")

    async def cmd_auth(self, arg: str) -> None:
        mechanism, _, initial = arg.strip().partition(" ")
        mechanism = mechanism.upper()
        initial = initial.strip()
        if mechanism in self.faults.sasl_refused:
            await self.refuse_login()
            return
        if mechanism in self.faults.sasl_failing:
            with contextlib.suppress(_SaslCancelled, _SaslFailed):
                await self.first_response(initial or None)  # the exchange runs, then fails
            await self.refuse_login()
            return
        if mechanism not in self.faults.sasl:
            await self.err("Unsupported authentication mechanism")
            return
        try:
            handler = getattr(self, "sasl_" + mechanism.lower().replace("-", "_"))
            user, good = await handler(initial or None)
        except _SaslCancelled:
            await self.err("Authentication cancelled")
            return
        except _SaslFailed as exc:
            await self.err(exc.args[0])
            return
        await self.finish_login(user, good, mechanism)

    async def response(self, data: bytes) -> bytes:
        """One SASL client response, decoded."""
        line = await self.challenge(data)
        return self.decode(line)

    def decode(self, line: str) -> bytes:
        if line == "*":
            raise _SaslCancelled
        if line == "=":
            decoded = b""
        else:
            try:
                decoded = base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                raise _SaslFailed("[AUTH] Bad base64 in SASL response") from None
        self.session.sasl_responses.append(decoded)
        return decoded

    async def first_response(self, initial: str | None) -> bytes:
        return self.decode(initial) if initial is not None else await self.response(b"")

    async def sasl_plain(self, initial: str | None) -> tuple[str, bool]:
        parts = (await self.first_response(initial)).split(b"\0")
        if len(parts) != 3:
            raise _SaslFailed("[AUTH] Malformed PLAIN response")
        user, password = parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
        good = parts[0] in (b"", parts[1]) and self.server.users.get(user) == password
        return user, good

    async def sasl_login(self, initial: str | None) -> tuple[str, bool]:
        user_bytes = self.decode(initial) if initial is not None else await self.response(b"Username:")
        password = (await self.response(b"Password:")).decode("utf-8", "replace")
        user = user_bytes.decode("utf-8", "replace")
        return user, self.server.users.get(user) == password

    async def sasl_cram_md5(self, initial: str | None) -> tuple[str, bool]:
        if initial is not None:
            raise _SaslFailed("CRAM-MD5 takes no initial response")
        challenge = f"<{os.getpid()}.{next(self.server._cram_counter)}@faultserver.test>".encode()
        user_bytes, _, digest = (await self.response(challenge)).rpartition(b" ")
        user = user_bytes.decode("utf-8", "replace")
        password = self.server.users.get(user)
        good = password is not None and hmac.compare_digest(
            hmac.new(password.encode(), challenge, hashlib.md5).hexdigest().encode(), digest
        )
        return user, good

    async def sasl_xoauth2(self, initial: str | None) -> tuple[str, bool]:
        payload = await self.first_response(initial)
        user = ""
        if payload.startswith(b"user=") and b"\x01" in payload:
            user = payload[5 : payload.index(b"\x01")].decode("utf-8", "replace")
        token = self.server.tokens.get(user)
        expected = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
        if token is None or payload != expected:
            await self.response(json.dumps(XOAUTH2_ERROR).encode())  # the client must answer with an empty line
            raise _SaslFailed("[AUTH] Invalid credentials")
        return user, True

    async def sasl_oauthbearer(self, initial: str | None) -> tuple[str, bool]:
        payload = await self.first_response(initial)
        user, token = _parse_oauthbearer(payload)
        if user is None or token is None or self.server.tokens.get(user) != token:
            await self.response(json.dumps(OAUTHBEARER_ERROR).encode())  # the client must answer "AQ==" (\x01)
            raise _SaslFailed("[AUTH] Invalid credentials")
        return user, True

    # Transaction state

    def message(self, arg: str) -> tuple[int, _Message] | str:
        """The message named by ``arg``, or the text of an error."""
        try:
            number = int(arg.split()[0])
        except (IndexError, ValueError):
            return "Invalid message number"
        if not 1 <= number <= len(self.maildrop):
            return "No such message"
        if number in self.session.marked:
            return "Message already deleted"
        return number, self.maildrop[number - 1]

    def live(self) -> list[tuple[int, _Message]]:
        return [(n, m) for n, m in enumerate(self.maildrop, 1) if n not in self.session.marked]

    def reported_size(self, message: _Message) -> int:
        return len(message.data) + self.faults.list_size_delta

    async def cmd_stat(self, arg: str) -> None:
        live = self.live()
        await self.ok(f"{len(live)} {sum(self.reported_size(m) for _, m in live)}")

    async def cmd_list(self, arg: str) -> None:
        if arg:
            found = self.message(arg)
            if isinstance(found, str):
                await self.err(found)
            else:
                await self.ok(f"{found[0]} {self.reported_size(found[1])}")
            return
        live = self.live()
        await self.ok(f"{len(live)} messages")
        await self.listing([f"{n} {self.reported_size(m)}" for n, m in live])

    async def cmd_uidl(self, arg: str) -> None:
        if self.faults.no_uidl:
            await self.err("Unknown command: UIDL")
            return
        if arg:
            found = self.message(arg)
            if isinstance(found, str):
                await self.err(found)
            else:
                await self.ok(f"{found[0]} {found[1].uidl}")
            return
        await self.ok("Unique-ID listing follows")
        await self.listing([f"{n} {m.uidl}" for n, m in self.live()])

    async def cmd_dele(self, arg: str) -> None:
        found = self.message(arg)
        if isinstance(found, str):
            await self.err(found)
            return
        self.session.marked.add(found[0])
        await self.ok(f"Message {found[0]} deleted")

    async def cmd_rset(self, arg: str) -> None:
        self.session.marked.clear()
        await self.ok(f"Maildrop has {len(self.maildrop)} messages")

    async def cmd_retr(self, arg: str) -> None:
        found = self.message(arg)
        if isinstance(found, str):
            await self.err(found)
            return
        number, message = found
        if number in self.faults.retr_errors:
            await self.err(self.faults.retr_errors[number])
            return
        body = self.server._wire(message)
        await self.ok(f"{self.reported_size(message)} octets")
        drop = self.faults.drop_during_retr
        if drop is not None and drop[0] == number:
            await self.send(body[: drop[1]])
            await self.drop()
        if self.faults.trickle:
            size, delay = self.faults.trickle
            for start in range(0, len(body), size):
                await self.send(body[start : start + size])
                await asyncio.sleep(delay)
        else:
            await self.send(body)

    async def cmd_top(self, arg: str) -> None:
        if self.faults.no_top:
            await self.err("Unknown command: TOP")
            return
        found = self.message(arg)
        parts = arg.split()
        if isinstance(found, str) or len(parts) != 2 or not parts[1].isdigit():
            await self.err(found if isinstance(found, str) else "Syntax: TOP msg n")
            return
        await self.ok("Top of message follows")
        await self.send(self.server.wire_body(top_of(found[1].data, int(parts[1]))))


AUTH_STATE_COMMANDS = {"USER", "PASS", "APOP", "AUTH", "UTF8"}
LOGIN_COMMANDS = frozenset({"PASS", "APOP", "AUTH"})


class _SaslCancelled(Exception):
    pass


class _SaslFailed(Exception):
    pass


def top_of(data: bytes, lines: int) -> bytes:
    """The header, the blank line and the first ``lines`` body lines of a message."""
    rows = [row + b"\n" for row in data.split(b"\n")]
    rows[-1] = rows[-1][:-1]
    for index, row in enumerate(rows):
        if row in (b"\r\n", b"\n"):
            return b"".join(rows[: index + 1 + lines])
    return data


def _parse_oauthbearer(payload: bytes) -> tuple[str | None, str | None]:
    """RFC 7628: ``n,a=user,`` then ``\\x01key=value`` pairs, then ``\\x01\\x01``."""
    if not payload.endswith(b"\x01\x01"):
        return None, None
    header, _, rest = payload.partition(b"\x01")
    gs2 = header.split(b",")
    if len(gs2) != 3 or gs2[0] != b"n" or not gs2[1].startswith(b"a=") or gs2[2] != b"":
        return None, None
    user = gs2[1][2:].decode("utf-8", "replace")
    pairs = dict(kv.split(b"=", 1) for kv in rest[:-2].split(b"\x01") if b"=" in kv)
    auth = pairs.get(b"auth", b"")
    if not auth.startswith(b"Bearer "):
        return user, None
    return user, auth[7:].decode("utf-8", "replace")


# --- Helpers for tests -------------------------------------------------------


def xoauth2_payload(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer_payload(user: str, token: str, host: str, port: int) -> bytes:
    return f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


def make_message(index: int, body: bytes | None = None, *, subject: str | None = None) -> bytes:
    """A small, valid message with CRLF line endings."""
    subject = subject or f"Message {index}"
    body = body if body is not None else f"This is message {index}.\r\nSecond line.\r\n".encode()
    return (
        f"From: sender{index}@example.org\r\n"
        f"To: alice@example.org\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{index}@faultserver.test>\r\n"
        f"\r\n"
    ).encode() + body


class ServerFactory:
    """Starts servers on demand and stops them all at the end (for a pytest fixture)."""

    def __init__(self) -> None:
        self.servers: list[FaultServer] = []

    def __call__(self, messages: list[bytes] | None = None, users: dict[str, str] | None = None, **kwargs):
        server = FaultServer(messages, users, **kwargs).start()
        self.servers.append(server)
        return server

    def __enter__(self) -> ServerFactory:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def serve(messages: list[bytes] | None = None, users: dict[str, str] | None = None, **kwargs) -> Iterator[FaultServer]:
    with FaultServer(messages, users, **kwargs) as server:
        yield server


# --- TLS ---------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterials:
    """A throwaway CA and a certificate for 127.0.0.1/localhost signed by it."""

    server_context: ssl.SSLContext
    ca_pem: str

    def client_context(self) -> ssl.SSLContext:
        """Trusts only the throwaway CA; hostname checking on."""
        context = ssl.create_default_context(cadata=self.ca_pem)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


_tls_lock = threading.Lock()


@functools.cache
def _cached_tls() -> TlsMaterials:
    return _make_tls()


def tls_materials() -> TlsMaterials:
    """One per process; needs the ``cryptography`` package."""
    with _tls_lock:
        return _cached_tls()


def _make_tls() -> TlsMaterials:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def builder(subject: str, issuer: str, key) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )

    def usage(ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        builder("fault server test CA", "fault server test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        builder("localhost", "fault server test CA", key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # load_cert_chain only reads files: write them to a private directory, load, remove.
    with tempfile.TemporaryDirectory(prefix="faultserver-tls-") as directory:
        chain = Path(directory) / "chain.pem"
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        chain.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))
        server_context.load_cert_chain(chain)
    return TlsMaterials(server_context=server_context, ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
