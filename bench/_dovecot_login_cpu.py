"""What one no-change poll costs the POP3 server and the relay in CPU: Dovecot's settings, one at a time.

    python bench/_dovecot_login_cpu.py [VARIANT ...]      # default: baseline; "list" names the variants

For each variant: a fresh Dovecot (tests/dovecot.py) with bench/poll_many.py's ``DOVECOT_TUNING`` and the
variant's lines after it, BENCH_LOGIN_USERS users (default 300) stored as poll_many stores them (SCRAM keys,
0-2 small messages each), and tests/relay.py in front of it holding each chunk BENCH_POLL_DELAY seconds
each way (default 0.05). A client process polls every user as webpop's check does (mailbox/sync/check.py:
webpop's asyncio driver, implicit TLS with the certificate verified, the server profile from an earlier
session so no CAPA, AUTH PLAIN with its initial response, UIDL and QUIT pipelined behind it),
BENCH_LOGIN_CONCURRENCY at once (default 50). Two unmeasured passes (the first contact, which asks CAPA and
lets Dovecot build its indexes; one more to warm up), then BENCH_LOGIN_REPS measured passes (default 5).

BENCH_TLS_RESUME=0 makes the client do a full TLS handshake every time (webpop resumes the server's
last session: its POP3 contexts are webpop.lib.tls.ResumingContext). Dovecot's login processes each have
their own session-ticket key: a poll resumes only when it reaches the process that issued its ticket.

WEBPOP_TEST_CERT_KEY=rsa gives the server an RSA-2048 certificate (the tests' default is P-256).

BENCH_POLL_AUTH picks another login method (SCRAM-SHA-256: webpop's own choice when a server offers it),
BENCH_LOGIN_STORE another way to store the passwords ("ssha256", "plain").

Printed per variant: CPU ms per poll (user + system from /proc) of all Dovecot's processes and of its auth,
pop3-login and pop3 processes, of the relay's thread, and of the client process (webpop's driver;
informative); the median over the passes, and the range. A process that exits hands its CPU time to the
master's (in "rest"): a pop3 process ending after its service_count makes one pass's pop3 figure negative.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

USERS = int(os.environ.get("BENCH_LOGIN_USERS", "300"))
CONCURRENCY = int(os.environ.get("BENCH_LOGIN_CONCURRENCY", "50"))
REPS = int(os.environ.get("BENCH_LOGIN_REPS", "5"))
DELAY = float(os.environ.get("BENCH_POLL_DELAY", "0.05"))
MECHANISM = os.environ.get("BENCH_POLL_AUTH", "PLAIN").upper() or "PLAIN"
# How the users' passwords are stored: "scram" (SCRAM-SHA-256 keys, as poll_many stores them), "ssha256"
# (a salted SHA-256), "plain".
STORE = os.environ.get("BENCH_LOGIN_STORE", "scram")
RESUME = os.environ.get("BENCH_TLS_RESUME", "1") != "0"

# Lines appended after poll_many's DOVECOT_TUNING (later settings win; service blocks merge).
VARIANTS: dict[str, str] = {
    "baseline": "",
    "auth_cache": "auth_cache_size = 10M\nauth_cache_ttl = 1 hour\nauth_cache_negative_ttl = 0\n",
    "auth_verbose_no": "auth_verbose = no\n",
    "no_ticket": "ssl_options = no_ticket\n",
    "very_dirty": "maildir_very_dirty_syncs = yes\n",
    "no_flag_updates": "protocol pop3 {\n  pop3_no_flag_updates = yes\n}\n",
    "no_stats_writer": "stats_writer_socket_path =\n",
    "index_memory": "mail_location = maildir:~/Maildir:INDEX=MEMORY\n",
    "pop3_one_per_process": "service pop3 {\n  client_limit = 1\n  process_min_avail = 4\n}\n",
    "login_one_process": "service pop3-login {\n  process_min_avail = 1\n}\n",
}


# --- The client: a process of its own, as webpop's workers are -------------------------------------------


async def _poll(user: str, password: str, port: int, ca_file: str, profile, scram_cache, then: tuple[str, ...]):
    from mailbox.pop3.aio import AsyncPop3Client
    from mailbox.pop3_login import AsyncPasswordLogin
    from webpop.lib.tls import make_tls_context

    context = None if RESUME else make_tls_context(ca_file)  # the driver's own resumes

    def new_client(profile):
        return AsyncPop3Client(
            "localhost", port, "ssl", timeout=30.0, session_timeout=60.0, ca_file=ca_file, allow_private=True,
            profile=profile, tls_context=context,
        )  # fmt: skip

    login = AsyncPasswordLogin(
        new_client, user, password, allow_plaintext=False, chosen=MECHANISM, profile=profile,
        scram_cache=scram_cache, then=then,
    )  # fmt: skip
    client = await login.open()
    try:
        await client.uidl()
        await client.quit()
    finally:
        client.close()
    return client.profile, client.tls_resumed


async def _pass(port: int, ca_file: str, profiles: dict, scram_caches: dict) -> tuple[int, int]:
    from mailbox.pop3 import ScramCache

    slots = asyncio.Semaphore(CONCURRENCY)
    failures = resumed = 0

    async def one(i: int) -> None:
        nonlocal failures, resumed
        async with slots:
            try:
                profile = profiles.get(i)
                then = ("UIDL", "QUIT") if profile is not None else ()
                scram_cache = scram_caches.setdefault(i, ScramCache())
                profiles[i], was_resumed = await _poll(
                    f"p{i:04d}", f"pw-{i:04d}", port, ca_file, profile, scram_cache, then
                )
                resumed += was_resumed
            except Exception as exc:  # counted and shown; a pass with failures is not a measurement
                failures += 1
                if failures <= 3:
                    print(f"poll {i} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    await asyncio.gather(*(one(i) for i in range(USERS)))
    return failures, resumed


def client_main(port: int, ca_file: str) -> int:
    """Reads "run" lines from stdin, answers each with the pass's failures and resumed TLS sessions."""
    profiles: dict = {}
    scram_caches: dict = {}  # webpop keeps the salted password of a SCRAM login per account
    for line in sys.stdin:
        if line.strip() != "run":
            break
        failures, resumed = asyncio.run(_pass(port, ca_file, profiles, scram_caches))
        print(failures, resumed, flush=True)
    return 0


