"""TNEF (winmail.dat) reading: webpop's reader against tnefparse, on ordinary and hostile streams.

mailbox/mime/tnef.py reads only what an attachment list needs (names, types, bytes) and stops at
the first damage, keeping the files read before it. tnefparse is the library that does the job;
this bench is why webpop does not use it: it copies the rest of the stream for every object it
reads (time and memory quadratic in the number of objects, which a sender chooses), and a stream
without an OEM code page object raises instead of giving its files.

Streams: an ordinary one (three files of 100 KB), then hostile ones padded with ever more tiny
objects. Each figure is the best of ``RUNS`` (the slowest tnefparse case once). Prints a Markdown
table.

    .venv/bin/python bench/tnef.py
"""

from __future__ import annotations

import logging
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from tnefparse.tnef import TNEF  # noqa: E402

from mailbox.mime.tnef import tnef_files  # noqa: E402

RUNS = 5
SIGNATURE = 0x223E9F78


def attribute(level: int, name: int, kind: int, payload: bytes) -> bytes:
    """One TNEF attribute: level, id (name and type), length, data, checksum."""
    header = struct.pack("<BII", level, name | (kind << 16), len(payload))
    return header + payload + struct.pack("<H", sum(payload) & 0xFFFF)


def stream(files: list[tuple[bytes, bytes]], padding: int = 0, *, codepage: bool = True) -> bytes:
    out = struct.pack("<IH", SIGNATURE, 0) + attribute(1, 0x9006, 0x8, struct.pack("<I", 0x10000))
    if codepage:
        out += attribute(1, 0x9007, 0x6, struct.pack("<II", 1252, 0))
    for name, data in files:
        out += attribute(2, 0x9002, 0x6, b"\0" * 14)  # rendering data: an attachment begins
        out += attribute(2, 0x8010, 0x1, name + b"\0")
        out += attribute(2, 0x800F, 0x6, data)
    return out + attribute(1, 0x8004, 0x1, b"x\0") * padding  # tiny subject attributes


def with_tnefparse(data: bytes) -> list[tuple[str, bytes]]:
    return [(a.long_filename(), a.data) for a in TNEF(data, do_checksum=False).attachments]


def with_webpop(data: bytes) -> list[tuple[str, bytes]]:
    return [(name, content) for name, _type, content in tnef_files(data)]


def timed(reader, data: bytes, runs: int) -> tuple[float, str]:
    """Best time in ms, and what came out ("3 files", or the exception)."""
    best, outcome = float("inf"), ""
    for _ in range(runs):
        start = time.perf_counter()
        try:
            files = reader(data)
            outcome = f"{len(files)} file" + ("s" if len(files) != 1 else "")
        except Exception as exc:  # what a reader does with the stream is the result
            outcome = type(exc).__name__
        best = min(best, time.perf_counter() - start)
    return best * 1000, outcome


def main() -> int:
    logging.disable(logging.CRITICAL)  # tnefparse logs every odd attribute
    files = [(f"report-{n}.pdf".encode(), bytes([n]) * 100_000) for n in range(3)]
    cases = [("ordinary: 3 files of 100 KB", stream(files), RUNS)]
    cases.append(("a subject, no OEM code page attribute", stream(files, 1, codepage=False), RUNS))
    for padding in (10_000, 40_000, 160_000):
        cases.append(
            (f"hostile: {padding:,} tiny attributes", stream(files[:1], padding), 1 if padding > 50_000 else RUNS)
        )
    print("| stream | size | tnefparse ms | gives | webpop ms | gives | tnefparse / webpop |")
    print("|---|---:|---:|---|---:|---|---:|")
    for label, data, runs in cases:
        theirs, their_outcome = timed(with_tnefparse, data, runs)
        ours, our_outcome = timed(with_webpop, data, RUNS)
        print(
            f"| {label} | {len(data) / 1e6:.2f} MB | {theirs:.2f} | {their_outcome} | {ours:.2f} | {our_outcome} "
            f"| {theirs / ours:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
