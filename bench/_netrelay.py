"""tests/relay.py's Relay with a bandwidth limit: a link of ``rate`` bytes/s each way plus ``delay`` of propagation.

Each chunk leaves when the link has serialised it (after the chunks before it)
and ``delay`` has passed: a 100 Mbit/s, 100 ms round-trip network is
``ShapedRelay(target, delay=0.05, rate=100e6 / 8)``. Chunks are at most 64 KB,
so the shaping is smooth enough for a transfer of many megabytes.
"""

from __future__ import annotations

from tests.relay import Relay


class ShapedRelay(Relay):
    def __init__(self, target: tuple[str, int], *, delay: float, rate: float):
        super().__init__(target, delay=delay)
        self.link_rate = rate  # not Relay's ``rate``, which paces each chunk after it was sent

    def _leaves(self, lane, now: float, size: int) -> float:
        lane.link_free = max(now, lane.link_free) + size / self.link_rate
        return lane.link_free + self.delay
