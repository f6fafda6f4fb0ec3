"""Spam filtering's rows: work still to do (scans, training), what users decided, and how it is going."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from mailbox.models import Message


class PendingScan(models.Model):
    """A stored message spam filtering has not judged yet (spam/scanning.py).

    Written in the transaction that stores the message (mailbox/store.py), so a lost wake-up or
    worker only delays the scan: the beat sweep takes every row whose time has come (invariant 8).
    Meanwhile the message is where ingest put it, normally the Inbox.
    """

    message = models.OneToOneField(Message, on_delete=models.CASCADE, primary_key=True, related_name="+")
    # Not before this time: when it was stored, a sweep's claim (its lease), or the next try after a failure.
    not_before = models.DateTimeField(default=timezone.now)
    claim = models.CharField(max_length=32, blank=True, help_text="The sweep working on it, while it does.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Failed scans of this message.")
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["not_before"], name="pendingscan_due_idx")]

    def __str__(self) -> str:
        return f"scan of message {self.message_id}"


class PendingLearn(models.Model):
    """A message the user marked "Spam" or "Not spam", to train rspamd's Bayes with (spam/learning.py).

    One row per message: marking it again before the training ran replaces the class.
    """

    message = models.OneToOneField(Message, on_delete=models.CASCADE, primary_key=True, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    spam = models.BooleanField()
    not_before = models.DateTimeField(default=timezone.now)
    claim = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["not_before"], name="pendinglearn_due_idx")]

    def __str__(self) -> str:
        return f"training with message {self.message_id}"


class SafeSender(models.Model):
    """An address the user marked "Not spam" mail from: its mail is never filtered into Spam."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320, help_text="In lower case.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "address"], name="safesender_owner_address_uniq")]

    def __str__(self) -> str:
        return f"safe sender {self.pk}"  # the address is the user's correspondence


class SpamSettings(models.Model):
    """A user's score thresholds for rspamd's verdicts; empty: rspamd's own actions decide."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    spam_score = models.FloatField(null=True, blank=True, help_text="From this score on: Spam.")
    probable_score = models.FloatField(null=True, blank=True, help_text="From this score on: probably spam.")

    class Meta:
        verbose_name_plural = "spam settings"

    def __str__(self) -> str:
        return f"spam settings of user {self.user_id}"


class ScanHour(models.Model):
    """What spam filtering did in one hour (UTC), for the operators' dashboard and /metrics."""

    hour = models.DateTimeField(unique=True)
    scanned = models.PositiveIntegerField(default=0)
    spam = models.PositiveIntegerField(default=0)
    probable = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Scans that failed (each is tried again).")
    learned = models.PositiveIntegerField(default=0)
    # Summed over the hour's rspamd scans: rspamd's own time, and the whole request as webpop saw it.
    rspamd_seconds = models.FloatField(default=0)
    request_seconds = models.FloatField(default=0)
    rspamd_scans = models.PositiveIntegerField(default=0, help_text="Scans by rspamd (not by headers).")

    class Meta:
        ordering = ["-hour"]

    def __str__(self) -> str:
        return f"scans at {self.hour:%Y-%m-%d %H:00}"


class ServiceHealth(models.Model):
    """The last word on an external service (rspamd): when it last answered, since when it fails."""

    name = models.CharField(max_length=32, unique=True)
    checked_at = models.DateTimeField(default=timezone.now)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="Empty while it answers.")
    error = models.CharField(max_length=200, blank=True)
    latency_seconds = models.FloatField(null=True, blank=True, help_text="Of the last answer.")

    def __str__(self) -> str:
        return self.name
