from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Session(AbstractBaseSession):
    """A database session that also knows its user, browser and address (the sessions page).

    ``session_key`` holds the SHA-256 of the cookie's key (users.sessions), never the key.
    The user link cascades: deleting a user signs out all of their sessions.
    """

    session_key = models.CharField(_("session key hash"), max_length=64, primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="web_sessions"
    )
    user_agent = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("session")
        indexes = [models.Index(fields=["user", "last_seen"], name="users_session_user_idx")]

    def __str__(self) -> str:
        return f"{self.user or '-'} from {self.ip or '?'} since {self.created_at:%Y-%m-%d %H:%M}"

    @classmethod
    def get_session_store_class(cls):
        # The configured engine (users.sessions), found as Django's session middleware finds it: that
        # module imports this one.
        return import_module(settings.SESSION_ENGINE).SessionStore


class Invitation(models.Model):
    """A single-use, expiring sign-up link created by an operator. Only the token's SHA-256 is stored."""

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    email = models.EmailField(blank=True, help_text=_("Optional: the address the link was sent to."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.email or f"invitation {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()

    @property
    def status(self) -> str:
        if self.used_at:
            return str(_("used"))
        if self.expires_at <= timezone.now():
            return str(_("expired"))
        return str(_("open"))


class AuditEvent(models.Model):
    """Who did what, when, from where. Written by users.audit.record; read-only in the admin.

    ``actor_name`` keeps the user name when the actor is later deleted: the record outlives them.
    """

    time = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target}"
