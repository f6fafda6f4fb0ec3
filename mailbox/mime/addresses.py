"""Address lists, dates and message ids from header text, as mail clients read them."""

from __future__ import annotations

import datetime as dt
import email.utils
import re

from .charsets import _one_line
from .headers import decode_words

MAX_FIELD_CHARS = 10_000  # To, Cc, References ...

_NAME_ADDR = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^"<>(),;:@\\]*?))\s*<([^<>\s@",;:]+@[^<>\s@",;:]+)>\s*')
_BARE_ADDR = re.compile(r'\s*([^\s<>"(),;:@\\]+@[^\s<>"(),;:@\\]+)\s*')


def _mailbox(item: str) -> tuple[str, str] | None:
    """(display name, address) for one mailbox, or None when it is not one."""
    simple = _NAME_ADDR.fullmatch(item) or _BARE_ADDR.fullmatch(item)
    if simple:  # the usual forms, without the standard library's slower general parser
        if simple.re is _BARE_ADDR:
            return "", simple.group(1)
        quoted, plain, addr = simple.groups()
        name = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain
        return _one_line(decode_words(name), 255), addr
    try:
        name, addr = email.utils.parseaddr(item)
    except Exception:
        return None
    if not addr or "@" not in addr or " " in addr:
        return None
    return _one_line(decode_words(name), 255), addr.strip()


Entry = tuple[str, tuple[str, str] | None]  # (text as written, (name, address) when it is a mailbox)


def parse_addresses(text: str) -> list[tuple[str, list[Entry]]]:
    """An address list as (group name, entries); group name "" for mailboxes outside a group.

    Commas, colons and semicolons count only outside quotes, comments and
    angle brackets; a malformed entry is kept as its text.
    """
    text = text[: MAX_FIELD_CHARS * 4]
    if not any(char in text for char in '"(:;\\'):  # the common case: no quotes, comments or groups
        entries = [(item.strip(), _mailbox(item)) for item in text.split(",") if item.strip()]
        return [("", entries)] if entries else []
    groups: list[tuple[str, list[Entry]]] = []
    group: tuple[str, list[Entry]] | None = None
    current: list[str] = []
    quoted = escaped = angle = False
    depth = 0

    def end_item() -> None:
        item = "".join(current).strip()
        current.clear()
        if not item:
            return
        entry = (item, _mailbox(item))
        if group is not None:
            group[1].append(entry)
        elif groups and groups[-1][0] == "":
            groups[-1][1].append(entry)
        else:
            groups.append(("", [entry]))

    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth:
            pass
        elif char == "<":
            angle = True
        elif char == ">":
            angle = False
        elif not angle and char == ",":
            end_item()
            continue
        elif not angle and char == ":" and group is None:
            name = "".join(current).strip().strip('"')
            current.clear()
            group = (_one_line(decode_words(name), 255), [])
            groups.append(group)
            continue
        elif not angle and char == ";" and group is not None:
            end_item()
            group = None
            continue
        current.append(char)
    end_item()
    return groups


def _entry_text(entry: Entry) -> str:
    text, pair = entry
    if pair is None:
        return _one_line(decode_words(text), 1000)
    return f"{pair[0]} <{pair[1]}>" if pair[0] else pair[1]


def _format_address_list(text: str) -> str:
    parts = []
    for name, entries in parse_addresses(text):
        members = ", ".join(_entry_text(entry) for entry in entries)
        parts.append(f"{name}: {members};" if name else members)
    return _one_line(", ".join(p for p in parts if p), MAX_FIELD_CHARS)


def _first_sender(text: str) -> tuple[str, str]:
    """(name, address) of the first mailbox; the whole text as the name when there is none."""
    for _group, entries in parse_addresses(text):
        for _text, pair in entries:
            if pair:
                return pair
    try:
        name, _addr = email.utils.parseaddr(text)
    except Exception:
        name = ""
    return _one_line(decode_words(name or text), 255), ""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")


def parse_date(text: str) -> dt.datetime | None:
    """RFC 5322 dates and the broken forms seen in the wild, timezone-aware; None if hopeless."""
    text = text.strip()
    if not text:
        return None
    try:
        parts = email.utils.parsedate_tz(text)
    except Exception:
        parts = None
    if parts:
        try:
            offset = dt.timedelta(seconds=parts[9] or 0)
            tz = dt.timezone(offset) if abs(offset) < dt.timedelta(hours=24) else dt.UTC
            value = dt.datetime(*parts[:5], min(parts[5], 59), tzinfo=tz)
            if value.year >= 1900:
                return value
        except (ValueError, OverflowError, TypeError):
            pass
    match = _ISO_DATE.search(text)
    if match:
        try:
            value = dt.datetime.fromisoformat(match.group(0))
        except ValueError:
            return None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


_MSG_ID = re.compile(r"<[^<>\s]{1,900}>")


def _message_ids(text: str) -> list[str]:
    return _MSG_ID.findall(text)