# --- The measurement -------------------------------------------------------------------------------------


def small_message(user: int, n: int) -> bytes:
    from poll_many import small_message as message

    return message(user, n)


def dovecot_cpu(sid: int) -> dict[str, float]:
    from poll_many import cpu_seconds, session_members

    by_name: dict[str, float] = defaultdict(float)
    for pid in session_members(sid):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        by_name[name] += cpu_seconds(pid)
    return by_name


def measure(name: str, extra: str, tmp: Path) -> list[dict[str, float]]:
    from poll_many import DOVECOT_TUNING, cpu_seconds, session_members

    from tests.dovecot import DovecotServer
    from tests.relay import Relay

    server = DovecotServer(tmp / name, extra_config=DOVECOT_TUNING + extra)
    relay = client = None
    try:
        server.start()
        for i in range(USERS):
            server.add_user(f"p{i:04d}", f"pw-{i:04d}", scram=STORE == "scram", hashed=STORE == "ssha256")
            for n in range(i % 3):
                server.deliver(f"p{i:04d}", small_message(i, n))
        relay = Relay(("127.0.0.1", server.pop3s_port), delay=DELAY).start()
        relay_thread = relay._thread.native_id
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", str(relay.port), str(server.ca_file)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

        def run_pass() -> float:
            client.stdin.write("run\n")
            client.stdin.flush()
            failures, resumed = map(int, client.stdout.readline().split())
            if failures:
                raise SystemExit(f"{name}: {failures} of {USERS} polls failed; Dovecot's log: {server.log_file}")
            relay.wait_closed()
            return resumed * 100 / USERS

        run_pass()  # first contact: CAPA, indexes built
        run_pass()  # warm
        samples = []
        for _ in range(REPS):
            time.sleep(0.3)  # what the last pass left (logging, process bookkeeping) is done
            before = (dovecot_cpu(server.pid), cpu_seconds(relay_thread), cpu_seconds(client.pid))
            resumed = run_pass()
            time.sleep(0.3)
            after = (dovecot_cpu(server.pid), cpu_seconds(relay_thread), cpu_seconds(client.pid))
            sample = {k: after[0].get(k, 0.0) - before[0].get(k, 0.0) for k in after[0] | before[0]}
            sample = {f"dovecot:{k}": v * 1000 / USERS for k, v in sample.items()}
            sample["dovecot"] = sum(sample.values())
            sample["relay"] = (after[1] - before[1]) * 1000 / USERS
            sample["client"] = (after[2] - before[2]) * 1000 / USERS
            sample["resumed"] = resumed
            samples.append(sample)
        processes = defaultdict(int)
        for pid in session_members(server.pid):
            try:
                processes[Path(f"/proc/{pid}/comm").read_text().strip()] += 1
            except OSError:
                continue
        samples[0]["processes"] = dict(processes)  # type: ignore[assignment]
        return samples
    finally:
        if client is not None:
            client.stdin.close()
            client.wait()
        if relay is not None:
            relay.stop()
        server.close()


def _cell(samples: list[dict[str, float]], key: str) -> str:
    values = [sample.get(key, 0.0) for sample in samples]
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main(names: list[str]) -> int:
    if names == ["list"]:
        for name, extra in VARIANTS.items():
            print(f"{name}:\n{extra.rstrip()}\n")
        return 0
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    tmp = Path(tempfile.mkdtemp(prefix="webpop-bench-login-"))
    print(
        f"{USERS} users, {CONCURRENCY} polls at once, {REPS} measured passes, relay delay {DELAY * 1000:.0f} ms "
        f"each way, AUTH {MECHANISM}, passwords stored as {STORE}, TLS sessions "
        f"{'resumed' if RESUME else 'never resumed'}, {os.environ.get('WEBPOP_TEST_CERT_KEY') or 'P-256'} "
        f"certificate; load average at start "
        f"{os.getloadavg()[0]:.1f}. CPU ms per poll, median (min–max) over the passes.\n",
        flush=True,
    )
    head = "| variant | Dovecot | auth | pop3-login | pop3 | rest of Dovecot | relay | client | resumed % | processes"
    head += " | load |"
    print(head)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    try:
        for name in names or ["baseline"]:
            samples = measure(name, VARIANTS[name], tmp)
            main_parts = ("dovecot:auth", "dovecot:pop3-login", "dovecot:pop3")
            for sample in samples:
                sample["rest"] = sample["dovecot"] - sum(sample.get(k, 0.0) for k in main_parts)
            processes = samples[0]["processes"]
            print(
                f"| {name} | {_cell(samples, 'dovecot')} | "
                + " | ".join(_cell(samples, k) for k in (*main_parts, "rest", "relay", "client"))
                + f" | {statistics.median(s['resumed'] for s in samples):.0f}"
                + f" | pop3 {processes.get('pop3', 0)}, pop3-login {processes.get('pop3-login', 0)} | "
                f"{os.getloadavg()[0]:.1f} |",
                flush=True,
            )
    finally:
        if os.environ.get("BENCH_LOGIN_KEEP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        sys.exit(client_main(int(sys.argv[2]), sys.argv[3]))
    sys.exit(main(sys.argv[1:]))
