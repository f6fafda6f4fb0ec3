"""POP3 retrieval speed: stdlib poplib vs webpop's client, lock-step and pipelined.

One real Dovecot (implicit TLS, certificate verified), 2,000 mixed messages
(~55 KB average, 5% with a 300 KB attachment). Each variant retrieves every
message and computes its SHA-256 (what ingest needs); the best of three runs
counts. Prints a Markdown table with ratios against poplib.
"""

from __future__ import annotations

import hashlib
import poplib
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _corpus import build_messages  # noqa: E402

from mailbox.pop3 import Pop3Client  # noqa: E402
from tests.dovecot import DovecotServer  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
RUNS = 3


class Sink:
    """Discards what is written (the disk is not what is measured here)."""

    def write(self, data) -> int:
        return len(data)


def run_poplib(server: DovecotServer, count: int) -> int:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    pop = poplib.POP3_SSL("localhost", server.pop3s_port, context=context)
    pop._max_line = 1 << 20
    poplib._MAXLINE = 1 << 20
    pop.user(USER)
    pop.pass_(PASSWORD)
    total = 0
    for number in range(1, count + 1):
        _, lines, _ = pop.retr(number)
        data = b"\r\n".join(lines) + b"\r\n"
        hashlib.sha256(data).hexdigest()
        total += len(data)
    pop.quit()
    return total


def run_ours(server: DovecotServer, count: int, *, pipelined: bool) -> int:
    sink = Sink()
    with Pop3Client(
        "localhost", server.pop3s_port, "ssl", ca_file=str(server.ca_file), allow_private=True,
        window=50 if pipelined else 1,
    ) as pop:  # fmt: skip
        pop.login(USER, PASSWORD, mechanism="USER")
        total = 0
        for _number, result in pop.retr_many(range(1, count + 1), lambda _n: sink):
            total += result.size
        pop.quit()
    return total


def measure(fn, *args, **kwargs) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(RUNS):
        start = time.perf_counter()
        size = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), size


def main() -> None:
    messages = build_messages()
    count = len(messages)
    with tempfile.TemporaryDirectory() as tmp, DovecotServer(Path(tmp)) as server:
        server.add_user(USER, PASSWORD)
        for raw in messages:
            server.deliver(USER, raw)
        run_ours(server, count, pipelined=True)  # warm Dovecot's index and the page cache
        results = {
            "a. stdlib poplib, lock-step": measure(run_poplib, server, count),
            "b. webpop client, lock-step": measure(run_ours, server, count, pipelined=False),
            "c. webpop client, pipelined (window 50)": measure(run_ours, server, count, pipelined=True),
        }
    base = results["a. stdlib poplib, lock-step"][0]
    mean_kb = statistics.mean(len(m) for m in messages) / 1000
    print(f"{count} messages, {mean_kb:.1f} KB average, loopback TLS to Dovecot, best of {RUNS} runs.\n")
    print("| variant | seconds | messages/s | MB/s | speed vs poplib |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (seconds, size) in results.items():
        print(
            f"| {name} | {seconds:.2f} | {count / seconds:,.0f} | {size / seconds / 1e6:.1f} | {base / seconds:.2f}× |"
        )


if __name__ == "__main__":
    main()
