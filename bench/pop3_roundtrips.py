"""Round trips of a no-change poll (connect, log in, UIDL, QUIT) against a real Dovecot.

Every connection goes through tests/relay.py, which counts turns (the client
sending, the server answering) and holds each chunk for DELAY seconds in each
direction, as a network with a 2 × DELAY round-trip time would. The poll is
what a sync with nothing new does: log in (the method chosen as a sync chooses
it, or PLAIN), UIDL, QUIT, one connection. With the profile, QUIT goes out
unawaited, as a sync does when the listing matches its digest (nothing to commit).

Columns: a first poll (nothing known about the server), a poll with the server
profile the first one learned, and a check that sends UIDL and QUIT along with
the login (what a poll that only asks "anything new?" can do). Run on a
checkout from before the protocol core (copy this file and tests/relay.py
there), it measures the one poll that code knows, the "before" column.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import mailbox.pop3 as pop3  # noqa: E402
from mailbox.pop3 import Pop3Client  # noqa: E402
from mailbox.pop3_login import PasswordLogin  # noqa: E402
from tests.dovecot import DovecotServer  # noqa: E402
from tests.relay import Relay  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
DELAY = 0.025  # seconds each way: a 50 ms round trip, as to a provider across a country
POLLS = 9
HAS_CORE = hasattr(pop3, "ServerProfile")

ROWS = [
    ("implicit TLS (995), PIPELINING offered, automatic (SCRAM-SHA-256)", "ssl", b"", ""),
    ("implicit TLS (995), PIPELINING offered, PLAIN", "ssl", b"", "PLAIN"),
    ("clear text (110), PIPELINING offered, automatic (SCRAM-SHA-256)", "none", b"", ""),
    ("clear text (110), PIPELINING hidden by the relay, automatic (SCRAM-SHA-256)", "none", b"PIPELINING", ""),
]


class Poller:
    def __init__(self, server: DovecotServer, relay: Relay, security: str, mechanism: str):
        self.server, self.relay, self.security, self.mechanism = server, relay, security, mechanism
        self.profile = None

    def new_client(self, profile=None) -> Pop3Client:
        kwargs = {"profile": profile} if HAS_CORE else {}
        return Pop3Client(
            "localhost", self.relay.port, self.security, ca_file=str(self.server.ca_file), allow_private=True, **kwargs
        )

    def poll(self, *, profile: bool = False, check: bool = False) -> None:
        options = {}
        if HAS_CORE:
            options = {"profile": self.profile if profile else None, "then": ("UIDL", "QUIT") if check else ("UIDL",)}
        login = PasswordLogin(
            self.new_client, USER, PASSWORD, allow_plaintext=self.security == "none", chosen=self.mechanism, **options
        )
        client = login.open()
        client.uidl()
        if profile and not check and hasattr(client, "leave"):
            client.leave()  # the listing matched: nothing to commit, no need to wait for QUIT's answer
        else:
            client.quit()
        if HAS_CORE:
            self.profile = client.profile


def measure(poller: Poller, **options) -> tuple[int, float]:
    relay = poller.relay
    relay.wait_closed()
    relay.reset()
    times = []
    for _ in range(POLLS):
        started = time.perf_counter()
        poller.poll(**options)
        times.append(time.perf_counter() - started)
    relay.wait_closed()
    turns = {c.turns for c in relay.conversations}
    if len(turns) != 1 or relay.connections != POLLS:
        raise RuntimeError(f"polls differ: {sorted(turns)} turns, {relay.connections} connections")
    return turns.pop(), min(times)  # the machine's other work only ever adds to a poll's time


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, DovecotServer(Path(tmp)) as server:
        server.add_user(USER, PASSWORD)
        server.deliver(USER, b"Subject: one\r\n\r\nalready fetched\r\n")
        print(f"Relay delay {DELAY * 1000:.0f} ms each way (a {2 * DELAY * 1000:.0f} ms round trip); turns per poll, ")
        print(f"and in brackets the fastest of {POLLS} polls in milliseconds.\n")
        if HAS_CORE:
            print("| connection, login method | first poll | with the profile | check with the profile |")
            print("| --- | ---: | ---: | ---: |")
        else:
            print("| connection, login method | poll |")
            print("| --- | ---: |")
        for name, security, hide, mechanism in ROWS:
            port = server.pop3s_port if security == "ssl" else server.pop3_port
            with Relay(("127.0.0.1", port), delay=DELAY, hide_capability=hide) as relay:
                poller = Poller(server, relay, security, mechanism)
                poller.poll()  # warm up Dovecot's login processes and the page cache
                cells = [measure(poller)]
                if HAS_CORE:
                    cells += [measure(poller, profile=True), measure(poller, profile=True, check=True)]
            row = " | ".join(f"{turns} ({seconds * 1000:.0f} ms)" for turns, seconds in cells)
            print(f"| {name} | {row} |")


if __name__ == "__main__":
    main()
