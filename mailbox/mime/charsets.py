"""Bytes to text: declared charsets read as mail clients read them, and text a database accepts.

A label is mapped to the superset clients really use (ISO-8859-1 is read as
windows-1252, GB2312 as GB18030); undeclared or wrongly declared text is tried
as UTF-8, then as Western text, then by detection, and never fails to decode.
"""

from __future__ import annotations

import codecs
import functools
import re

# Labels mail clients read as a superset (as browsers do), and common misspellings.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "unicode-1-1-utf-7": "utf-7",
    "x-user-defined": "latin-1",
    "utf8": "utf-8",
    "unicode": "utf-16",
}
# Text codecs that are no charset, or whose decoders are slow on hostile input.
_REFUSED_CODECS = {"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem"}
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf-7", "iso2022", "hz")
_SINGLE_BYTE = ("iso8859", "cp125", "cp874", "cp8", "koi8", "mac-", "ascii", "latin")


@functools.lru_cache(maxsize=256)
def _codec(label: str | None) -> str | None:
    """The Python codec for a declared charset label, or None if unknown or refused."""
    if not label:
        return None
    name = label.strip().strip("\"'").split("*", 1)[0].strip().lower()  # RFC 2231 language suffix
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None
    return None if codec in _REFUSED_CODECS else codec


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a hard dependency, but never crash for it
        return None
    try:
        best = from_bytes(data[:65536]).best()
    except Exception:
        return None
    return _codec(best.encoding) if best is not None else None


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Declared charset, then UTF-8, then detection, then Latin-1 with replacement.

    A single-byte label on bytes that are valid UTF-8 is read as UTF-8 first:
    mislabelled UTF-8 is common, and Latin-1 text that happens to be valid
    UTF-8 is not.
    """
    codec = _codec(charset)
    if data.isascii() and (codec is None or not codec.startswith(_NOT_ASCII_COMPATIBLE)):
        return data.decode("ascii")
    if codec is None:
        candidates = ["utf-8"]
    elif codec.startswith(_SINGLE_BYTE):
        candidates = ["utf-8", codec]
    else:
        candidates = [codec, "utf-8"]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except (UnicodeError, LookupError):
            continue
    western = _western(data)
    if western is not None:
        return western
    if len(data) >= 32:  # shorter samples detect as noise
        detected = _detect(data)
        if detected:
            try:
                return data.decode(detected, "replace")
            except (UnicodeError, LookupError):
                pass
    # Latin-1 as mail clients read it (windows-1252); undefined bytes replaced.
    return data.decode("cp1252", "replace")


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")


def _western(data: bytes) -> str | None:
    """The text as windows-1252 if it reads like a Western language: a few accented letters among ASCII ones.

    Detectors guess wrong on short Western text (they pick Baltic or Central
    European code pages); text in other scripts has mostly non-ASCII letters.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    sample = text[:65536]
    accented = len(_NON_ASCII.findall(sample))
    return text if accented <= 0.3 * (accented + len(_ASCII_LETTER.findall(sample))) else None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WS = re.compile(r"\s+")
_INVISIBLE = re.compile(
    r"[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)


def _clean(text: str) -> str:
    """Text a database and a template accept: no NUL, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _one_line(text: str, limit: int) -> str:
    text = _WS.sub(" ", _CONTROL.sub("", text)).strip()
    return text[: limit - 1] + "…" if len(text) > limit else text
