"""Parsing, storing and committing retrieved messages, one batch at a time, in the session's thread.

For each batch the session hands over, :class:`Ingest` parses the raw files
(already in the store, verified), stores their attachments, makes the batch's
files durable (an fsync per file and folder) and commits its rows in one transaction. The session
reads the next batch only after that, and DELEs only what a committed batch
holds (docs/design.md, invariant 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Session


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


@dataclass
class Written:
    fetched: int = 0
    bytes: int = 0
    skipped: int = 0


class Ingest:
    """Parse, store and commit each batch as it is submitted; ``finish()`` adds up what was committed."""

    def __init__(self, session: Session):
        self.session = session
        session.written = Written()
        session.stored_keys = {}

    def submit(self, batch: list[Retrieved]) -> None:
        self.session.commit_batch(self.session.prepare_batch(batch))

    def finish(self) -> None:
        written, result = self.session.written, self.session.result
        result.fetched += written.fetched
        result.bytes += written.bytes
        result.skipped += written.skipped
        self.session.written = Written()

    def abandon(self) -> None:
        """On the way out after an error: what was committed counts."""
        self.finish()
