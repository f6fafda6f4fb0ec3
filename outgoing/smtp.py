"""Sending one message over SMTP (RFC 5321) with ``smtplib``, safely.

* implicit TLS (465), STARTTLS (587) or, when the user chose it, none;
  certificates verified with the system CAs plus ``WEBPOP_POP3_CA_FILE``;
  a server that does not offer STARTTLS is an error, never a silent downgrade;
* every connection goes through :mod:`webpop.lib.netguard` (no private addresses
  unless allowed), by overriding smtplib's ``_get_socket``;
* AUTH PLAIN or LOGIN with a password, XOAUTH2 with an access token;
* a session that still works ends with QUIT, also after a refused
  transaction (smtplib sends RSET) or an error of the caller's: servers log a
  hang-up after RSET as a lost connection. Only a connection that broke
  (network, TLS, interrupted mid-command) is just closed;
* failures become a few error classes: :class:`SmtpTemporaryError` (4xx,
  network trouble: try again later) and :class:`SmtpPermanentError` (5xx,
  bad certificate, refused address: the user must act), with the server's
  answer kept for the Outbox.

Like the POP3 client (``mailbox/pop3/``) it does not import Django: callers pass everything in.
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
import ssl
from dataclasses import dataclass, field

from webpop.lib import netguard
from webpop.lib.tls import make_tls_context

SECURITY_CHOICES = ("ssl", "starttls", "none")


class SmtpError(Exception):
    """Sending failed. ``code`` and ``response`` are the server's answer, when there was one."""

    temporary = False
    error_class = "permanent"

    def __init__(self, message: str, *, code: int | None = None, response: str = ""):
        super().__init__(message)
        self.code = code
        self.response = response


class SmtpTemporaryError(SmtpError):
    """Worth trying again later: a 4xx answer, a timeout, a dropped or refused connection."""

    temporary = True
    error_class = "temporary"


class SmtpPermanentError(SmtpError):
    """Trying again will not help until something changes: a 5xx answer, a bad certificate."""


class SmtpAuthError(SmtpPermanentError):
    error_class = "auth"


class SmtpTLSError(SmtpPermanentError):
    error_class = "tls"


class SmtpAddressError(SmtpPermanentError):
    error_class = "private_address"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = ""
    oauth_token: str = ""  # XOAUTH2 instead of a password when set


@dataclass
class SendResult:
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)  # recipients the server refused


