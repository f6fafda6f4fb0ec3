"""A message's attachments as one ZIP, streamed: memory stays at one chunk whatever the sizes.

The names are the sender's: each becomes a plain file name (no folders, no
``..``, no drive letters, no control or Windows-reserved characters, no
reserved device names), and names that would collide, also in a
case-insensitive file system, are numbered like a browser's downloads
("plan (2).pdf").
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1024 * 1024
MAX_NAME_CHARS = 150
_RESERVED_CHARS = re.compile(r'[<>:"/\\|?*]')
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_name(name: str, fallback: str) -> str:
    """A file name that extracts as one file in the archive's folder, on any system."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]  # no folders: only the last part of a path
    name = "".join(ch if ch.isprintable() else " " for ch in name)
    name = _RESERVED_CHARS.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")  # no "..", no hidden ".name", no trailing dot or space
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.split(".")[0].upper() in _WINDOWS_DEVICES or not stem:
        stem = fallback
    ext = ext[:20]
    stem = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip(" .") or fallback
    return f"{stem}.{ext}" if ext else stem


def unique_names(names: Iterable[str], fallback: str = "attachment") -> list[str]:
    """Safe names, numbered where two would be the same file (case and Unicode form ignored)."""
    taken: set[str] = set()
    result = []
    for index, raw in enumerate(names, start=1):
        name = safe_name(raw, f"{fallback}-{index}")
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate, number = name, 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{stem} ({number}).{ext}" if ext else f"{stem} ({number})"
        taken.add(candidate.casefold())
        result.append(candidate)
    return result


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    open: Callable[[], BinaryIO]  # raises OSError when the file cannot be read


class _Sink:
    """What zipfile writes to: collects bytes until the generator hands them on (no seek: data descriptors)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def stream(
    entries: Iterable[Entry],
    date_time: tuple[int, int, int, int, int, int] = (1980, 1, 1, 0, 0, 0),
    on_unreadable: Callable[[Entry], None] = lambda entry: None,
) -> Iterator[bytes]:
    """The ZIP's bytes, a chunk at a time. An entry whose file cannot be opened is left out (``on_unreadable``)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for entry in entries:
            try:
                source = entry.open()
            except OSError:
                on_unreadable(entry)
                continue
            info = zipfile.ZipInfo(entry.name, date_time=max(date_time, (1980, 1, 1, 0, 0, 0)))
            # Deflated even when already compressed: a stored entry behind a data descriptor breaks
            # streaming readers (Java's ZipInputStream refuses it).
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # a plain, readable file when extracted
            info.file_size = entry.size  # zipfile picks ZIP64 from it for big files
            with source, archive.open(info, "w") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    if sink.parts:
                        yield sink.take()
            yield sink.take()  # the entry's data descriptor
    yield sink.take()  # the central directory
