"""One POP3 session's logic, without I/O: what to send, what to expect, what it means.

Every operation is a generator that yields :data:`core.Op` values (bytes to
send, :data:`NEED_DATA`, :data:`START_TLS`, :class:`Emit`) and returns its
result; ``blocking.Pop3Client`` and ``aio.AsyncPop3Client`` run the same
generators over a socket or an asyncio stream. So both drivers pipeline, log
in, map errors and stream bodies identically.

Round trips: with PIPELINING a group of commands goes out in one write. A
login's last line (PASS, APOP, an AUTH with its initial response, the last
SASL response) can carry follow-up commands (``then``: CAPA, STAT, UIDL, LIST,
QUIT), whose answers are kept for the calls that ask for them next. With a
:class:`ServerProfile` no CAPA is sent at all.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from .core import (
    NEED_DATA,
    START_TLS,
    BodyState,
    Capabilities,
    Emit,
    ResponseReader,
    RetrResult,
    Steps,
    encode_command,
    parse_list,
    parse_stat,
    parse_uidl,
)
from .errors import (
    Pop3AuthError,
    Pop3Error,
    Pop3InsecureError,
    Pop3ProtocolError,
    Pop3ServerError,
    Pop3TLSError,
    greeting_error,
    server_error,
)
from .profile import ServerProfile
from .sasl import (
    APOP_TIMESTAMP,
    Mechanism,
    OAuth,
    ScramCache,
    apop_digest,
    offered_mechanisms,
    password_mechanism,
    refused,
)

DEFAULT_WINDOW = 50
FOLLOW_UPS = frozenset({"CAPA", "STAT", "UIDL", "LIST", "QUIT"})
MAX_SASL_ROUNDS = 16


class Session:
    """The state of one POP3 session and the operations on it (each a generator of ops)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        window: int = DEFAULT_WINDOW,
        pipelining: bool = True,
        profile: ServerProfile | None = None,
    ):
        self.host = host
        self.port = port
        self.window = max(1, window)
        self.allow_pipelining = pipelining  # False: never pipeline, whatever the server offers
        self.profile = profile  # used instead of CAPA: the caller checked it is fresh
        self.reader = ResponseReader(host)
        self.greeting = ""
        self.apop_timestamp: str | None = None
        self.capabilities = Capabilities()
        self.login_capabilities = Capabilities()  # what the login was chosen from
        self.encrypted = False
        self.authenticated_with: str | None = None
        self.broken = False  # responses are in flight that nobody will read: no further command
        self.finished = False  # QUIT was answered (or sent by leave())
        self.marked = False  # a DELE was sent: only QUIT's answer says whether it was committed
        self._kept: dict[str, object] = {}  # answers to follow-up commands, by command
        self._in_flight: list[str] = []  # follow-ups sent with the login's last line

    @property
    def pipelining(self) -> bool:
        return self.allow_pipelining and self.capabilities.pipelining

    def tls_started(self) -> None:
        """The driver finished a TLS handshake: what came before it is gone."""
        self.encrypted = True
        self.reader.clear()

    # Reading ---------------------------------------------------------------

    def _text(self) -> Steps[str]:
        while (line := self.reader.text_line()) is None:
            yield NEED_DATA
        return line

    def _status(self, *, during_login: bool = False) -> Steps[str]:
        while (line := self.reader.status(during_login=during_login)) is None:
            yield NEED_DATA
        return line

    def _listing(self) -> Steps[list[str]]:
        while (lines := self.reader.listing()) is None:
            yield NEED_DATA
        return lines

    def _body(self, out: BinaryIO) -> Steps[RetrResult]:
        state = BodyState(out.write)
        while (result := self.reader.body(state)) is None:
            yield NEED_DATA
        return result

    def _check(self) -> None:
        if self.broken:
            raise Pop3ProtocolError("the session was abandoned mid-response and cannot be used")
        if self.finished:
            raise Pop3ProtocolError("the session has ended (QUIT)")

    def command(self, line: str, *, during_login: bool = False) -> Steps[str]:
        self._check()
        yield encode_command(line)
        return (yield from self._status(during_login=during_login))

    # Opening ---------------------------------------------------------------

    def open(self, security: str) -> Steps[str]:
        """Greeting, capabilities (unless the profile has them), STLS when asked for."""
        if security == "ssl":
            yield START_TLS
        line = yield from self._text()
        if line.startswith("-ERR"):
            raise greeting_error(line, self.host)
        if not line.startswith("+OK"):
            raise Pop3ProtocolError(f"{self.host} does not greet like a POP3 server: {line[:100]!r}")
        self.greeting = line
        match = APOP_TIMESTAMP.search(line)
        self.apop_timestamp = match.group(0) if match else None
        if security == "starttls":
            if self.profile is None:
                yield from self.capa()
                if not self.capabilities.stls:
                    raise Pop3TLSError(f"{self.host} does not offer STLS; choose SSL/TLS or check the port.")
            try:
                yield from self.command("STLS")
            except Pop3ServerError:
                raise Pop3TLSError(f"{self.host} refused STLS; choose SSL/TLS or check the port.") from None
            if self.reader.buffered:
                # Anything sent before the handshake could be injected in clear text (CVE-2011-0411 style).
                raise Pop3ProtocolError(f"{self.host} sent data after STLS before the TLS handshake.")
            yield START_TLS
        if self.profile is not None:
            self.capabilities = self.profile.pre_login()
        else:
            yield from self.capa()  # after STLS again: RFC 2595, capabilities may change with TLS
        self.login_capabilities = self.capabilities
        return self.greeting

    def capa(self) -> Steps[Capabilities]:
        self._check()
        yield encode_command("CAPA")
        return (yield from self._read_capa())

    def _read_capa(self) -> Steps[Capabilities]:
        try:
            yield from self._status()
        except Pop3ServerError:
            self.capabilities = Capabilities()
        else:
            self.capabilities = Capabilities.parse((yield from self._listing()))
        return self.capabilities

    def utf8(self) -> Steps[None]:
        yield from self.command("UTF8")

    # Logging in --------------------------------------------------------------

    def require_secure(self, allow_plaintext: bool) -> None:
        if not self.encrypted and not allow_plaintext:
            raise Pop3InsecureError(
                "Refusing to authenticate over an unencrypted connection; choose SSL/TLS or STARTTLS."
            )

    def offered_mechanisms(self) -> list[str]:
        """The password login methods this server offers, best first for this connection."""
        return offered_mechanisms(self.capabilities, self.apop_timestamp, self.encrypted)

    def choose_mechanism(self) -> str:
        offered = self.offered_mechanisms()
        return offered[0] if offered else "USER"

    def login(
        self,
        username: str,
        password: str,
        *,
        allow_plaintext: bool = False,
        mechanism: str | None = None,
        scram_cache: ScramCache | None = None,
        then: Sequence[str] = (),
    ) -> Steps[str]:
        """One try with ``mechanism`` or the best one offered; returns the mechanism used.

        ``then``: commands to send right behind the login's last line when the
        server pipelines (their answers wait for ``stat()``, ``uidl()``...);
        otherwise they run right after it.
        """
        self._check()
        self.require_secure(allow_plaintext)
        for value in (username, password):
            if "\r" in value or "\n" in value or "\0" in value:
                raise Pop3AuthError("User name and password may not contain line breaks or NUL.")
        follow = self._follow_ups(then)
        mechanism = (mechanism or self.choose_mechanism()).upper()
        try:
            if mechanism == "USER":
                yield from self._user_pass(username, password, follow)
            elif mechanism == "APOP":
                if not self.apop_timestamp:
                    raise Pop3AuthError(f"{self.host} does not offer APOP (no timestamp in its greeting).")
                line = encode_command(f"APOP {username} {apop_digest(self.apop_timestamp, password)}")
                yield from self._last_login_line(line, follow)
            else:
                mech = password_mechanism(mechanism, username, password, scram_cache=scram_cache)
                yield from self._sasl(mech, follow=follow)
        except Pop3AuthError as exc:
            raise refused(exc, mechanism) from None
        self.authenticated_with = mechanism
        yield from self._after_login(follow)
        return mechanism

    def login_oauth(
        self, username: str, access_token: str, *, mechanism: str = "XOAUTH2", two_step: bool = False,
        allow_plaintext: bool = False,
    ) -> Steps[str]:  # fmt: skip
        """SASL XOAUTH2 (Google, Microsoft; two-step for Outlook) or OAUTHBEARER (RFC 7628).

        Nothing is pipelined behind the token: a refusal comes as a challenge the client must answer.
        """
        self._check()
        self.require_secure(allow_plaintext)
        mech = OAuth(mechanism.upper(), username, access_token, self.host, self.port)
        yield from self._sasl(mech, two_step=two_step, follow=[])
        self.authenticated_with = mech.name
        yield from self._after_login([])
        return mech.name

    @staticmethod
    def _checked(commands: Sequence[str]) -> list[str]:
        follow = [command.upper() for command in commands]
        unknown = set(follow) - FOLLOW_UPS
        if unknown:
            raise ValueError(f"cannot send {sorted(unknown)} ahead of their answers")
        if "QUIT" in follow[:-1]:
            raise ValueError("QUIT can only be the last command")
        return follow

    def _follow_ups(self, then: Sequence[str]) -> list[str]:
        follow = self._checked(then)
        if follow and self.profile is None and "CAPA" not in follow:
            follow.insert(0, "CAPA")  # capabilities may change after login (RFC 2449)
        return follow

    def _last_login_line(self, line: bytes, follow: list[str]) -> Steps[None]:
        """Send a login's last line, with the follow-ups when the server pipelines; read the verdict."""
        in_flight = bool(follow) and self.pipelining
        yield line + b"".join(encode_command(c) for c in follow) if in_flight else line
        try:
            yield from self._status(during_login=True)
        except Pop3Error:
            self.broken = self.broken or in_flight
            raise
        self._in_flight = follow if in_flight else []

    def _user_pass(self, username: str, password: str, follow: list[str]) -> Steps[None]:
        user_line = encode_command(f"USER {username}")
        pass_line = encode_command(f"PASS {password}")
        if not self.pipelining:
            yield from self.command(f"USER {username}", during_login=True)
            yield from self._last_login_line(pass_line, follow)
            return
        yield user_line + pass_line + b"".join(encode_command(c) for c in follow)
        try:
            yield from self._status(during_login=True)
            yield from self._status(during_login=True)
        except Pop3Error:
            self.broken = True  # PASS (or what follows it) is still unanswered
            raise
        self._in_flight = follow

    def _sasl(self, mech: Mechanism, *, follow: list[str], two_step: bool = False) -> Steps[None]:
        """RFC 5034 AUTH exchange; the initial response goes with the command unless ``two_step``."""
        initial = None if two_step else mech.initial()
        command = f"AUTH {mech.name}"
        if initial is not None:
            command += " " + (base64.b64encode(initial).decode() or "=")
        self._in_flight = []
        line = encode_command(command)
        for _round in range(MAX_SASL_ROUNDS):
            in_flight = bool(follow) and mech.complete and self.pipelining
            yield line + b"".join(encode_command(c) for c in follow) if in_flight else line
            reply = yield from self._text()
            if reply.startswith("+OK"):
                self._in_flight = follow if in_flight else []
                extra = reply[3:].strip()
                additional = None
                if extra:
                    try:
                        additional = base64.b64decode(extra, validate=True)
                    except (binascii.Error, ValueError):
                        additional = None  # human words, not SASL data
                try:
                    mech.success(additional)
                    if not mech.verified:
                        raise Pop3AuthError(f"{self.host} accepted the login without proving it knows the password.")
                except Pop3AuthError:
                    self.broken = True  # logged in to a server that could not prove itself: go no further
                    raise
                return
            if in_flight:
                self.broken = True  # the follow-ups reach a server that is not done with the login
            if reply.startswith("-ERR"):
                mech.refused()
                raise server_error(reply, during_login=True)
            if not reply.startswith("+"):
                raise Pop3ProtocolError(f"{self.host} sent an unexpected reply during AUTH: {reply[:100]!r}")
            if in_flight:
                raise Pop3ProtocolError(f"{self.host} asked for more after the login's last message.")
            try:
                challenge = base64.b64decode(reply[1:].strip(), validate=True)
            except (binascii.Error, ValueError):
                yield encode_command("*")  # cancel the exchange
                yield from self._status(during_login=True)
                raise Pop3ProtocolError(f"{self.host} sent a malformed AUTH challenge.") from None
            try:
                response = mech.respond(challenge)
            except Pop3AuthError:
                yield encode_command("*")
                with contextlib.suppress(Pop3ServerError):
                    yield from self._status(during_login=True)
                raise
            line = base64.b64encode(response) + b"\r\n"
        raise Pop3ProtocolError(f"{self.host} never ended the AUTH exchange.")

    def _after_login(self, follow: list[str]) -> Steps[None]:
        """Read (or, without pipelining, run) the follow-ups; capabilities as they are after login."""
        in_flight, self._in_flight = self._in_flight, []
        if in_flight:
            for command in follow:
                yield from self._keep(command)
        else:
            yield from self._ask(follow)
        if self.profile is not None:
            self.capabilities = self.profile.post_login()
        elif not follow:
            yield from self.capa()

    def ask(self, commands: Sequence[str]) -> Steps[None]:
        """Send CAPA, STAT, UIDL, LIST (QUIT last) in one write when the server pipelines; keep the answers
        for the calls that ask for them (``stat()``, ``uidl()``...)."""
        self._check()
        yield from self._ask(self._checked(commands))

    def _ask(self, commands: list[str]) -> Steps[None]:
        if self.pipelining and len(commands) > 1:
            yield b"".join(encode_command(c) for c in commands)
            for command in commands:
                yield from self._keep(command)
            return
        for command in commands:
            yield encode_command(command)
            yield from self._keep(command)

    def _keep(self, command: str) -> Steps[None]:
        """Read the answer to a follow-up and keep it for the call that asks for it."""
        if command == "CAPA":
            yield from self._read_capa()
            return
        try:
            line = yield from self._status()
        except Pop3ServerError as exc:
            self._kept[command] = exc
            if command == "QUIT":
                self.finished = True
            return
        if command == "STAT":
            self._kept[command] = parse_stat(line, self.host)
        elif command == "UIDL":
            self._kept[command] = parse_uidl((yield from self._listing()), self.host)
        elif command == "LIST":
            self._kept[command] = parse_list((yield from self._listing()), self.host)
        elif command == "QUIT":
            self._kept[command] = None
            self.finished = True

    def _kept_answer(self, command: str) -> tuple[bool, object]:
        if command not in self._kept:
            return False, None
        value = self._kept.pop(command)
        if isinstance(value, Exception):
            raise value
        return True, value

    def learned_profile(self, now: float) -> ServerProfile | None:
        """What to remember about this server after a login (None before one)."""
        if not self.authenticated_with:
            return None
        learned_at = self.profile.learned_at if self.profile is not None else now
        return ServerProfile(
            capabilities=tuple(self.login_capabilities.lines()),
            session_capabilities=tuple(self.capabilities.lines()),
            mechanism=self.authenticated_with,
            learned_at=learned_at,
        )

    # Transaction state -----------------------------------------------------------

    def stat(self) -> Steps[tuple[int, int]]:
        kept, value = self._kept_answer("STAT")
        if kept:
            return value  # type: ignore[return-value]
        return parse_stat((yield from self.command("STAT")), self.host)

    def list(self) -> Steps[dict[int, int]]:
        kept, value = self._kept_answer("LIST")
        if kept:
            return value  # type: ignore[return-value]
        yield from self.command("LIST")
        return parse_list((yield from self._listing()), self.host)

    def list_one(self, number: int) -> Steps[int]:
        parts = (yield from self.command(f"LIST {int(number)}")).split()
        try:
            return int(parts[2])
        except (IndexError, ValueError):
            raise Pop3ProtocolError(f"Bad LIST answer from {self.host}.") from None

    def uidl(self) -> Steps[list[tuple[int, str]]]:
        kept, value = self._kept_answer("UIDL")
        if kept:
            return value  # type: ignore[return-value]
        yield from self.command("UIDL")
        return parse_uidl((yield from self._listing()), self.host)

    def uidl_one(self, number: int) -> Steps[str]:
        parts = (yield from self.command(f"UIDL {int(number)}")).split()
        if len(parts) < 3:
            raise Pop3ProtocolError(f"Bad UIDL answer from {self.host}.")
        return parts[2]

    def body(self, command: str, out: BinaryIO) -> Steps[RetrResult]:
        """RETR or TOP into ``out``: un-dot-stuffed, hashed as it goes, constant memory."""
        yield from self.command(command)
        return (yield from self._body(out))

    def pipeline(self, template: str, numbers: Iterable[int], open_out: Callable[[int], BinaryIO]) -> Steps[None]:
        """RETR/TOP each number, ``window`` commands in flight when the server pipelines.

        Emits ``(number, RetrResult)`` in order, or ``(number, Pop3ServerError)``
        for a message the server refuses; connection-level failures raise.
        """
        self._check()
        window = self.window if self.pipelining else 1
        todo = iter(numbers)
        in_flight: deque[int] = deque()

        def refill() -> bytes:
            batch = []
            while len(in_flight) < window:
                number = next(todo, None)
                if number is None:
                    break
                in_flight.append(number)
                batch.append(encode_command(template.format(int(number))))
            return b"".join(batch)

        if data := refill():
            yield data
        while in_flight:
            number = in_flight.popleft()
            try:
                yield from self._status()
            except Pop3ServerError as exc:
                if data := refill():
                    yield data
                yield Emit((number, exc))
                continue
            if data := refill():
                yield data  # keep the window full while this body streams in
            result = yield from self._body(open_out(number))
            yield Emit((number, result))

    def dele_many(self, numbers: Iterable[int]) -> Steps[list[Pop3ServerError | None]]:
        """DELE each number (pipelined when offered); one entry per number, None when accepted."""
        self._check()
        numbers = [int(n) for n in numbers]
        window = self.window if self.pipelining else 1
        results: list[Pop3ServerError | None] = []
        for start in range(0, len(numbers), window):
            chunk = numbers[start : start + window]
            self.marked = True
            yield b"".join(encode_command(f"DELE {n}") for n in chunk)
            for _ in chunk:
                try:
                    yield from self._status()
                    results.append(None)
                except Pop3ServerError as exc:
                    results.append(exc)
        return results

    def quit(self) -> Steps[None]:
        """QUIT: the server commits DELEs now. Raises unless it confirms."""
        kept, _value = self._kept_answer("QUIT")
        if kept:
            return
        yield from self.command("QUIT")
        self.finished = True

    def leave(self) -> Steps[None]:
        """QUIT without waiting for its answer, for a session that marked nothing: the server has
        nothing to commit, so the answer carries no news and waiting for it costs a round trip."""
        if self.marked:
            raise Pop3ProtocolError("DELE was sent: only QUIT's answer says whether it was committed")
        if self.broken or self.finished or "QUIT" in self._kept:
            return
        yield encode_command("QUIT")
        self.finished = True
