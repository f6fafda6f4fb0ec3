"""Parsing speed and memory: webpop's mime.parse beside the standard library, in one run.

Speed: 2,000 generated messages (deterministic; ~50 KB on average: plain and
HTML newsletters, replies, inline images, and some with a 300 KB attachment),
parsed by ``mailbox.mime.parse`` and by a plain ``email.message_from_bytes``
(``policy.default``) full walk that decodes every leaf part, plus the
``compat32`` walk for reference. Best of three rounds each.

Memory: one 50 MB message (a base64 attachment) parsed in a fresh
subprocess; peak RSS growth (VmHWM, or ru_maxrss where /proc is missing)
and Python's own allocations (tracemalloc), as a multiple of the message size.

Prints Markdown tables (bench/run_all.py collects them into RESULTS.md).
"""

from __future__ import annotations

import base64
import email
import email.policy
import os
import random
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # our app is named "mailbox": it must win over the stdlib module

from mailbox import mime  # noqa: E402

COUNT = 2000
ROUNDS = 3
BIG_MESSAGE_BYTES = 50 * 1024 * 1024
_WORD_LINES = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by word",
    "but not what all were we when your can said there use an each which she do how their if will up other about",
    "out many then them these so some her would make like him into time has look two more write go see number no",
    "way could people my than first water been call who oil its now find long down day did get come made may part",
    "Grüße café naïve résumé Straße déjà Ünïcode",
)
WORDS = [word for line in _WORD_LINES for word in line.split()]


def _text(rng: random.Random, words: int) -> str:
    lines, line = [], []
    for _ in range(words):
        line.append(rng.choice(WORDS))
        if len(line) == 12:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "\n".join(lines)


