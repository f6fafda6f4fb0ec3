"""Celery wrapper around outgoing.send: one task per message, retried with backoff on temporary failures."""

from __future__ import annotations

import random

from celery import shared_task

from . import send

MAX_RETRIES = 8  # with the backoff below: about four and a half hours of trying


def backoff(retries: int) -> int:
    """Seconds before retry ``retries + 1``: 1, 2, 4 … 60 minutes, with jitter so retries do not bunch up."""
    base = min(60 * 2**retries, 3600)
    return base + random.randint(0, base // 4)


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def send_outgoing(self, outgoing_id: int) -> str:
    outcome = send.deliver(outgoing_id)
    if outcome is send.Outcome.RETRY:
        if self.request.retries >= self.max_retries:
            send.give_up(outgoing_id)
            return send.Outcome.FAILED.value
        raise self.retry(countdown=backoff(self.request.retries))
    return outcome.value


@shared_task
def resume_stalled_sends() -> int:
    """Beat, every few minutes: send what lost its task (a worker died, a broker lost a message)."""
    ids = send.resume_stalled()
    for outgoing_id in ids:
        send_outgoing.delay(outgoing_id)
    return len(ids)
