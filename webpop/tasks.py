"""Thin Celery wrappers for the project package's own upkeep."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def prune_rate_counters() -> int:
    """Beat, hourly: rate-limit counters of windows that have ended (webpop/lib/ratelimit.py)."""
    from webpop.lib import ratelimit

    return ratelimit.prune()