def _html(rng: random.Random, words: int) -> str:
    rows = []
    for _ in range(max(1, words // 60)):
        rows.append(
            f'<tr><td style="padding:12px;font-family:Arial;color:#333"><p>{_text(rng, 60)}</p>'
            f'<a href="https://example.com/{rng.getrandbits(32):x}">Read more</a></td></tr>'
        )
    return (
        "<html><head><style>td{font-size:14px}</style></head><body>"
        f'<table width="600" cellpadding="0" cellspacing="0">{"".join(rows)}</table></body></html>'
    )


def _message(rng: random.Random, index: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Sender {index % 50} <sender{index % 50}@example.com>"
    msg["To"] = "Alice <alice@example.org>, bob@example.org"
    msg["Subject"] = f"Message {index}: {_text(rng, 6)}"
    msg["Date"] = f"Thu, {1 + index % 28} Nov 2026 09:{index % 60:02d}:00 +0100"
    msg["Message-ID"] = f"<{index}.{rng.getrandbits(40):x}@example.com>"
    for hop in range(rng.randint(3, 8)):
        msg["Received"] = (
            f"from mx{hop}.example.net (mx{hop}.example.net [192.0.2.{hop}]) by mx.example.org; {msg['Date']}"
        )
    kind = rng.random()
    if kind < 0.095:  # a 300 KB attachment
        msg.set_content(_text(rng, 400))
        msg.add_attachment(rng.randbytes(300 * 1024), maintype="application", subtype="pdf", filename="report.pdf")
    elif kind < 0.50:  # newsletter: plain + HTML alternative
        msg.set_content(_text(rng, 1500))
        msg.add_alternative(_html(rng, 1500), subtype="html")
    elif kind < 0.70:  # HTML only
        msg.set_content(_html(rng, 1800), subtype="html")
    elif kind < 0.80:  # HTML with an inline image
        msg.set_content(_text(rng, 600))
        msg.add_alternative(_html(rng, 600) + '<img src="cid:logo@example.com">', subtype="html")
        msg.get_payload()[1].add_related(rng.randbytes(20 * 1024), "image", "png", cid="<logo@example.com>")
    else:  # a plain reply
        msg.set_content(_text(rng, 700) + "\n\n" + "\n".join("> " + line for line in _text(rng, 500).split("\n")))
    return msg.as_bytes(policy=email.policy.SMTP)


def corpus() -> list[bytes]:
    rng = random.Random(2026)
    return [_message(rng, i) for i in range(COUNT)]


def stdlib_walk(raw: bytes, policy: email.policy.Policy) -> None:
    msg = email.message_from_bytes(raw, policy=policy)
    for part in msg.walk():
        if part.is_multipart():
            continue
        if policy is email.policy.compat32:
            part.get_payload(decode=True)
        else:
            part.get_content()


def best_rate(fn, messages: list[bytes]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for raw in messages:
            fn(raw)
        best = min(best, time.perf_counter() - started)
    return len(messages) / best


# --- Memory for one big message, measured in a fresh process -----------------------

_MEASURE = """
import resource, sys, time, tracemalloc
sys.path.insert(0, {repo!r})
sys.path.append({bench!r})
import email, email.policy
from mailbox import mime
from _benchutil import status_kb
path, how = sys.argv[1], sys.argv[2]
def rss():
    # VmHWM: this process image's peak RSS. ru_maxrss would carry over the parent's peak across exec on Linux.
    return (status_kb("self", "VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
if how == "tracemalloc":
    tracemalloc.start()
before = rss()
with open(path, "rb") as fh:
    if how == "stdlib":
        msg = email.message_from_binary_file(fh, policy=email.policy.default)
        for part in msg.walk():
            if not part.is_multipart():
                part.get_content()
    else:
        parsed = mime.parse_file(fh)
        assert parsed.attachments and len(parsed.attachments[0].data) > 30_000_000
peak = tracemalloc.get_traced_memory()[1] if how == "tracemalloc" else rss() - before
print(peak)
"""


def big_message(path: Path) -> int:
    rng = random.Random(50)
    attachment = rng.randbytes(BIG_MESSAGE_BYTES * 3 // 4 - 4096)
    head = (
        b"From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nSubject: Big file\r\n"
        b"Date: Thu, 26 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n'
        b'--b\r\nContent-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    )
    with open(path, "wb") as fh:
        fh.write(head)
        fh.write(base64.encodebytes(attachment).replace(b"\n", b"\r\n"))
        fh.write(b"--b--\r\n")
    return path.stat().st_size


def measure(path: Path, how: str) -> int:
    script = _MEASURE.format(repo=str(REPO), bench=str(REPO / "bench"))
    out = subprocess.run([sys.executable, "-c", script, str(path), how], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main() -> None:
    messages = corpus()
    total = sum(map(len, messages))
    ours = best_rate(mime.parse, messages)
    default = best_rate(lambda raw: stdlib_walk(raw, email.policy.default), messages)
    compat = best_rate(lambda raw: stdlib_walk(raw, email.policy.compat32), messages)
    mb = total / COUNT / 1e6
    print(f"{COUNT:,} messages, {total / 1e6:.1f} MB ({total / COUNT / 1024:.1f} KB on average), best of {ROUNDS}.")
    print()
    print("| Parser | messages/s | MB/s | vs policy.default walk |")
    print("| --- | ---: | ---: | ---: |")
    for name, rate in (
        ("webpop `mime.parse`", ours),
        ("`email.message_from_bytes(policy=default)` full walk", default),
        ("`email.message_from_bytes(policy=compat32)` full walk", compat),
    ):
        print(f"| {name} | {rate:,.0f} | {rate * mb:,.1f} | {rate / default:.2f}× |")
    print()
    print(f"Target: `mime.parse` ≥ 1.0× the policy.default walk — {'met' if ours >= default else 'NOT met'}.")
    print()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.eml"
        size = big_message(path)
        rows = [
            ("webpop `mime.parse_file`, peak RSS growth", measure(path, "rss")),
            ("webpop `mime.parse_file`, Python allocations (tracemalloc)", measure(path, "tracemalloc")),
            ("`email` policy.default full walk, peak RSS growth", measure(path, "stdlib")),
        ]
    print(f"Peak memory parsing one {size / 1024 / 1024:.0f} MB message (a base64 attachment), fresh process each:")
    print()
    print("| Measure | peak | × message size |")
    print("| --- | ---: | ---: |")
    for name, peak in rows:
        print(f"| {name} | {peak / 1024 / 1024:,.0f} MB | {peak / size:.2f}× |")
    print()
    verdict = "met" if rows[0][1] <= 2.5 * size else "NOT met"
    print(f"Target: ≤ 2.5× the message size — {verdict} (RSS counts the mapped file's pages).")
    print(f"\nMachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}.")


if __name__ == "__main__":
    main()
