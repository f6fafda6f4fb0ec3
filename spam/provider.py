"""A mail provider's own spam verdict, read from the headers its filter added. No Django, no network.

Without rspamd an account may trust its provider: the headers of SpamAssassin (``X-Spam-Flag``,
``X-Spam-Status``), rspamd and others (``X-Spam``), Microsoft (the SCL in
``X-MS-Exchange-Organization-SCL`` / ``X-Forefront-Antispam-Report``) and GMX / WEB.DE
(``X-UI-Filterresults``). Providers prepend their headers, so the topmost of each name is theirs.
Authentication-Results are read only from the authserv-id the account names (RFC 8601 §5: anyone
can write that header; only the receiving provider's own is worth anything), and only its topmost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import BinaryIO

SPAM = "spam"
PROBABLE = "probable"
HEADER_LIMIT = 256 * 1024  # the header block of any real message is far smaller
SCL_SPAM = 5  # Microsoft's spam confidence level from which a message is junk

_YES = re.compile(r"\s*(yes|true)\b", re.IGNORECASE)
_SCL = re.compile(r"(?:^|;)\s*SCL:\s*(-?\d+)", re.IGNORECASE)
_RESULT = re.compile(r"^\s*([A-Za-z0-9-]+)(?:/\d+)?\s*=\s*([A-Za-z]+)")


@dataclass(frozen=True)
class Verdict:
    kind: str  # SPAM, PROBABLE, or "" (nothing said against the message)
    reason: str = ""  # the header that decided, e.g. "X-Spam-Flag"


CLEAN = Verdict("")


def read_header_block(fh: BinaryIO, limit: int = HEADER_LIMIT) -> bytes:
    """The message's header block (up to the first empty line), at most ``limit`` bytes of it."""
    lines = []
    size = 0
    for line in fh:
        if line in (b"\r\n", b"\n") or size >= limit:
            break
        lines.append(line)
        size += len(line)
    return b"".join(lines)


def verdict(header_block: bytes, authserv_id: str = "") -> Verdict:
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_block + b"\r\n")

    def first(name: str) -> str:
        value = headers.get(name)
        return str(value) if value is not None else ""

    if _YES.match(first("X-Spam-Flag")):
        return Verdict(SPAM, "X-Spam-Flag")
    if _YES.match(first("X-Spam-Status")):
        return Verdict(SPAM, "X-Spam-Status")
    if _YES.match(first("X-Spam")):
        return Verdict(SPAM, "X-Spam")
    scl = _scl(first("X-MS-Exchange-Organization-SCL").strip()) or _scl_in_report(first("X-Forefront-Antispam-Report"))
    if scl is not None and scl >= SCL_SPAM:
        return Verdict(SPAM, "SCL")
    if first("X-UI-Filterresults").strip().lower().startswith("junk"):
        return Verdict(SPAM, "X-UI-Filterresults")
    if authserv_id:
        results = authentication_results(headers.get_all("Authentication-Results") or [], authserv_id)
        if results.get("dmarc") == "fail":
            return Verdict(PROBABLE, "Authentication-Results")
    return CLEAN


def _scl(text: str) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _scl_in_report(report: str) -> int | None:
    match = _SCL.search(report)
    return int(match.group(1)) if match else None


def authentication_results(values: list, authserv_id: str) -> dict[str, str]:
    """The results (method → result) of the topmost Authentication-Results header from ``authserv_id``."""
    wanted = authserv_id.strip().lower()
    for value in values:
        parts = _without_comments(str(value)).split(";")
        server = parts[0].split()
        if not server or server[0].lower() != wanted:
            continue
        results: dict[str, str] = {}
        for part in parts[1:]:
            match = _RESULT.match(part)
            if match:
                results.setdefault(match.group(1).lower(), match.group(2).lower())
        return results
    return {}


def _without_comments(text: str) -> str:
    """RFC 5322 comments (nested parentheses, with quoted pairs) removed: they may hold ';' and '='."""
    out = []
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)
