"""The audit log: logins, logouts, security changes and admin actions.

Other code calls :func:`record`. Passwords and tokens never go into ``details``.
"""

from __future__ import annotations

import contextvars
import logging

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from webpop.lib.netaddr import client_ip

from .models import AuditEvent

log = logging.getLogger(__name__)

# The request being served, for records written where no request is passed (admin LogEntry rows).
current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)

LOGIN = "login"
LOGIN_FAILED = "login.failed"
LOGIN_2FA_FAILED = "login.2fa_failed"
LOGOUT = "logout"
PASSWORD_CHANGED = "password.changed"  # noqa: S105 (an event name)
PASSWORD_RESET = "password.reset"  # noqa: S105
TWOFACTOR_ENABLED = "2fa.enabled"
TWOFACTOR_DISABLED = "2fa.disabled"
BACKUP_CODES = "2fa.backup_codes"
SESSION_ENDED = "session.ended"
SIGNUP = "signup"
EMAIL_VERIFIED = "signup.verified"
INVITATION_CREATED = "invitation.created"
INVITATION_REVOKED = "invitation.revoked"
USER_DELETED = "user.deleted"


def record(request: HttpRequest | None, action: str, target: str = "", *, actor=None, **details) -> AuditEvent:
    """Write one audit event. ``actor`` defaults to the request's signed-in user."""
    if request is None:
        request = current_request.get()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor = user
    event = AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        target=str(target)[:255],
        ip=client_ip(request) if request is not None else None,
        details=details,
    )
    log.info("audit %s actor=%s target=%s", action, event.actor_name or "-", event.target)
    return event


LABELS = {
    LOGIN: _("Signed in"),
    LOGIN_FAILED: _("Wrong password"),
    LOGIN_2FA_FAILED: _("Wrong two-factor code"),
    LOGOUT: _("Signed out"),
    PASSWORD_CHANGED: _("Password changed"),
    PASSWORD_RESET: _("Password reset by e-mail"),
    TWOFACTOR_ENABLED: _("Two-factor sign-in turned on"),
    TWOFACTOR_DISABLED: _("Two-factor sign-in turned off"),
    BACKUP_CODES: _("New backup codes"),
    SESSION_ENDED: _("Other sessions signed out"),
    SIGNUP: _("Account created"),
    EMAIL_VERIFIED: _("E-mail address confirmed"),
}


def recent_for(user, limit: int = 10) -> list[tuple[AuditEvent, str]]:
    """The latest events about ``user``'s account (failed sign-ins with their name too), with labels.

    Events are found by user name, which a deleted user leaves free: only those since ``user`` joined are
    theirs (the earlier ones, with their addresses, are a former holder's of the name).
    """
    events = AuditEvent.objects.filter(
        target=f"user:{user.get_username()}", action__in=list(LABELS), time__gte=user.date_joined
    )[:limit]
    return [(event, str(LABELS[event.action])) for event in events]


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    record(request, LOGIN, f"user:{user.get_username()}", actor=user)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        record(request, LOGOUT, f"user:{user.get_username()}", actor=user)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django already masks secrets in ``credentials``; only the user name is kept.
    username = str(credentials.get("username", ""))[:150]
    record(request, LOGIN_FAILED, f"user:{username}", actor=None)


def last_log_entry_id() -> int:
    return LogEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def record_admin_actions(request: HttpRequest, *, after: int) -> int:
    """Copy the admin's own log entries written since ``after`` into the audit log.

    Read back after the request rather than on post_save: the admin writes the entries
    of a bulk action with bulk_create, which sends no signals.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    entries = LogEntry.objects.filter(pk__gt=after, user_id=user.pk).select_related("content_type").order_by("pk")
    count = 0
    for entry in entries:
        verb = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}.get(entry.action_flag, "other")
        model = entry.content_type.model if entry.content_type_id else ""
        record(
            request,
            f"admin.{verb}",
            f"{model}:{entry.object_repr}"[:255],
            actor=user,
            change=entry.get_change_message(),
            object_id=entry.object_id,
        )
        count += 1
    return count
