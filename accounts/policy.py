"""Server-side deletion policies, as written in forms, the CLI and the DB.

``keep``      leave every message on the server
``delete``    DELE each message once it is durably stored
``mirror``    DELE what the user deleted in webpop
``days:N``    DELE messages stored for N days or more
``mirror+days:N`` both of the last two
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

_DAYS = re.compile(r"^days:(\d{1,5})$")


@dataclass(frozen=True)
class Policy:
    delete_after_fetch: bool = False
    mirror: bool = False
    delete_after_days: int | None = None

    @classmethod
    def parse(cls, text: str) -> Policy:
        text = (text or "").strip().lower()
        if text == "keep":
            return cls()
        if text == "delete":
            return cls(delete_after_fetch=True)
        parts = text.split("+")
        mirror = False
        days = None
        for part in parts:
            if part == "mirror" and not mirror:
                mirror = True
                continue
            match = _DAYS.match(part)
            if match and days is None:
                days = int(match.group(1))
                if days < 1:
                    break
                continue
            break
        else:
            if mirror or days is not None:
                return cls(mirror=mirror, delete_after_days=days)
        raise ValidationError(
            gettext("Unknown policy %(policy)r: use keep, delete, mirror, days:N (N ≥ 1) or mirror+days:N."),
            code="invalid_policy",
            params={"policy": text},
        )

    def __str__(self) -> str:
        if self.delete_after_fetch:
            return "delete"
        parts = []
        if self.mirror:
            parts.append("mirror")
        if self.delete_after_days is not None:
            parts.append(f"days:{self.delete_after_days}")
        return "+".join(parts) or "keep"

    def describe(self) -> str:
        if self.delete_after_fetch:
            return gettext("Delete each message from the server once webpop has stored it safely.")
        if self.mirror and self.delete_after_days:
            return gettext(
                "Delete from the server what you delete here, and anything stored here for %(days)d days."
            ) % {"days": self.delete_after_days}
        if self.mirror:
            return gettext("Delete from the server what you delete here; leave everything else.")
        if self.delete_after_days:
            return gettext("Leave messages on the server for %(days)d days after webpop stored them.") % {
                "days": self.delete_after_days
            }
        return gettext("Leave every message on the server.")


def validate_policy(value: str) -> None:
    Policy.parse(value)
