from __future__ import annotations

from django.db import models


class RateCounter(models.Model):
    """Attempts counted under one key in one fixed window (webpop/lib/ratelimit.py); pruned once expired."""

    key = models.CharField(max_length=64, primary_key=True)  # SHA-256 of action, subject and window
    count = models.PositiveIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key[:12]}…={self.count}"
