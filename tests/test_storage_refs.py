"""The registry of columns that reference stored files lists every such column of every model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.db import models

from mailbox import storage_refs

REPO = Path(__file__).resolve().parent.parent

# Names a column holding a stored file's path, key or content hash would have.
LOOKS_LIKE_A_FILE = re.compile(r"(^|_)(path|relpath|file|files|blob|stored|storage|object|key|sha256|digest|hash)(_|$)")

# Columns whose names look like it but that hold no reference to a stored file, and why.
NOT_STORED_FILES = {
    ("mailbox.Message", "message_key"): "the Message-ID, to find conversations",
    ("users.Session", "session_key"): "the SHA-256 of a session cookie",
    ("users.Invitation", "token_hash"): "the SHA-256 of an invitation link",
    ("webpop.RateCounter", "key"): "a hashed rate-limit key (client network or address) and its window",
    ("contacts.ContactEmail", "address_key"): "an address in lower case, one per contact and user",
    ("contacts.ContactKey", "key"): "a word of a contact's name or address, for suggestions by prefix",
    ("outgoing.OutgoingMessage", "compose_key"): "the random key of a message being written, one draft per key",
    ("mailbox.DamagedFile", "sha256"): "what a damaged file should hash to; the file is the Message's or Attachment's",
    ("accounts.MailAccount", "listing_digest"): "a digest of the server's UIDL listing, to notice that nothing changed",
}


def _project_models() -> list[type[models.Model]]:
    """The models of this project's apps (third-party apps store no mail)."""
    return [
        model
        for config in apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(REPO) and ".venv" not in Path(config.path).parts
        for model in config.get_models()
    ]


def _looks_like_a_stored_file(field: models.Field) -> bool:
    if isinstance(field, (models.FileField, models.FilePathField)):
        return True
    text = (models.CharField, models.TextField, models.JSONField)  # a JSON column may hold a list of paths
    return isinstance(field, text) and bool(LOOKS_LIKE_A_FILE.search(field.name))


def _registered() -> set[tuple[str, str]]:
    found = set(storage_refs.NOT_REFERENCES) | set(storage_refs.OWNED_FILES)
    for column in storage_refs.COLUMNS:
        found.add((column.model_label, column.path))
        if column.sha256:
            found.add((column.model_label, column.sha256))
    return found


def test_every_column_that_looks_like_a_stored_file_is_in_the_registry():
    suspects = {
        (model._meta.label, field.name)
        for model in _project_models()
        for field in model._meta.concrete_fields
        if _looks_like_a_stored_file(field)
    }
    # The walk sees the columns it must: it cannot pass by finding nothing.
    assert {("mailbox.Message", "raw_path"), ("mailbox.Attachment", "stored_path")} <= suspects
    unexplained = suspects - _registered() - set(NOT_STORED_FILES)
    assert not unexplained, (
        f"{sorted(unexplained)} look like stored files: add them to mailbox/storage_refs.py COLUMNS "
        "(or, if they name no stored file, to NOT_STORED_FILES here with the reason)"
    )


def test_the_registry_names_real_columns_and_every_deletion_scope_resolves():
    for label, name in _registered() | set(NOT_STORED_FILES):
        apps.get_model(label)._meta.get_field(name)
    for column in storage_refs.COLUMNS:
        for scope, lookup in column.scopes:
            assert scope in {"owner", "account", "message", "failure"}
            str(column.rows().filter(**{f"{lookup}__in": [1]}).query)  # a lookup that does not resolve raises


@pytest.mark.django_db
def test_files_of_a_scope_come_from_every_registered_column(alice):
    from django.utils import timezone

    from mailbox.models import FetchFailure
    from tests.factories import build_message, make_account, store_message

    account = make_account(alice)
    message = store_message(account, build_message("x", attachments=[("a.txt", "text/plain", b"a")]), "u1")
    failure = FetchFailure.objects.create(
        account=account, uidl="bad", raw_path=f"raw/00/{'0' * 64}.eml", quarantined_at=timezone.now()
    )
    every = {message.raw_path, message.attachments.get().stored_path, failure.raw_path}
    assert storage_refs.files_of("owner", [alice.pk]) == every
    assert storage_refs.files_of("account", [account.pk]) == every
    assert storage_refs.files_of("message", [message.pk]) == every - {failure.raw_path}
    assert storage_refs.files_of("failure", [failure.pk]) == {failure.raw_path}
