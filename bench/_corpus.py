"""The benchmark mailbox: 2,000 mixed messages, ~50 KB on average, deterministic."""

from __future__ import annotations

import email.policy
import random
from email.message import EmailMessage

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


def build_messages(count: int = 2000, seed: int = 1) -> list[bytes]:
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
