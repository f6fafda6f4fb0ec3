"""Thin Celery wrappers for users/."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def free_files(paths: list[str]) -> int:
    """Messages queued by earlier versions, which scheduled a deleted user's files in the broker: now rows."""
    from mailbox import storage_gc

    return storage_gc.release(paths)


@shared_task(ignore_result=True)
def cleanup() -> dict:
    """Beat, daily: expired sessions and audit events older than WEBPOP_AUDIT_DAYS."""
    from . import services

    return services.cleanup()
