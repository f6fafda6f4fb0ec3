"""Log in to a POP3 server with a password: the method, the fallback, the limit.

Every place that logs in with a password (a sync, the connection test of the
account form) goes through :class:`PasswordLogin` (or :class:`AsyncPasswordLogin`
on the asyncio driver), so they rank, fall back and remember alike. Reads no
Django settings. The decisions are made by :class:`LoginPlan`, which does no
I/O; the two classes only run its plan over their driver.

Many servers offer a method they then refuse for a given user: an APOP
timestamp in every greeting but APOP only for users given an APOP secret, or
CRAM-MD5 and SCRAM listed in CAPA for users whose password is stored hashed.
The refusal reads like a wrong password. So when the automatic choice is
refused, one more method is tried; never more than ``MAX_TRIES`` logins in
all, so a server's lockout after failed logins is not tripped by us.

A :class:`ServerProfile` from an earlier session (``login.profile`` afterwards)
saves the CAPA round trips; a fallback connection never uses it (what it says
just proved wrong). ``then`` names commands to pipeline behind the login.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from .pop3 import PASSWORD_MECHANISMS, Pop3AuthError, Pop3Client, Pop3Error, ScramCache, ServerProfile
from .pop3.aio import AsyncPop3Client

MAX_TRIES = 2


def fallback_for(refused: str, offered: list[str], tried: list[str]) -> str | None:
    """The method to try after ``refused``: ``offered`` is best first; None if nothing is left.

    The methods that need a secret in a form the server may lack (APOP, CRAM-MD5,
    SCRAM) tend to be refused together, so after one of them the best method the
    server checks against the password itself comes next.
    """
    left = [mechanism for mechanism in offered if mechanism not in tried]
    if refused not in PASSWORD_MECHANISMS:
        with_password = [mechanism for mechanism in left if mechanism in PASSWORD_MECHANISMS]
        if with_password:
            return with_password[0]
    return left[0] if left else None


class LoginPlan:
    """Which method to try, and what to remember; no I/O.

    ``chosen``: the method the user picked (no fallback). ``remembered``: the
    method that worked last time, tried first.
    """

    def __init__(self, *, chosen: str = "", remembered: str = ""):
        self.chosen = chosen.upper()
        self.remembered = remembered.upper()
        self.tried: list[str] = []
        self.refused: list[Pop3AuthError] = []
        self.worked = ""
        self._remembered_gone = False  # the server no longer offers it

    @property
    def remember(self) -> str:
        """The method that worked; "" once the remembered one stopped working; else unchanged."""
        if self.chosen:
            return self.remembered
        if self.worked:
            return self.worked
        if self.remembered in self.tried or self._remembered_gone:
            return ""
        return self.remembered

    def first(self, offered: list[str]) -> str:
        if self.chosen:
            return self.chosen
        if self.remembered and self.remembered in offered:
            return self.remembered
        self._remembered_gone = bool(self.remembered)
        return offered[0] if offered else "USER"

    def trying(self, mechanism: str) -> None:
        self.tried.append(mechanism)

    def succeeded(self, mechanism: str) -> None:
        self.worked = mechanism

    def after_refusal(self, exc: Pop3AuthError, mechanism: str, offered: list[str]) -> str:
        """The method for a new connection after ``mechanism`` was refused; raises when there is none."""
        if self.chosen or exc.response is None:
            raise exc  # the user's choice, or not the server's refusal (say, its SCRAM proof was wrong)
        self.refused.append(exc)
        following = fallback_for(mechanism, offered, self.tried)
        if following is None or len(self.tried) >= MAX_TRIES:
            raise self.failure()
        return following

    def on_new_connection(self, following: str, refused: str, offered: list[str]) -> str:
        """``following`` again, checked against what the new connection offers; raises when nothing is left."""
        if following in offered:
            return following
        other = fallback_for(refused, offered, self.tried)
        if other is None:
            raise self.failure()
        return other

    def failure(self) -> Pop3AuthError:
        """Every try was refused: a refused password method means the password is wrong; say so."""
        for exc in self.refused:
            if exc.mechanism in PASSWORD_MECHANISMS:
                return exc
        return self.refused[-1]


class _Login:
    def __init__(
        self,
        username: str,
        password: str,
        *,
        allow_plaintext: bool,
        chosen: str = "",
        remembered: str = "",
        profile: ServerProfile | None = None,
        scram_cache: ScramCache | None = None,
        then: Sequence[str] = (),
    ):
        self.username = username
        self.password = password
        self.allow_plaintext = allow_plaintext
        self.plan = LoginPlan(chosen=chosen, remembered=remembered)
        self.profile = profile
        self.scram_cache = scram_cache
        self.then = tuple(then)

    @property
    def chosen(self) -> str:
        return self.plan.chosen

    @property
    def remembered(self) -> str:
        return self.plan.remembered

    @property
    def tried(self) -> list[str]:
        return self.plan.tried

    @property
    def refused(self) -> list[Pop3AuthError]:
        return self.plan.refused

    @property
    def worked(self) -> str:
        return self.plan.worked

    @property
    def remember(self) -> str:
        return self.plan.remember

    def _login_kwargs(self, mechanism: str) -> dict:
        return {
            "allow_plaintext": self.allow_plaintext,
            "mechanism": mechanism,
            "scram_cache": self.scram_cache,
            "then": self.then,
        }


class PasswordLogin(_Login):
    """One login: ``open()`` returns a connected client that is logged in.

    ``new_client(profile)`` makes an unconnected client (``profile``: None or the
    one to use). After ``open()`` (whether it returned or raised), ``remember``
    is the method to remember for next time.
    """

    def __init__(self, new_client: Callable[[ServerProfile | None], Pop3Client], username: str, password: str, **kw):
        super().__init__(username, password, **kw)
        self.new_client = new_client

    def open(self) -> Pop3Client:
        client = self._connect(self.profile)
        plan = self.plan
        mechanism = plan.first(client.offered_mechanisms())
        while True:
            try:
                return self._try(client, mechanism)
            except Pop3AuthError as exc:
                following = plan.after_refusal(exc, mechanism, client.offered_mechanisms())
            # After a refused login some servers close the connection or take no
            # further login in it; a new session is in a state every server defines.
            client = self._connect(None)
            try:
                mechanism = plan.on_new_connection(following, mechanism, client.offered_mechanisms())
            except Pop3AuthError:
                client.close()
                raise

    def _connect(self, profile: ServerProfile | None) -> Pop3Client:
        client = self.new_client(profile)
        client.connect()
        return client

    def _try(self, client: Pop3Client, mechanism: str) -> Pop3Client:
        self.plan.trying(mechanism)
        try:
            client.login(self.username, self.password, **self._login_kwargs(mechanism))
        except BaseException as exc:
            if isinstance(exc, Pop3AuthError) and exc.response is not None:
                with contextlib.suppress(Pop3Error):
                    client.quit()  # still in AUTHORIZATION state: nothing to commit or roll back
            client.close()
            raise
        self.plan.succeeded(mechanism)
        return client


class AsyncPasswordLogin(_Login):
    """``PasswordLogin`` on the asyncio driver: ``await open()``."""

    def __init__(
        self, new_client: Callable[[ServerProfile | None], AsyncPop3Client], username: str, password: str, **kw
    ):
        super().__init__(username, password, **kw)
        self.new_client = new_client

    async def open(self) -> AsyncPop3Client:
        client = await self._connect(self.profile)
        plan = self.plan
        mechanism = plan.first(client.offered_mechanisms())
        while True:
            try:
                return await self._try(client, mechanism)
            except Pop3AuthError as exc:
                following = plan.after_refusal(exc, mechanism, client.offered_mechanisms())
            client = await self._connect(None)
            try:
                mechanism = plan.on_new_connection(following, mechanism, client.offered_mechanisms())
            except Pop3AuthError:
                client.close()
                raise

    async def _connect(self, profile: ServerProfile | None) -> AsyncPop3Client:
        client = self.new_client(profile)
        await client.connect()
        return client

    async def _try(self, client: AsyncPop3Client, mechanism: str) -> AsyncPop3Client:
        self.plan.trying(mechanism)
        try:
            await client.login(self.username, self.password, **self._login_kwargs(mechanism))
        except BaseException as exc:
            if isinstance(exc, Pop3AuthError) and exc.response is not None:
                with contextlib.suppress(Pop3Error):
                    await client.quit()
            client.close()
            raise
        self.plan.succeeded(mechanism)
        return client