def _answer(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def error_for(code: int, text: bytes | str, doing: str) -> SmtpError:
    """The error class for an SMTP reply code: 4xx temporary, anything else permanent."""
    answer = _answer(code, text)
    message = f"The server refused {doing}: {answer}"
    if code in (530, 534, 535, 538):
        return SmtpAuthError(message, code=code, response=answer)
    if 400 <= code < 500:
        return SmtpTemporaryError(message, code=code, response=answer)
    return SmtpPermanentError(message, code=code, response=answer)


class _Guarded:
    allow_private = False

    def _connect_socket(self, host: str, port: int, timeout) -> socket.socket:
        try:
            return netguard.create_connection(
                host, port, timeout=timeout or socket.getdefaulttimeout() or 60, allow_private=self.allow_private
            )
        except netguard.AddressNotAllowed as exc:
            raise SmtpAddressError(str(exc)) from None
        except netguard.UnresolvableHost as exc:
            raise SmtpPermanentError(str(exc)) from None


class _SMTP(_Guarded, smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        return self._connect_socket(host, port, timeout)


class _SMTP_SSL(_Guarded, smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        sock = self._connect_socket(host, port, timeout)
        try:
            return self.context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise


def breaks_connection(exc: BaseException) -> bool:
    """Whether ``exc``, raised while talking to the server, leaves the connection unusable.

    A server's answer (a refusal) does not; a dropped connection, a network or TLS error, or
    anything unexpected mid-command (the next reply could belong to the interrupted command) does.
    """
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    return not isinstance(exc, SmtpError | smtplib.SMTPException)


def xoauth2_string(username: str, token: str) -> str:
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


class SmtpClient:
    """One SMTP session: ``with SmtpClient(...) as c: c.login(creds); c.send(...)``."""

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        *,
        timeout: float = 60,
        ca_file: str | None = None,
        allow_private: bool = False,
        local_hostname: str | None = None,
    ):
        if security not in SECURITY_CHOICES:
            raise ValueError(f"unknown security {security!r}")
        self.host, self.port, self.security = host, port, security
        self.timeout = timeout
        self.allow_private = allow_private
        self.local_hostname = local_hostname
        self._context = make_tls_context(ca_file)
        self._smtp: smtplib.SMTP | None = None
        self._broken = False
        self.encrypted = False

    def __enter__(self) -> SmtpClient:
        self.connect()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(quit=not self._broken)

    @contextlib.contextmanager
    def _talking(self, doing: str):
        """Around smtplib calls: errors become SmtpError; one that broke the connection is remembered."""
        try:
            yield
        except BaseException as exc:
            if breaks_connection(exc):
                self._broken = True
            if isinstance(exc, Exception):
                raise self._translate(exc, doing) from None
            raise

    # Errors ----------------------------------------------------------------------

    def _translate(self, exc: BaseException, doing: str) -> SmtpError:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, SmtpError):
            return exc
        if isinstance(exc, ssl.SSLCertVerificationError):
            return SmtpTLSError(f"The certificate of {self.host} could not be verified: {exc.verify_message}.")
        if isinstance(exc, ssl.SSLError):
            return SmtpTLSError(f"TLS with {self.host} failed: {exc.reason or exc}.")
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return error_for(exc.smtp_code, exc.smtp_error, "the login")
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return error_for(exc.smtp_code, exc.smtp_error, "the sender address")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            answers = {rcpt: _answer(code, text) for rcpt, (code, text) in exc.recipients.items()}
            codes = [code for code, _text in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {answer}" for rcpt, answer in answers.items())
            cls = SmtpTemporaryError if all(400 <= c < 500 for c in codes) else SmtpPermanentError
            return cls(f"The server refused every recipient: {detail}", code=codes[0], response=detail)
        if isinstance(exc, smtplib.SMTPResponseException):
            return error_for(exc.smtp_code, exc.smtp_error, doing)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return SmtpTemporaryError(f"{where} closed the connection during {doing}.")
        if isinstance(exc, smtplib.SMTPException):  # e.g. an extension missing: an OSError, but not the network's
            return SmtpPermanentError(f"{where}: {exc}")
        if isinstance(exc, ConnectionRefusedError):
            return SmtpTemporaryError(f"Connection to {where} was refused: no SMTP server is listening on that port.")
        if isinstance(exc, TimeoutError | socket.timeout):
            return SmtpTemporaryError(f"{where} did not answer in time during {doing}.")
        if isinstance(exc, OSError):
            return SmtpTemporaryError(f"Network error with {where} during {doing}: {exc.strerror or exc}.")
        raise exc

    # Session ---------------------------------------------------------------------

    def connect(self) -> None:
        try:
            with self._talking("the connection"):
                self._open()
        except BaseException:
            self.close(quit=not self._broken)  # e.g. STARTTLS missing: the server still hears QUIT
            raise

    def _open(self) -> None:
        if self.security == "ssl":
            smtp = _SMTP_SSL(timeout=self.timeout, context=self._context, local_hostname=self.local_hostname)
        else:
            smtp = _SMTP(timeout=self.timeout, local_hostname=self.local_hostname)
        smtp.allow_private = self.allow_private
        smtp._host = self.host  # the name TLS verifies (smtplib only sets it when the constructor connects)
        self._smtp = smtp
        code, text = smtp.connect(self.host, self.port)
        if code != 220:
            raise error_for(code, text, "the connection")
        self.encrypted = self.security == "ssl"
        self._ehlo()
        if self.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise SmtpTLSError(
                    f"{self.host} does not offer STARTTLS; choose SSL/TLS (usually port 465) or check the port."
                )
            code, text = smtp.starttls(context=self._context)
            if code != 220:
                raise error_for(code, text, "STARTTLS")
            self.encrypted = True
            self._ehlo()  # RFC 3207: forget what was learnt before TLS

    def _ehlo(self) -> None:
        code, text = self._smtp.ehlo()
        if code != 250:
            code, text = self._smtp.helo()
            if code != 250:
                raise error_for(code, text, "the greeting (EHLO)")

    @property
    def mechanisms(self) -> list[str]:
        return (self._smtp.esmtp_features.get("auth", "") if self._smtp else "").upper().split()

    def login(self, credentials: Credentials) -> str:
        """Authenticate; returns the mechanism used. Credentials are never logged."""
        smtp = self._smtp
        assert smtp is not None
        if not smtp.has_extn("auth"):
            raise SmtpAuthError(f"{self.host} does not offer authentication (AUTH) on this connection.")
        offered = self.mechanisms
        if credentials.oauth_token:
            if "XOAUTH2" not in offered:
                raise SmtpAuthError(f"{self.host} does not offer OAuth2 (XOAUTH2) login.")
            initial = xoauth2_string(credentials.username, credentials.oauth_token).encode()
            # After a failure the server sends a JSON error as a challenge; an empty answer ends it.
            self._sasl("XOAUTH2", [initial, b""])
            return "XOAUTH2"
        user, password = credentials.username.encode(), credentials.password.encode()
        if "PLAIN" in offered:
            self._sasl("PLAIN", [b"\0" + user + b"\0" + password])
            return "PLAIN"
        if "LOGIN" in offered:
            self._sasl("LOGIN", [user, password], initial=False)
            return "LOGIN"
        raise SmtpAuthError(
            f"{self.host} offers no login method webpop supports (it offers {', '.join(offered) or 'none'})."
        )

    def _sasl(self, mechanism: str, answers: list[bytes], *, initial: bool = True) -> None:
        """RFC 4954 AUTH with UTF-8 credentials (smtplib's own AUTH only takes ASCII)."""
        smtp = self._smtp
        answers = list(answers)
        with self._talking("the login"):
            if initial:
                first = answers.pop(0)
                code, text = smtp.docmd("AUTH", f"{mechanism} {base64.b64encode(first).decode() or '='}")
            else:
                code, text = smtp.docmd("AUTH", mechanism)
            while code == 334:
                answer = answers.pop(0) if answers else None
                if answer is None:
                    code, text = smtp.docmd("*")  # RFC 4954: cancel an exchange we cannot answer
                    break
                code, text = smtp.docmd(base64.b64encode(answer).decode())
        if code != 235:
            if 400 <= code < 500:
                raise error_for(code, text, "the login")
            answer = _answer(code, text)
            raise SmtpAuthError(f"The server refused the login: {answer}", code=code, response=answer)

    def send(self, envelope_from: str, recipients: list[str], data: bytes) -> SendResult:
        """MAIL FROM, RCPT TO each recipient, DATA. Raises unless at least one recipient got it."""
        smtp = self._smtp
        assert smtp is not None
        with self._talking("the message"):
            refused = smtp.sendmail(envelope_from, recipients, data)
        return SendResult(refused={rcpt: (code, _answer(code, text)) for rcpt, (code, text) in refused.items()})

    def close(self, *, quit: bool = True) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if quit and smtp.sock is not None:
                smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()
