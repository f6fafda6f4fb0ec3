"""Celery wrappers around unsubscribe.tries: one task per try of a one-click request, and beat's sweep."""

from __future__ import annotations

from celery import shared_task

from . import tries


@shared_task(ignore_result=True)
def unsubscribe(request_id: int) -> str:
    """One try. After a temporary failure the next try's time is on the request's row, not in the broker."""
    return tries.run(request_id)


@shared_task(ignore_result=True)
def resume_unsubscribes() -> int:
    """Beat, every tick: publish the tries that are due (retries, lost tasks, workers that died)."""
    ids = tries.due()
    for request_id in ids:
        unsubscribe.delay(request_id)
    return len(ids)
