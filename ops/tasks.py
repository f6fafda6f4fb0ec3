"""Thin Celery wrappers for the operators' side (beat schedules them; see settings)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import storage, totals


@shared_task(ignore_result=True)
def fold_sync_totals() -> int:
    """Beat, every minute: keep /metrics cheap by folding finished syncs into running totals."""
    return totals.fold()


@shared_task(ignore_result=True)
def prune_sync_history() -> int:
    """Beat, hourly: forget sync history older than WEBPOP_SYNC_HISTORY_DAYS (totals keep counting)."""
    totals.fold()
    return totals.prune(settings.WEBPOP_SYNC_HISTORY_DAYS)


@shared_task(ignore_result=True)
def count_storage() -> dict:
    """Beat: count every user's stored mail in slices (ops/storage.py) for the dashboard and /metrics."""
    return storage.count()
