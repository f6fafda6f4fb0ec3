"""vCard 3.0 (RFC 2426) and 4.0 (RFC 6350) for the fields webpop keeps: name, addresses, notes.

A small parser rather than the vobject package: vobject targets vCard 3.0 (4.0 files pass through
untouched but its writer emits 3.0 only) and pulls in pytz and six; the subset read here is a page of
the RFCs. Reads 2.1 files' quoted-printable values too, as old phones export them.
"""

from __future__ import annotations

import quopri
import re

from .actions import Card

MAX_CARDS = 10_000
MAX_LINE = 75  # octets per physical line (RFC 6350 3.2), continuation lines start with a space


class VCardError(ValueError):
    pass


# --- Reading ---------------------------------------------------------------------------------------


def _unfold(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines: list[str] = []
    for raw in text.split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw)
    return lines


def _split_unquoted(text: str, sep: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _parse_line(line: str) -> tuple[str, dict[str, list[str]], str]:
    head, sep, value = line.partition(":")
    # A colon inside a quoted parameter value does not end the head.
    if head.count('"') % 2:
        quoted = _split_unquoted(line, ":")
        head, value = quoted[0], ":".join(quoted[1:])
    elif not sep:
        raise VCardError(f"not a property line: {line[:40]!r}")
    pieces = _split_unquoted(head, ";")
    name = pieces[0].split(".")[-1].strip().upper()  # "item1.EMAIL": the group is not kept
    params: dict[str, list[str]] = {}
    for piece in pieces[1:]:
        key, eq, val = piece.partition("=")
        if not eq:  # vCard 2.1: a bare type ("EMAIL;INTERNET;PREF:")
            key, val = "TYPE", key
        params.setdefault(key.strip().upper(), []).extend(v.strip('"') for v in _split_unquoted(val, ","))
    return name, params, value


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _split_escaped(value: str, sep: str) -> list[str]:
    return [_unescape(part) for part in re.split(r"(?<!\\)" + re.escape(sep), value)]


def _decode(value: str, params: dict[str, list[str]], lines: list[str], index: int) -> tuple[str, int]:
    if "QUOTED-PRINTABLE" not in [v.upper() for v in params.get("ENCODING", [])]:
        return value, index
    while value.endswith("=") and index + 1 < len(lines):  # 2.1 soft line breaks
        index += 1
        value = value[:-1] + "=\n" + lines[index]
    charset = (params.get("CHARSET") or ["utf-8"])[0]
    try:
        return quopri.decodestring(value.encode("ascii", "replace")).decode(charset, "replace"), index
    except LookupError:
        return quopri.decodestring(value.encode("ascii", "replace")).decode("utf-8", "replace"), index


def _pref(params: dict[str, list[str]]) -> int:
    if "PREF" in params:
        try:
            return int(params["PREF"][0])
        except ValueError:
            return 100
    return 1 if "PREF" in [t.upper() for t in params.get("TYPE", [])] else 100


def parse(text: str) -> list[Card]:
    """Every card in ``text``; raises VCardError if it holds none or is not vCard."""
    lines = _unfold(text.lstrip("\ufeff"))
    cards: list[Card] = []
    current: dict | None = None
    index = 0
    while index < len(lines):
        name, params, value = _parse_line(lines[index])
        value, index = _decode(value, params, lines, index)
        index += 1
        if name == "BEGIN" and value.strip().upper() == "VCARD":
            current = {"fn": "", "n": "", "emails": [], "notes": []}
        elif name == "END" and value.strip().upper() == "VCARD" and current is not None:
            cards.append(_card(current))
            current = None
            if len(cards) > MAX_CARDS:
                raise VCardError(f"more than {MAX_CARDS} cards")
        elif current is None:
            continue
        elif name == "FN":
            current["fn"] = current["fn"] or _unescape(value)
        elif name == "N":
            current["n"] = value
        elif name == "EMAIL":
            address = _unescape(value).strip()
            if address.lower().startswith("mailto:"):
                address = address[7:]
            current["emails"].append((_pref(params), len(current["emails"]), address))
        elif name == "NOTE":
            current["notes"].append(_unescape(value))
    if not cards:
        raise VCardError("no vCard found")
    return cards


def _card(data: dict) -> Card:
    name = data["fn"].strip()
    if not name and data["n"]:  # family;given;additional;prefix;suffix
        parts = (_split_escaped(data["n"], ";") + [""] * 5)[:5]
        family, given, additional, prefix, suffix = (p.replace(",", " ").strip() for p in parts)
        name = " ".join(p for p in (prefix, given, additional, family, suffix) if p)
    emails = [address for _pref_, _order, address in sorted(data["emails"])]
    return Card(name=name, emails=emails, notes="\n".join(data["notes"]))


# --- Writing ---------------------------------------------------------------------------------------


def _escape(value: str) -> str:
    value = value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Physical lines of at most 75 octets, never splitting a UTF-8 character."""
    out, current, size = [], [], 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > MAX_LINE:
            out.append("".join(current))
            current, size = [" "], 1
        current.append(char)
        size += width
    out.append("".join(current))
    return "\r\n".join(out)


def _n_value(name: str) -> str:
    # N is structured (family;given;...); webpop keeps one name, so the last word stands in as family name.
    words = name.split()
    if not words:
        return ";;;;"
    return f"{_escape(words[-1])};{_escape(' '.join(words[:-1]))};;;"


def serialize(cards: list[Card], version: str = "4.0") -> str:
    if version not in ("3.0", "4.0"):
        raise VCardError("version must be 3.0 or 4.0")
    out = []
    for card in cards:
        lines = ["BEGIN:VCARD", f"VERSION:{version}", f"FN:{_escape(card.name)}", f"N:{_n_value(card.name)}"]
        for position, address in enumerate(card.emails):
            if version == "4.0":
                params = ";PREF=1" if position == 0 else ""
            else:
                params = ";TYPE=INTERNET,PREF" if position == 0 else ";TYPE=INTERNET"
            lines.append(f"EMAIL{params}:{_escape(address)}")
        if card.notes:
            lines.append(f"NOTE:{_escape(card.notes)}")
        lines.append("END:VCARD")
        out.extend(_fold(line) for line in lines)
    return "\r\n".join(out) + "\r\n"
