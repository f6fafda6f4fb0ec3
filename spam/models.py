"""Spam filtering's rows: work still to do (scans, training), what users decided, and how it is going."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from mailbox.models import Message

from . import trust


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


class SenderTrust(models.Model):
    """What the scan learnt about who vouches for a message's sender (spam/trust.py), for its header.

    Written with the scan's verdict; a message scanned before there was this row has none and shows
    no trust line. Warnings from the From line itself are worked out when the message is shown.
    """

    message = models.OneToOneField(Message, on_delete=models.CASCADE, primary_key=True, related_name="sender_trust")
    checked_by = models.CharField(
        max_length=255, blank=True, help_text='"rspamd", or the trusted authserv-id; empty: nobody said.'
    )
    dkim = models.JSONField(default=list, blank=True, help_text="Domains whose DKIM signature verified.")
    dkim_failed = models.JSONField(default=list, blank=True, help_text="Domains whose signature did not.")
    spf = models.CharField(max_length=16, blank=True)
    spf_domain = models.CharField(max_length=255, blank=True)
    dmarc = models.CharField(max_length=16, blank=True)
    dmarc_policy = models.CharField(max_length=16, blank=True)
    reply_to = models.TextField(blank=True, help_text="The Reply-To header, as sent.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"sender trust of message {self.message_id}"

    def auth(self) -> trust.Auth:
        return trust.Auth(
            self.checked_by, tuple(self.dkim or ()), tuple(self.dkim_failed or ()), self.spf, self.spf_domain,
            self.dmarc, self.dmarc_policy,
        )  # fmt: skip

    @classmethod
    def of(cls, message_id: int, auth: trust.Auth, reply_to: str) -> SenderTrust:
        return cls(
            message_id=message_id, checked_by=auth.by[:255], dkim=list(auth.dkim)[:20],
            dkim_failed=list(auth.dkim_failed)[:20], spf=auth.spf[:16], spf_domain=auth.spf_domain[:255],
            dmarc=auth.dmarc[:16], dmarc_policy=auth.dmarc_policy[:16], reply_to=reply_to[:2000],
        )  # fmt: skip
