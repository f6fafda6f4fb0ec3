"""What can go wrong in a POP3 session, as exceptions the sync engine can act on.

``error_class`` of each matches ``accounts.models.ErrorClass``. Pure: no I/O.
"""

from __future__ import annotations

import re


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
    """A login was refused (``response`` is then the server's line) or could not be made.

    ``mechanism`` is the login method that was tried, when one was.
    """

    error_class = "auth"

    def __init__(
        self, message: str, *, response: str | None = None, code: str | None = None, mechanism: str | None = None
    ):
        super().__init__(message, response=response, code=code)
        self.mechanism = mechanism


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


def greeting_error(line: str, host: str) -> Pop3ServerError:
    """A ``-ERR`` greeting: usually "too many connections", so temporary unless its code says otherwise."""
    error = server_error(line)
    if type(error) is Pop3ServerError and error.code is None:
        return Pop3TemporaryError(f"{host} refused the session: {line[4:].strip()}", response=line)
    return error
