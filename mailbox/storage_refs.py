"""Every column that references a file in the mail store: the one list that freeing consults.

A stored file may be freed only when no row of any column listed here refers to
its content. The collector (``storage_gc.collect_garbage``), the sweep of
released files and every deletion that releases files (a user, an account,
emptied trash) ask this module, so a column added to the list is respected
everywhere at once. ``tests/test_storage_refs.py`` walks every model and fails
on a column that looks like a stored file's name but is not listed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.db import models

from . import store

_CHUNK = 500  # stays under SQLite's parameter limit, names_of() included


@dataclass(frozen=True)
class FileColumn:
    """A column holding the store path of a file its row needs ("" for none).

    ``sha256``: a column of the same row with that file's content hash, indexed:
    the lookup by content uses it instead of the path. ``scopes``: how to reach the
    row from a user (``owner``), a mail account (``account``), a message (``message``)
    or a fetch failure (``failure``), for deletions that release the files of what they remove.
    """

    model_label: str
    path: str
    sha256: str | None
    scopes: tuple[tuple[str, str], ...]

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)

    def lookup(self, scope: str) -> str | None:
        return dict(self.scopes).get(scope)

    def rows(self) -> models.QuerySet:
        """The rows that hold a file (tombstones keep their hash but no longer a path)."""
        return self.model._default_manager.exclude(**{self.path: ""})


COLUMNS: tuple[FileColumn, ...] = (
    FileColumn(
        "mailbox.Message", "raw_path", "sha256", (("owner", "owner"), ("account", "account"), ("message", "pk"))
    ),
    FileColumn(
        "mailbox.Attachment",
        "stored_path",
        "sha256",
        (("owner", "message__owner"), ("account", "message__account"), ("message", "message")),
    ),
    # The raw bytes of a quarantined message, kept for the owner to download.
    FileColumn(
        "mailbox.FetchFailure",
        "raw_path",
        None,
        (("owner", "account__owner"), ("account", "account"), ("failure", "pk")),
    ),
)

# Columns that name stored files without keeping them: (model label, field name).
NOT_REFERENCES = {
    ("mailbox.FileToFree", "relpath"): "a file released for freeing, freed once nothing above references it",
    ("mailbox.DamagedFile", "relpath"): "a mark on a file found missing or corrupt; the rows above keep it",
}

# Files that belong to one row instead of being shared by content, each with who frees them.
# They live outside the content-addressed folders (raw/, att/) the collector walks.
OWNED_FILES = {
    ("mailbox.ImportJob", "files"): (
        "uploads under imports/, freed by mailbox.importer when their job ends or its owner or account is "
        "deleted, and by its sweep (importer.sweep_uploads) once no unfinished job names them"
    ),
}


def referenced_shas(shas: Iterable[str]) -> set[str]:
    """Which of these contents some row still references (by content, whatever folder or layout)."""
    shas = sorted(set(shas))
    found: set[str] = set()
    for start in range(0, len(shas), _CHUNK // 4):
        chunk = shas[start : start + _CHUNK // 4]
        for column in COLUMNS:
            rows = column.rows()
            if column.sha256:
                found.update(rows.filter(**{f"{column.sha256}__in": chunk}).values_list(column.sha256, flat=True))
            else:
                names = [name for sha in chunk for name in store.names_of(sha)]
                paths = rows.filter(**{f"{column.path}__in": names}).values_list(column.path, flat=True)
                found.update(store.sha_of(path) for path in paths)
    found.discard(None)
    return found


def is_referenced(relpath: str) -> bool:
    """True unless ``relpath`` is a mail store file no row references (a foreign path counts as referenced)."""
    sha = store.sha_of(relpath)
    return sha is None or bool(referenced_shas([sha]))


def files_of(scope: str, values: Iterable) -> set[str]:
    """The stored files referenced by the rows of these owners, accounts or messages (``scope``)."""
    values = list(values)
    paths: set[str] = set()
    for column in COLUMNS:
        lookup = column.lookup(scope)
        if lookup is None:
            continue
        for start in range(0, len(values), _CHUNK):
            rows = column.rows().filter(**{f"{lookup}__in": values[start : start + _CHUNK]})
            paths.update(rows.values_list(column.path, flat=True))
    return paths
