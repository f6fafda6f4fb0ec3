"""The benchmark mailbox: 2,000 mixed messages, ~50 KB on average, deterministic."""

from __future__ import annotations

import email.policy
import hashlib
import os
import random
import struct
import tempfile
from email.message import EmailMessage
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent.parent / "var" / "bench" / "cache"

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "invoice",
    "meeting",
    "report",
    "quarterly",
    "results",
    "please",
    "find",
    "attached",
    "regards",
    "thanks",
    "schedule",
    "project",
    "update",
    "newsletter",
    "offer",
    "Grüße",
    "naïve",
    "café",
    "déjà",
    "vu",
]


def _text(rng: random.Random, size: int) -> str:
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        if rng.random() < 0.02:
            line = "." + line  # dot-stuffed on the wire
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def build_messages(count: int = 2000, seed: int = 1, *, cache: bool = True) -> list[bytes]:
    """The messages, from a disk cache under var/bench/cache when one is there.

    Building them takes seconds; the cache is keyed by this file's source, so
    changing the generator rebuilds it."""
    if not cache:
        return _build(count, seed)
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    path = CACHE_DIR / f"corpus-{count}-{seed}-{key}.bin"
    try:
        return _unpack(path.read_bytes(), count)
    except (OSError, ValueError, struct.error):
        pass
    messages = _build(count, seed)
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        for stale in CACHE_DIR.glob(f"corpus-{count}-{seed}-*.bin"):
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, prefix=".corpus-")
        with os.fdopen(fd, "wb") as f:
            for raw in messages:
                f.write(struct.pack(">I", len(raw)))
                f.write(raw)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only tree just means no cache
    return messages


def _unpack(data: bytes, count: int) -> list[bytes]:
    messages, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        pos += 4
        messages.append(data[pos : pos + size])
        pos += size
    if pos != len(data) or len(messages) != count:
        raise ValueError("truncated corpus cache")
    return messages


def _build(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    messages = []
    for i in range(count):
        msg = EmailMessage()
        msg["From"] = f"Sender {i % 97} <sender{i % 97}@example.net>"
        msg["To"] = "reader@example.org"
        msg["Subject"] = f"Benchmark message {i}: {' '.join(rng.choice(WORDS) for _ in range(5))}"
        msg["Date"] = f"Thu, 26 Nov 2026 {i % 24:02d}:{i % 60:02d}:00 +0000"
        msg["Message-ID"] = f"<bench-{i}@example.net>"
        roll = rng.random()
        if roll < 0.10:  # newsletters: HTML + text alternative
            text = _text(rng, rng.randint(8_000, 30_000))
            msg.set_content(text)
            msg.add_alternative(
                "<html><body><table><tr><td>" + text.replace("\n", "<br>") + "</td></tr></table></body></html>",
                subtype="html",
            )
        else:
            msg.set_content(_text(rng, rng.randint(2_000, 20_000)))
        if roll > 0.95:  # some big attachments
            msg.add_attachment(
                rng.randbytes(300_000), maintype="application", subtype="pdf", filename=f"report-{i}.pdf"
            )
        elif roll > 0.55:
            msg.add_attachment(
                rng.randbytes(rng.randint(10_000, 60_000)), maintype="image", subtype="jpeg", filename=f"photo-{i}.jpg"
            )
        messages.append(msg.as_bytes(policy=email.policy.SMTP))
    return messages
