"""Re-encrypt every stored credential under the newest key (``manage.py rotatekeys``).

WEBPOP_ENCRYPTION_KEYS lists Fernet keys newest first; every key decrypts,
only the first encrypts. To retire a key: put a new one first, restart, run
``rotatekeys``, then remove the old key. Rows are read and rewritten in
batches by primary key, each row with a conditional UPDATE (only if it still
holds the token that was read), so a password changed by its owner meanwhile is
never overwritten with the old one. Tokens already under the newest key are
left alone, so a second run (or a run after an interruption) only does what is
left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.db import transaction

from . import crypto

# Every encrypted column, as (app_label.Model, field). A new encrypted field is one more line here.
ENCRYPTED_FIELDS: list[tuple[str, str]] = [
    ("accounts.MailAccount", "password_encrypted"),
    ("accounts.MailAccount", "scram_cache_encrypted"),
    ("oauth.Grant", "refresh_token_encrypted"),
    ("oauth.Grant", "access_token_encrypted"),
    ("oauth.ProviderCredentials", "client_secret_encrypted"),
    ("outgoing.SmtpSettings", "password_encrypted"),
]

Progress = Callable[[str, int, int], None]


@dataclass
class FieldReport:
    name: str
    total: int = 0
    rotated: int = 0
    current: int = 0  # already under the newest key
    changed_meanwhile: int = 0  # rewritten by someone else during the run (with the newest key)
    unreadable: list = field(default_factory=list)  # primary keys no configured key decrypts


def _is_current(token: str, newest: Fernet) -> bool:
    try:
        newest.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def reencrypt(token: str) -> str:
    """``token`` under the newest key; ``crypto.DecryptionError`` when no key reads it."""
    try:
        return crypto.rotate(token)
    except InvalidToken:
        raise crypto.DecryptionError("no configured key decrypts this value") from None


def rotate_field(
    label: str, field_name: str, *, batch_size: int = 500, dry_run: bool = False, progress: Progress | None = None
) -> FieldReport:
    model = apps.get_model(label)
    manager = model._default_manager
    rows = manager.exclude(**{field_name: ""}).exclude(**{f"{field_name}__isnull": True})
    report = FieldReport(f"{label}.{field_name}", total=rows.count())
    crypto.fernet()  # ImproperlyConfigured on a malformed key, before anything is read
    newest = Fernet(settings.WEBPOP_ENCRYPTION_KEYS[0].encode())
    done, last_pk = 0, None
    while True:
        batch = rows.order_by("pk")
        if last_pk is not None:
            batch = batch.filter(pk__gt=last_pk)
        items = list(batch.values_list("pk", field_name)[:batch_size])
        if not items:
            break
        with transaction.atomic():
            for pk, token in items:
                if _is_current(token, newest):
                    report.current += 1
                    continue
                try:
                    fresh = reencrypt(token)
                except crypto.DecryptionError:
                    report.unreadable.append(pk)
                    continue
                if dry_run or manager.filter(pk=pk, **{field_name: token}).update(**{field_name: fresh}) == 1:
                    report.rotated += 1
                else:
                    report.changed_meanwhile += 1
        done += len(items)
        last_pk = items[-1][0]
        if progress is not None:
            progress(report.name, done, report.total)
    return report


def rotate_all(*, batch_size: int = 500, dry_run: bool = False, progress: Progress | None = None) -> list[FieldReport]:
    return [
        rotate_field(label, name, batch_size=batch_size, dry_run=dry_run, progress=progress)
        for label, name in ENCRYPTED_FIELDS
    ]
