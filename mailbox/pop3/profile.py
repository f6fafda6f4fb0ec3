"""What a session learned about a server, kept between polls so the next one need not ask again.

A :class:`ServerProfile` is small, JSON-serialisable and holds no secret: the
capabilities before and after login and the login method that worked. A
client given a fresh profile skips both CAPA commands and goes straight to the
remembered method; it hands back an updated profile after login
(``client.profile``). A profile older than ``MAX_AGE`` is not used: the next
session asks again, so a server's changes are noticed within a day. The caller
should drop its profile when the server settings or the password change, and
after a failed session (whatever went wrong might be what changed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .core import Capabilities

MAX_AGE = 24 * 3600.0
VERSION = 1


@dataclass(frozen=True)
class ServerProfile:
    """``capabilities``: CAPA lines before login; ``session_capabilities``: after it; ``mechanism``: the
    login method that worked; ``learned_at``: when CAPA was last asked (Unix time). A server without
    CAPA has empty capability lists, which mean the same as its -ERR."""

    capabilities: tuple[str, ...] = ()
    session_capabilities: tuple[str, ...] = ()
    mechanism: str = ""
    learned_at: float = 0.0

    def usable(self, now: float | None = None, *, max_age: float = MAX_AGE) -> bool:
        """Known well enough, and recently enough, to skip CAPA."""
        now = time.time() if now is None else now
        return bool(self.mechanism) and self.learned_at > 0 and 0 <= now - self.learned_at <= max_age

    def pre_login(self) -> Capabilities:
        return Capabilities.parse(self.capabilities)

    def post_login(self) -> Capabilities:
        return Capabilities.parse(self.session_capabilities)

    def to_json(self) -> dict:
        return {
            "version": VERSION,
            "capabilities": list(self.capabilities),
            "session_capabilities": list(self.session_capabilities),
            "mechanism": self.mechanism,
            "learned_at": self.learned_at,
        }

    @classmethod
    def from_json(cls, data: object) -> ServerProfile:
        """A profile from ``to_json()`` output; anything unreadable is an empty (unusable) profile."""
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return cls()
        try:
            return cls(
                capabilities=tuple(str(line) for line in data.get("capabilities", ())),
                session_capabilities=tuple(str(line) for line in data.get("session_capabilities", ())),
                mechanism=str(data.get("mechanism", "")).upper(),
                learned_at=float(data.get("learned_at", 0.0)),
            )
        except (TypeError, ValueError):
            return cls()
