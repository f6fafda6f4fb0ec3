"""Thin Celery wrappers for users/."""

from __future__ import annotations

from celery import shared_task

from mailbox.store import GC_GRACE


@shared_task(ignore_result=True)
def free_files(paths: list[str]) -> int:
    """Free a deleted user's files that were too young to free at once (see services.delete_user)."""
    from . import services

    return len(services.free_files(paths))


def free_files_later(paths: list[str]) -> None:
    free_files.apply_async(args=[paths], countdown=int(GC_GRACE.total_seconds()) + 60)


@shared_task(ignore_result=True)
def cleanup() -> dict:
    """Beat, daily: expired sessions and audit events older than WEBPOP_AUDIT_DAYS."""
    from . import services

    return services.cleanup()
