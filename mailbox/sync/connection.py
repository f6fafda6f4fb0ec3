"""Connecting and logging in to a POP3 server as webpop does, and the account form's connection test."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from django.conf import settings

from accounts.models import MailAccount
from oauth import tokens as oauth_tokens

from ..pop3 import PASSWORD_MECHANISMS, Capabilities, Pop3AuthError, Pop3Client, Pop3Error, ScramCache, ServerProfile
from ..pop3.aio import AsyncPop3Client
from ..pop3_login import PasswordLogin
from .outcome import RECONNECT


def client_for(
    host: str,
    port: int,
    security: str,
    *,
    fingerprint: str = "",
    profile: ServerProfile | None = None,
    driver: type[Pop3Client] | type[AsyncPop3Client] = Pop3Client,
    session_timeout: float | None = None,
):
    """A client of ``driver`` (the blocking one, or asyncio's for the check) with the site's settings."""
    return driver(
        host,
        port,
        security,
        timeout=settings.WEBPOP_POP3_TIMEOUT,
        # A sync ends before its lease can lapse; a check has its own deadline.
        session_timeout=session_timeout or settings.WEBPOP_SYNC_LEASE_SECONDS * 0.9,
        ca_file=settings.WEBPOP_POP3_CA_FILE,
        fingerprint_sha256=fingerprint or None,
        allow_private=settings.WEBPOP_POP3_ALLOW_PRIVATE,
        profile=profile,
    )


def password_login(
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    *,
    chosen: str = "",
    remembered: str = "",
    fingerprint: str = "",
    profile: ServerProfile | None = None,
    scram_cache: ScramCache | None = None,
    then: tuple[str, ...] = (),
) -> PasswordLogin:
    """The one way webpop logs in with a password: ranked methods, one fallback, at most two tries.

    ``profile``: what the last session learned (no CAPA then); ``then``: commands pipelined behind the login.
    """
    return PasswordLogin(
        lambda profile: client_for(host, port, security, fingerprint=fingerprint, profile=profile),
        username,
        password,
        allow_plaintext=security == "none",
        chosen=chosen,
        remembered=remembered,
        profile=profile,
        scram_cache=scram_cache,
        then=then,
    )


def oauth_client(
    host: str,
    port: int,
    security: str,
    username: str,
    access_token: str,
    mechanism: str,
    two_step: bool,
    fingerprint: str = "",
) -> Pop3Client:
    """A connected client logged in with an OAuth2 access token (XOAUTH2 or OAUTHBEARER)."""
    client = client_for(host, port, security, fingerprint=fingerprint)
    client.connect()
    try:
        client.login_oauth(
            username, access_token, mechanism=mechanism, two_step=two_step, allow_plaintext=security == "none"
        )
    except BaseException:
        client.close()
        raise
    return client


def refused_method_fix(exc: Pop3AuthError, *, chosen: bool) -> str:
    """What to do when the server refused a method that needs its own secret; "" for a wrong password."""
    if exc.response is None or exc.mechanism is None or exc.mechanism in PASSWORD_MECHANISMS:
        return ""
    if chosen:
        return "If the password is right, set the login method to Automatic in the account settings."
    return "If the password is right, ask the provider to allow this login method for the account."


@dataclass
class ConnectionReport:
    ok: bool
    message: str
    error_class: str = ""
    message_count: int | None = None
    capabilities: Capabilities | None = None
    mechanism: str = ""  # the login method that worked, when it was chosen automatically


def test_connection(
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    *,
    mechanism: str = "",
    remembered: str = "",
    fingerprint: str = "",
    access_token: str = "",
    two_step: bool = False,
) -> ConnectionReport:
    """Connect, log in and STAT, then QUIT. Never changes anything on the server.

    With ``access_token`` the login is OAuth2 (``mechanism`` XOAUTH2 or OAUTHBEARER) and ``password`` unused.
    Otherwise ``mechanism`` is the user's choice of login method ("": automatic) and ``remembered``
    the method that worked for the account before.
    """
    login = None
    try:
        if access_token:
            client = oauth_client(host, port, security, username, access_token, mechanism, two_step, fingerprint)
        else:
            login = password_login(
                host,
                port,
                security,
                username,
                password,
                chosen=mechanism,
                remembered=remembered,
                fingerprint=fingerprint,
                then=("STAT", "QUIT"),  # one round trip after the password
            )
            client = login.open()
        with contextlib.closing(client):  # connected already: `with client` would connect again
            count, _size = client.stat()
            capabilities = client.capabilities
            client.quit()
    except Pop3Error as exc:
        message = str(exc)
        if isinstance(exc, Pop3AuthError) and (fix := refused_method_fix(exc, chosen=bool(mechanism))):
            message = f"{message} {fix}"
        return ConnectionReport(ok=False, message=message, error_class=exc.error_class)
    noun = "message" if count == 1 else "messages"
    return ConnectionReport(
        ok=True,
        message=f"Connected and logged in: {count} {noun} on the server.",
        message_count=count,
        capabilities=capabilities,
        mechanism=login.worked if login is not None and not mechanism else "",
    )


def test_oauth_connection(
    account: MailAccount, host: str, port: int, security: str, username: str, *, fingerprint: str = ""
) -> ConnectionReport:
    """``test_connection`` for an account that signs in with its OAuth2 grant."""
    try:
        token = oauth_tokens.access_token_for(account)
    except oauth_tokens.ReconnectRequired as exc:
        return ConnectionReport(ok=False, message=f"{exc} {RECONNECT}", error_class="auth")
    except oauth_tokens.TokenUnavailable as exc:
        return ConnectionReport(ok=False, message=str(exc), error_class="temporary")
    login = oauth_tokens.oauth_login(account)
    return test_connection(
        host,
        port,
        security,
        username,
        "",
        mechanism=login.mechanism,
        fingerprint=fingerprint,
        access_token=token,
        two_step=login.two_step,
    )
