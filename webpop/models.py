from __future__ import annotations

from django.db import models


class RateCounter(models.Model):
    """Attempts counted under one key in one fixed window (webpop/lib/ratelimit.py); pruned once expired."""

    key = models.CharField(max_length=64, primary_key=True)  # SHA-256 of action, subject and window
    count = models.PositiveIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key[:12]}…={self.count}"


class WalkProgress(models.Model):
    """How far a host-wide job walking its data in slices has come (webpop/lib/walks.py).

    ``cursor`` is where the current pass stands ("" before its first slice): the slice that moves it
    commits its work in the same transaction, so a killed job goes on from there, nothing counted twice.
    """

    name = models.CharField(max_length=64, unique=True)
    cursor = models.CharField(max_length=255, blank=True)
    slices = models.PositiveIntegerField(default=0, help_text="Slices done in the current pass.")
    pass_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_seconds = models.FloatField(null=True, blank=True, help_text="How long the last whole pass took.")
    last_slices = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} at {self.cursor or 'start'}"
