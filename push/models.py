"""Notifications of new mail: what each user wants shown, and the browsers subscribed to Web Push."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Content(models.TextChoices):
    COUNT = "count", _("Only how many unread messages there are")
    SENDER = "sender", _("The sender and subject of the newest message")


class PushSettings(models.Model):
    """One user's choice of what a notification shows, and how far new mail was noticed."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    content = models.CharField(max_length=10, choices=Content.choices, default=Content.COUNT)
    # The newest Inbox message a notification was decided for: unread Inbox mail above it is new.
    notified_up_to = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"notification settings of user {self.user_id}"


class PushSubscription(models.Model):
    """One browser's Web Push subscription, made while its user was signed in there.

    It belongs to that browser session: signing out, ending the session from another device
    or its expiry deletes it, so a shared or lost browser stops showing the user's mail.
    A pending notification is on the row (``due_at``), so beat's sweep finds it again when
    its task is lost.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey("users.Session", on_delete=models.CASCADE, related_name="+")
    endpoint = models.CharField(max_length=2048)  # the push service's URL for this browser: a secret capability
    p256dh = models.CharField(max_length=100)
    auth = models.CharField(max_length=50)
    vapid_public = models.CharField(max_length=100, help_text="The server's public key the browser subscribed with.")
    language = models.CharField(max_length=10, help_text="Of the pages the browser subscribed from.")
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failed tries since the last delivery.")
    last_error = models.CharField(max_length=300, blank=True)
    # The pending notification: due from due_at (None: nothing to send), its tries so far, the worker's
    # claim while it sends, and when a task for it was last published.
    due_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "endpoint"], name="push_owner_endpoint_uniq")]
        indexes = [models.Index(fields=["due_at"], condition=models.Q(due_at__isnull=False), name="push_due_idx")]

    def __str__(self) -> str:
        # Not the endpoint: this names the row wherever Django does.
        return f"push subscription {self.pk} of user {self.owner_id}"
