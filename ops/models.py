"""Small tables the operators' side needs: worker heartbeats and the beat lease."""

from __future__ import annotations

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
