"""State changes on users: sessions and deletion."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from mailbox import store
from mailbox.models import Attachment, FetchFailure, Message

from . import audit
from .models import AuditEvent, Session
from .sessions import key_hash

log = logging.getLogger(__name__)


def session_id(session_key: str | None) -> str:
    """The row id of the session with this cookie key (its hash: pages never show the key)."""
    return key_hash(session_key or "")


def sessions_of(user) -> list[Session]:
    return list(Session.objects.filter(user=user).order_by("-last_seen"))


@transaction.atomic
def end_session(user, session_id: str) -> bool:
    """End one of ``user``'s sessions by its id; False when it is not theirs (or gone)."""
    return Session.objects.filter(session_key=session_id, user=user).delete()[0] > 0


@transaction.atomic
def end_other_sessions(user, current_key: str | None) -> int:
    """End every session of ``user`` but the one with cookie key ``current_key``."""
    return Session.objects.filter(user=user).exclude(session_key=key_hash(current_key or "")).delete()[0]


@dataclass
class Deletion:
    username: str
    messages: int = 0
    files: set[str] = field(default_factory=set)


def delete_user(user, *, request=None, actor=None) -> Deletion:
    """Delete the user and everything that is theirs; their stored files go after commit.

    Files are shared by content between users: only those no other row references
    are freed. A file stored in the last minutes stays until a later pass (the same
    content may be in the middle of being stored again): see users.tasks.free_files.
    """
    with transaction.atomic():
        messages = Message.objects.filter(owner=user)
        result = Deletion(username=user.get_username(), messages=messages.count())
        result.files |= set(messages.exclude(raw_path="").values_list("raw_path", flat=True))
        result.files |= set(Attachment.objects.filter(message__owner=user).values_list("stored_path", flat=True))
        result.files |= set(
            FetchFailure.objects.filter(account__owner=user).exclude(raw_path="").values_list("raw_path", flat=True)
        )
        audit.record(request, audit.USER_DELETED, f"user:{result.username}", actor=actor, messages=result.messages)
        # Lockout records are keyed by name: a later user of the same name starts clean.
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username=result.username).delete()
        user.delete()
        paths = sorted(result.files)
        transaction.on_commit(lambda: free_files(paths), robust=True)
    return result


def free_files(paths: list[str]) -> list[str]:
    """Free the files no row references; returns those kept only because they are young."""
    from .tasks import free_files_later

    young = []
    storage = store.mail_storage()
    for relpath in paths:
        try:
            freed = store.free_if_unreferenced(relpath)
        except (OSError, ValueError):
            log.warning("could not free %s", relpath, exc_info=True)
            continue
        if freed is None and storage.exists(relpath) and not _referenced(relpath):
            young.append(relpath)
    if young:
        free_files_later(young)
    return young


def _referenced(relpath: str) -> bool:
    sha = relpath.rsplit("/", 1)[-1].removesuffix(".eml")
    return (
        Message.objects.filter(sha256=sha).exclude(raw_path="").exists()
        or Attachment.objects.filter(sha256=sha).exists()
        or FetchFailure.objects.filter(raw_path=relpath).exists()
    )


UNVERIFIED_DAYS = 7


def cleanup() -> dict:
    """Delete expired sessions, audit events past their retention, and sign-ups never confirmed."""
    now = timezone.now()
    with transaction.atomic():
        sessions = Session.objects.filter(expire_date__lt=now).delete()[0]
        cutoff = now - dt.timedelta(days=settings.WEBPOP_AUDIT_DAYS)
        events = AuditEvent.objects.filter(time__lt=cutoff).delete()[0]
    # Open sign-ups whose link was never opened: free the name (users an admin deactivated stay).
    open_signups = AuditEvent.objects.filter(action=audit.SIGNUP, details__mode="open").values("actor_id")
    stale = get_user_model().objects.filter(
        is_active=False,
        last_login__isnull=True,
        date_joined__lt=now - dt.timedelta(days=UNVERIFIED_DAYS),
        pk__in=open_signups,
    )
    unverified = 0
    for user in stale:
        delete_user(user)
        unverified += 1
    return {"sessions": sessions, "audit_events": events, "unverified_users": unverified}
