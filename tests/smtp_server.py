"""A real SMTP server for tests: aiosmtpd with STARTTLS, implicit TLS and AUTH, plus injected failures.

Three listeners share one handler: ``starttls_port`` (plain, STARTTLS offered,
AUTH only after TLS), ``ssl_port`` (implicit TLS) and ``plain_port`` (no TLS offered). AUTH PLAIN and LOGIN
check ``users``; XOAUTH2 checks ``tokens``. Every accepted message is kept in
``received`` with its envelope and the exact bytes of DATA. ``fail(stage,
code, text, times)`` makes the next ``times`` commands of a stage answer with
``code``: "mail", "rcpt", "data_command" (the DATA command itself) or "data"
(the message, once its content was sent). ``sessions`` lists the commands each
connection sent, in order (e.g. ``["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL",
"RCPT", "RSET", "QUIT"]``), so a test can tell whether a client ended politely.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax

from tests.tlsutil import make_pki


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    mechanism: str | None
    tls: bool


@dataclass
class _Fault:
    code: int
    text: str
    times: int


@dataclass
class _State:
    users: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    faults: dict[str, _Fault] = field(default_factory=dict)
    refuse_rcpt: dict[str, tuple[int, str]] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, login) of each success
    # The commands of each connection, keyed by the client's address and port (STARTTLS keeps both).
    sessions: dict[tuple, list[str]] = field(default_factory=dict)


class _Handler:
    def __init__(self, state: _State, lock: threading.Lock):
        self.state, self.lock = state, lock

    def record(self, session, command: str) -> None:
        with self.lock:
            self.state.sessions.setdefault(tuple(session.peer), []).append(command)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.record(session, "EHLO")
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        self.record(session, "HELO")
        session.host_name = hostname
        return f"250 {server.hostname}"

    def handle_STARTTLS(self, server, session, envelope) -> bool:
        self.record(session, "STARTTLS")
        return True

    async def handle_RSET(self, server, session, envelope):
        self.record(session, "RSET")
        return "250 OK"

    async def handle_NOOP(self, server, session, envelope, arg):
        self.record(session, "NOOP")
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        self.record(session, "QUIT")
        return "221 Bye"

    def fault(self, stage: str) -> str | None:
        with self.lock:
            fault = self.state.faults.get(stage)
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
            return f"{fault.code} {fault.text}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.record(session, "MAIL")
        if answer := self.fault("mail"):
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.record(session, "RCPT")
        if answer := self.fault("rcpt"):
            return answer
        with self.lock:
            refused = self.state.refuse_rcpt.get(address.lower())
        if refused:
            return f"{refused[0]} {refused[1]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if answer := self.fault("data"):
            return answer
        auth = session.auth_data
        login = auth.login.decode() if auth is not None else None
        mechanism = auth.mechanism if auth is not None else None
        tls = server._tls_protocol is not None or server.transport.get_extra_info("ssl_object") is not None
        with self.lock:
            self.state.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content),
                    login=login,
                    mechanism=mechanism,
                    tls=tls,
                )
            )
        return "250 2.0.0 Message accepted for delivery"

    async def auth_XOAUTH2(self, server, args):
        self.record(server.session, "AUTH")
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            fields = dict(
                part.split("=", 1) for part in base64.b64decode(args[1]).decode().split("\x01") if "=" in part
            )
        except ValueError:
            fields = {}
        user, auth = fields.get("user", ""), fields.get("auth", "")
        with self.lock:
            expected = self.state.tokens.get(user)
        if expected and auth == f"Bearer {expected}":
            return AuthResult(success=True, auth_data=_Login("XOAUTH2", user.encode()))
        # RFC-less but universal: a JSON error as a challenge, then 535 after the client's empty reply.
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False)


@dataclass
class _Login:
    mechanism: str
    login: bytes


class _Server(SMTP):
    """aiosmtpd's server, with the DATA command itself recorded and refusable (its handler sees only the content)."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        handler.record(self.session, "DATA")
        if self.envelope.rcpt_tos and (answer := handler.fault("data_command")):
            await self.push(answer)
            return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self):
        return _Server(self.handler, **self.SMTP_kwargs)


def _free_port() -> int:
    # aiosmtpd's Controller checks its listener by connecting to the given port, so port 0 will not do.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpTestServer:
    def __init__(self, directory: Path, host: str = "localhost"):
        self.host = host
        self.state = _State()
        self.lock = threading.Lock()
        self.ca_file, cert, key = make_pki(directory, ["localhost", "127.0.0.1"])
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(cert, key)
        self._controllers: list[Controller] = []
        self._handler = _Handler(self.state, self.lock)

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        self._handler.record(session, "AUTH")
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        with self.lock:
            ok = self.state.users.get(login) == password
            if ok:
                self.state.logins.append((mechanism, login))
        if not ok:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        return AuthResult(success=True, auth_data=_Login(mechanism, auth_data.login))

    def start(self) -> None:
        logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd logs every command at INFO
        handler = self._handler
        common = {
            "hostname": "127.0.0.1",
            "server_hostname": "smtp.test",
            "authenticator": self._authenticator,
            "data_size_limit": 40 * 1024 * 1024,
        }
        self.starttls_port, self.ssl_port, self.plain_port = _free_port(), _free_port(), _free_port()
        starttls = _Controller(handler, port=self.starttls_port, tls_context=self._tls, auth_require_tls=True, **common)
        # aiosmtpd only counts STARTTLS as TLS; this listener is TLS from the first byte.
        implicit = _Controller(handler, port=self.ssl_port, ssl_context=self._tls, auth_require_tls=False, **common)
        # No TLS at all (and so no AUTH): a server that does not offer STARTTLS.
        plain = _Controller(handler, port=self.plain_port, auth_require_tls=True, **common)
        for controller in (starttls, implicit, plain):
            controller.start()
            self._controllers.append(controller)

    def stop(self) -> None:
        for controller in self._controllers:
            controller.stop()

    # Test controls -----------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.state.users.clear()
            self.state.tokens = {}  # a fresh dict: it may have been an authorization server's live one
            self.state.received.clear()
            self.state.faults.clear()
            self.state.refuse_rcpt.clear()
            self.state.logins.clear()
            self.state.sessions.clear()

    def add_user(self, login: str, password: str) -> None:
        with self.lock:
            self.state.users[login] = password

    def add_token(self, login: str, token: str) -> None:
        with self.lock:
            self.state.tokens[login] = token

    def accept_tokens_from(self, tokens: dict[str, str]) -> None:
        """XOAUTH2 accepts exactly what ``tokens`` (login -> token, kept up to date elsewhere) holds."""
        with self.lock:
            self.state.tokens = tokens

    def fail(self, stage: str, code: int, text: str, times: int = 1) -> None:
        assert stage in {"mail", "rcpt", "data_command", "data"}
        with self.lock:
            self.state.faults[stage] = _Fault(code, text, times)

    def refuse_recipient(self, address: str, code: int, text: str) -> None:
        with self.lock:
            self.state.refuse_rcpt[address.lower()] = (code, text)

    @property
    def received(self) -> list[Received]:
        with self.lock:
            return list(self.state.received)

    @property
    def sessions(self) -> list[list[str]]:
        """The commands of each connection so far, oldest connection first."""
        with self.lock:
            return [list(commands) for commands in self.state.sessions.values()]

    @property
    def logins(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.state.logins)
