"""Celery wrappers around outgoing.send: one task per try of a message, and beat's sweep that publishes them."""

from __future__ import annotations

from celery import current_app, shared_task

from webpop import broker

from . import send


@shared_task
def send_outgoing(outgoing_id: int) -> str:
    """One try. After a temporary failure the next try's time is on the message's row, not in the broker."""
    outcome = send.deliver(outgoing_id)
    if outcome is send.Outcome.EARLY:  # came before the end of the Undo window: wait for the rest of it
        publish_send(outgoing_id, send.seconds_left(outgoing_id) or 0)
    return outcome.value


def publish_send(outgoing_id: int, countdown: float = 0) -> None:
    """Publish a try, held by the broker for ``countdown`` seconds (at most what it keeps safely; the row has
    the real time, and beat's sweep covers a task that is lost)."""
    limit = broker.max_countdown(current_app.conf.broker_transport_options)
    countdown = min(max(countdown, 0), limit)
    if countdown:
        send_outgoing.apply_async((outgoing_id,), countdown=countdown)
    else:
        send_outgoing.delay(outgoing_id)


@shared_task(ignore_result=True)
def dispatch_due_sends() -> int:
    """Beat, every tick: publish the tries that are due (retries, lost tasks, workers that died)."""
    ids = send.dispatch_due()
    for outgoing_id in ids:
        send_outgoing.delay(outgoing_id)
    return len(ids)
