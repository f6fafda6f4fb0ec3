"""What a session hands from fetching to storing: a retrieved message, a parsed batch.

Each batch is parsed, stored and committed on the session's own thread, in
order, before the next is fetched further: a writer thread overlapping the
commit with the next batch's download saved nothing over a fast link and
2 % over a household one (bench/RESULTS.md, ingest set 10).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Retrieved:
    """A retrieved message, verified and in the store (not yet durable, no row yet)."""

    uidl: str
    relpath: str
    size: int
    sha256: str


@dataclass
class PreparedBatch:
    fresh: list
    attachments: list
    aliases: list
    later_copies: dict
    count: int
    files: set  # written for this batch, made durable before its rows are committed
