"""Login methods without I/O: which to use, and the SASL client state machines (RFC 4422, 5034).

Each mechanism object answers the server's challenges; ``complete`` turns true
once it has sent its last message, after which only the server's verdict can
come, so a pipelining client may send the next commands along with that last
message. SCRAM (RFC 5802, 7677) checks the server's signature and can reuse a
SaltedPassword from a :class:`ScramCache` for a salt and iteration count it has
seen before (RFC 5802, section 5.1), which saves the PBKDF2 work on every poll.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections import OrderedDict

from .core import Capabilities
from .errors import Pop3AuthError

# Login methods by how well they protect the password, best first.
#
# Inside TLS (certificate verified) nobody else reads the wire, so what counts is
# what the server must store and what a compromised server learns:
# * SCRAM: the server keeps salted, iterated keys, never sees the password, and
#   proves it holds the keys. SHA-256 before SHA-1.
# * PLAIN, LOGIN, USER/PASS: the password crosses the encrypted wire, so the
#   server can keep a slow salted hash of it. Equal in strength; PLAIN is one round trip.
# * CRAM-MD5: keeps the password off the wire, which TLS already does, but the
#   server must store it in clear (or a clear-equivalent) and never proves itself.
# * APOP: the same storage need, plus bare MD5 over timestamp + password, which a
#   party choosing the timestamps can invert for short passwords; servers also
#   often accept it only from users given a separate APOP secret.
# Without TLS (only when the user chose it) an eavesdropper is the threat, so the
# challenge-response methods that keep the password off the wire rank first.
RANKING_TLS = ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "LOGIN", "USER", "CRAM-MD5", "APOP")
RANKING_CLEAR = ("SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "APOP", "PLAIN", "LOGIN", "USER")
# The server checks these against the password however it stores it; the others
# need a secret in a form the server may not have for every user.
PASSWORD_MECHANISMS = frozenset({"PLAIN", "LOGIN", "USER"})
MECHANISM_NAMES = {"USER": "USER/PASS"}  # how errors name a method
APOP_TIMESTAMP = re.compile(r"<[\x21-\x7e]+@[\x21-\x7e]+>")
MAX_SCRAM_ITERATIONS = 10_000_000


def offered_mechanisms(capabilities: Capabilities, apop_timestamp: str | None, encrypted: bool) -> list[str]:
    """The password login methods a server offers, best first for this connection."""
    offered = set(capabilities.sasl)
    if apop_timestamp:
        offered.add("APOP")
    if capabilities.user or not capabilities.raw or not offered:
        offered.add("USER")  # RFC 1939 servers without CAPA still take USER/PASS
    ranking = RANKING_TLS if encrypted else RANKING_CLEAR
    return [mechanism for mechanism in ranking if mechanism in offered]


def refused(exc: Pop3AuthError, mechanism: str) -> Pop3AuthError:
    """``exc`` naming ``mechanism``; a server's refusal worded by what it refused.

    A server refuses the methods that need a secret it may not hold for this user
    (APOP, CRAM-MD5, SCRAM) with the same line as a wrong password, so such a
    refusal says which method it was, not that the password is wrong.
    """
    if exc.response is None or type(exc) is not Pop3AuthError or mechanism in PASSWORD_MECHANISMS:
        exc.mechanism = mechanism
        return exc
    text = exc.response[4:].strip()
    message = f"The server refused {MECHANISM_NAMES.get(mechanism, mechanism)} for this user ({text})."
    return Pop3AuthError(message, response=exc.response, code=exc.code, mechanism=mechanism)


def apop_digest(timestamp: str, password: str) -> str:
    return hashlib.md5((timestamp + password).encode(), usedforsecurity=False).hexdigest()


# --- Mechanisms --------------------------------------------------------------------------


class Mechanism:
    """A SASL client. ``initial()`` goes with AUTH (RFC 5034 initial response) unless it is None."""

    name = ""
    complete = False  # the client sent its last message: only the server's verdict is left
    # A server's challenge after the last message carries its error report, not a step (OAuth).
    answers_error_challenge = False

    def initial(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        raise NotImplementedError

    def success(self, additional: bytes | None) -> None:
        """The server said +OK (``additional``: data sent with it, RFC 5034 section 4)."""

    @property
    def verified(self) -> bool:
        """The server proved it is the one that holds the secret (only SCRAM asks it to)."""
        return True

    def refused(self) -> None:
        """The server said -ERR to this login."""


class Plain(Mechanism):
    name = "PLAIN"

    def __init__(self, username: str, password: str):
        self._message = f"\0{username}\0{password}".encode()

    def initial(self) -> bytes:
        self.complete = True
        return self._message

    def respond(self, challenge: bytes) -> bytes:
        # Only reached when the initial response was held back (a server asking for it first).
        self.complete = True
        return self._message


class Login(Mechanism):
    """The obsolete but common LOGIN: user name, then password, each on request."""

    name = "LOGIN"

    def __init__(self, username: str, password: str):
        self._answers = [username.encode(), password.encode()]

    def respond(self, challenge: bytes) -> bytes:
        answer = self._answers.pop(0) if self._answers else b""
        self.complete = not self._answers
        return answer


class CramMd5(Mechanism):
    name = "CRAM-MD5"

    def __init__(self, username: str, password: str):
        self._username, self._password = username, password

    def respond(self, challenge: bytes) -> bytes:
        self.complete = True
        mac = hmac.new(self._password.encode(), challenge, "md5").hexdigest()
        return f"{self._username} {mac}".encode()


class OAuth(Mechanism):
    """XOAUTH2 (Google, Microsoft) or OAUTHBEARER (RFC 7628): the token in the initial response."""

    answers_error_challenge = True

    def __init__(self, mechanism: str, username: str, access_token: str, host: str, port: int):
        self.name = mechanism
        if mechanism == "XOAUTH2":
            self._initial = f"user={username}\x01auth=Bearer {access_token}\x01\x01".encode()
            self._error_answer = b""
        elif mechanism == "OAUTHBEARER":
            user = username.replace("=", "=3D").replace(",", "=2C")
            self._initial = f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {access_token}\x01\x01".encode()
            self._error_answer = b"\x01"  # RFC 7628 section 3.2.3
        else:
            raise ValueError(f"unknown OAuth mechanism {mechanism!r}")

    def initial(self) -> bytes:
        self.complete = True
        return self._initial

    def respond(self, challenge: bytes) -> bytes:
        if not self.complete:  # two-step: the server asked for the token
            self.complete = True
            return self._initial
        # A challenge after the token is the server's JSON error: answer so it can send -ERR.
        return self._error_answer


def saslprep(value: str) -> str:
    # Full SASLprep (RFC 4013) is NFKC plus mapping and prohibitions; NFKC covers
    # what real passwords contain and leaves ASCII untouched.
    return unicodedata.normalize("NFKC", value)


class ScramCache:
    """SaltedPassword per (hash, salt, iterations): a secret, as good as the password for this server.

    Keep it as the password is kept (encrypted at rest), and drop it when the
    password changes. Holds the few most recent entries.
    """

    SIZE = 4

    def __init__(self, entries: dict[str, str] | None = None):
        self._entries: OrderedDict[str, str] = OrderedDict(entries or {})
        self.changed = False

    @staticmethod
    def _key(hash_name: str, salt: str, iterations: int) -> str:
        return f"{hash_name}:{iterations}:{salt}"

    def get(self, hash_name: str, salt: str, iterations: int) -> bytes | None:
        value = self._entries.get(self._key(hash_name, salt, iterations))
        return base64.b64decode(value) if value else None

    def put(self, hash_name: str, salt: str, iterations: int, salted: bytes) -> None:
        key = self._key(hash_name, salt, iterations)
        self._entries[key] = base64.b64encode(salted).decode()
        self._entries.move_to_end(key)
        while len(self._entries) > self.SIZE:
            self._entries.popitem(last=False)
        self.changed = True

    def forget(self, hash_name: str, salt: str, iterations: int) -> None:
        if self._entries.pop(self._key(hash_name, salt, iterations), None) is not None:
            self.changed = True

    def __len__(self) -> int:
        return len(self._entries)

    def to_json(self) -> dict[str, str]:
        return dict(self._entries)

    @classmethod
    def from_json(cls, data: object) -> ScramCache:
        if not isinstance(data, dict):
            return cls()
        return cls({str(k): str(v) for k, v in data.items() if isinstance(v, str)})


class Scram(Mechanism):
    """SCRAM-SHA-1 / SCRAM-SHA-256 without channel binding; the server must prove it knows the keys."""

    def __init__(
        self,
        hash_name: str,
        username: str,
        password: str,
        *,
        nonce: str | None = None,
        cache: ScramCache | None = None,
    ):
        self.hash_name = hash_name
        self.name = "SCRAM-SHA-1" if hash_name == "sha1" else "SCRAM-SHA-256"
        self.username = saslprep(username).replace("=", "=3D").replace(",", "=2C")
        self.password = saslprep(password).encode()
        self.client_nonce = nonce or base64.b64encode(secrets.token_bytes(24)).decode()
        self.cache = cache
        self.server_verified = False
        self.salted_from_cache = False
        self._salt: tuple[str, int] | None = None
        self._expected_server_signature: bytes | None = None
        self._client_first_bare = f"n={self.username},r={self.client_nonce}"

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self.hash_name).digest()

    def client_first(self) -> bytes:
        return ("n,," + self._client_first_bare).encode()

    def initial(self) -> bytes:
        return self.client_first()

    def respond(self, challenge: bytes) -> bytes:
        return self.step(challenge)

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
        self.complete = True
        return b""

    def success(self, additional: bytes | None) -> None:
        if additional and not self.server_verified and self._expected_server_signature is not None:
            self.step(additional)  # some servers send the server-final message with +OK

    @property
    def verified(self) -> bool:
        return self.server_verified

    def refused(self) -> None:
        if self.salted_from_cache and self.cache is not None and self._salt is not None:
            self.cache.forget(self.hash_name, *self._salt)  # may be from an earlier password: never again

    def _client_final(self, server_first: str, fields: dict[str, str]) -> bytes:
        nonce, salt, iterations = fields.get("r", ""), fields.get("s", ""), fields.get("i", "")
        if not nonce.startswith(self.client_nonce) or not salt or not iterations.isdigit():
            raise Pop3AuthError("The server's SCRAM challenge is malformed.")
        rounds = int(iterations)
        if rounds < 1 or rounds > MAX_SCRAM_ITERATIONS:
            raise Pop3AuthError("The server's SCRAM iteration count is out of range.")
        self._salt = (salt, rounds)
        salted = self.cache.get(self.hash_name, salt, rounds) if self.cache is not None else None
        self.salted_from_cache = salted is not None
        if salted is None:
            try:
                salt_bytes = base64.b64decode(salt, validate=True)
            except (binascii.Error, ValueError):
                raise Pop3AuthError("The server's SCRAM challenge is malformed.") from None
            salted = hashlib.pbkdf2_hmac(self.hash_name, self.password, salt_bytes, rounds)
            if self.cache is not None:
                self.cache.put(self.hash_name, salt, rounds, salted)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._client_first_bare},{server_first},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._expected_server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def password_mechanism(
    mechanism: str, username: str, password: str, *, scram_cache: ScramCache | None = None
) -> Mechanism:
    """The SASL client for a password login method (not USER or APOP, which are plain commands)."""
    if mechanism == "PLAIN":
        return Plain(username, password)
    if mechanism == "LOGIN":
        return Login(username, password)
    if mechanism == "CRAM-MD5":
        return CramMd5(username, password)
    if mechanism in {"SCRAM-SHA-1", "SCRAM-SHA-256"}:
        return Scram("sha1" if mechanism == "SCRAM-SHA-1" else "sha256", username, password, cache=scram_cache)
    raise ValueError(f"unknown authentication mechanism {mechanism!r}")
