"""Thin Celery wrappers for users/."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def cleanup() -> dict:
    """Beat, daily: expired sessions and audit events older than WEBPOP_AUDIT_DAYS."""
    from . import actions

    return actions.cleanup()
