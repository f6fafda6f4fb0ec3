"""After a restore: do the database's rows and the mail store's files agree?

``manage.py checkrestore`` runs :func:`check`. The database and the mail store are backed up
separately (docs/deployment.md, "Backup and restore"), so a restore can bring back rows whose files
the store lacks, and files no row knows:

- every file a row references (the columns of :mod:`mailbox.storage_refs`) must exist; a missing
  one is marked damaged, as ``verifystore`` does, so pages say so instead of failing;
- a file in the store's content folders (``raw/``, ``att/``) that no row references is an orphan:
  listed, never deleted here. After a restore these are the files stored after the database's
  backup was taken; with the policy "delete after fetch" a raw one may be the only copy left of a
  message fetched since, so :func:`save` copies them out as ``.eml`` files the owners can import.

Only whether files exist is checked (one lookup each); ``verifystore`` hashes their bytes.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import damage, storage_gc, storage_refs, store, verify


@dataclass(frozen=True)
class Orphan:
    relpath: str
    size: int
    modified: dt.datetime | None


@dataclass
class Report:
    referenced: int = 0  # files rows reference, each once
    missing: list[verify.Damaged] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)

    @property
    def orphan_bytes(self) -> int:
        return sum(orphan.size for orphan in self.orphans)


def check(*, batch: int = verify.BATCH, progress: Callable[[Report], None] | None = None) -> Report:
    report = Report()
    storage = store.mail_storage()
    local = store.local_root(storage)
    for files in verify.stored_files(batch):
        marks = damage.marked((path for path, _sha in files), fresh=True)
        for relpath, sha in files:
            report.referenced += 1
            there = (local / relpath).is_file() if local is not None else storage.exists(relpath)
            if not there:
                report.missing.append(verify.Damaged(relpath, sha, damage.MISSING))
                if marks.get(relpath) != damage.MISSING:
                    damage.mark(relpath, sha, damage.MISSING)
        if progress is not None:
            progress(report)
    report.orphans = orphans(batch=batch)
    return report


def orphans(*, batch: int = verify.BATCH) -> list[Orphan]:
    """Files in the store's content folders that no row references, a top-level shard at a time."""
    storage = store.mail_storage()
    found: list[Orphan] = []
    for top in ("raw", "att"):
        shards, _files = storage_gc.list_folder(storage, top)
        for shard in shards:
            candidates = [(path, store.sha_of(path)) for path in storage_gc.files_under(storage, f"{top}/{shard}")]
            candidates = [(path, sha) for path, sha in candidates if sha]
            referenced = storage_refs.referenced_shas(sha for _path, sha in candidates)
            for relpath, sha in candidates:
                if sha not in referenced:
                    found.append(Orphan(relpath, _size(storage, relpath), _modified(storage, relpath)))
    return found


def _size(storage, relpath: str) -> int:
    try:
        return storage.size(relpath)
    except OSError:
        return 0


def _modified(storage, relpath: str) -> dt.datetime | None:
    try:
        return storage_gc.modified_at(storage, relpath).astimezone(dt.UTC)
    except (OSError, NotImplementedError):
        return None


def save(found: list[Orphan], folder: Path) -> list[tuple[Orphan, Path]]:
    """Copy the orphaned messages (``raw/``; attachments are in them) to ``folder`` as ``<sha256>.eml``."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for orphan in found:
        if not orphan.relpath.startswith("raw/"):
            continue
        target = folder / f"{store.sha_of(orphan.relpath)}.eml"
        with store.open_file(orphan.relpath) as fh, open(target, "wb") as out:
            shutil.copyfileobj(fh, out, 1024 * 1024)
        saved.append((orphan, target))
    return saved
