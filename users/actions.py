"""State changes on users: sessions and deletion."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts.models import MailAccount

from . import audit, signals
from .models import AuditEvent, Session
from .sessions import key_hash


def session_id(session_key: str | None) -> str:
    """The row id of the session with this cookie key (its hash: pages never show the key)."""
    return key_hash(session_key or "")


def sessions_of(user) -> list[Session]:
    return list(Session.objects.filter(user=user).order_by("-last_seen"))


@transaction.atomic
def end_session(user, session_id: str) -> bool:
    """End one of ``user``'s sessions by its id; False when it is not theirs (or gone)."""
    return _sessions_deleted(Session.objects.filter(session_key=session_id, user=user)) > 0


@transaction.atomic
def end_other_sessions(user, current_key: str | None) -> int:
    """End every session of ``user`` but the one with cookie key ``current_key``."""
    return _sessions_deleted(Session.objects.filter(user=user).exclude(session_key=key_hash(current_key or "")))


def _sessions_deleted(sessions) -> int:
    """Delete ``sessions``; how many sessions that was (not counting rows that go with them: push subscriptions)."""
    return sessions.delete()[1].get(Session._meta.label, 0)


@dataclass
class Deletion:
    username: str
    messages: int = 0


def delete_user(user, *, request=None, actor=None) -> Deletion:
    """Delete the user and everything that is theirs, and release their stored files.

    Files are shared by content between users: only those no other row references
    are freed. The release (``signals.user_deleting``, answered by the mailbox) is a row
    per file written in this transaction, freed by ``mailbox.storage_gc.free_released``
    after commit and by beat's sweep if that wake-up is lost; a file stored in the last
    minutes waits out its grace period (the same content may be in the middle of being
    stored again).
    """
    with transaction.atomic():
        # Every message belongs to one of its owner's accounts.
        messages = MailAccount.objects.filter(owner=user).aggregate(n=Count("messages"))["n"]
        result = Deletion(username=user.get_username(), messages=messages)
        signals.user_deleting.send(sender=type(user), user=user)
        audit.record(request, audit.USER_DELETED, f"user:{result.username}", actor=actor, messages=result.messages)
        # Lockout records are keyed by name: a later user of the same name starts clean.
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username=result.username).delete()
        user.delete()
    return result


UNVERIFIED_DAYS = 7


def cleanup() -> dict:
    """Delete expired sessions, audit events past their retention, and sign-ups never confirmed."""
    now = timezone.now()
    with transaction.atomic():
        sessions = _sessions_deleted(Session.objects.filter(expire_date__lt=now))
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
