"""Small tables the operators' side needs: worker heartbeats and the beat lease."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """Last sign of life of one Celery worker (by its node name, e.g. ``worker1@host``)."""

    hostname = models.CharField(max_length=255, unique=True)
    pid = models.PositiveIntegerField(default=0)
    concurrency = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="Set when the worker shut down cleanly.")

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname


class SchedulerLease(models.Model):
    """Who may enqueue periodic tasks: exactly one Celery beat holds this at a time."""

    name = models.CharField(max_length=64, unique=True)
    holder = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"


class MetricTotal(models.Model):
    """A running total for /metrics, folded from SyncRun rows so a scrape reads only recent rows.

    ``name`` is e.g. ``syncs:ok``, ``errors:auth``, ``duration_le:5``; the row named
    ``_folded_through_id`` holds the highest SyncRun id already added in.
    """

    name = models.CharField(max_length=64, unique=True)
    value = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.name} = {self.value:g}"


class StorageTotal(models.Model):
    """One user's stored mail as counted by the last complete pass of ops/storage.py.

    The dashboard and /metrics read these rows, never the mail. ``pass_*`` add up the pass
    under way, slice by slice; the pass's last slice makes them the totals.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="storage_total"
    )
    messages = models.PositiveBigIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    pass_messages = models.PositiveBigIntegerField(default=0)
    pass_bytes = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"user {self.user_id}: {self.messages} messages, {self.bytes} bytes"


class Operator(models.Model):
    """No table: holds the operators' permissions, which the "Operators" group is given (users.operators).

    The dashboard acts on every user's accounts; the staff flag alone (which only opens the
    admin, where model permissions apply) grants none of this.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", "Can view the operators' dashboard (every account's health, hosts and errors)"),
            ("act_on_accounts", "Can sync now, pause, resume and retry quarantined mail of any account"),
            ("disable_users", "Can disable and re-enable users"),
            ("manage_invitations", "Can create and revoke invitations"),
            ("view_metrics", "Can read the Prometheus metrics in the browser"),
        ]

    def __str__(self) -> str:
        return "operator"
