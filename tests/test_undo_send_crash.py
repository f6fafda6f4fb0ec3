"""Undo send survives worker crashes: the wait lives on the row, so a worker killed inside the Undo window
(holding the task) neither loses the message nor sends it early, and one killed after it sends nothing twice.

Real processes: Celery workers and beat started as an operator starts them, on Redis and this test's database.
"""

from __future__ import annotations

import contextlib
import sys
import time

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from accounts.models import MailAccount
from outgoing import actions as outgoing_actions
from outgoing import send
from outgoing.models import OutgoingMessage, OutgoingState
from tests.conftest import require_postgresql, require_redis
from tests.processes import REPO, running, wait_until, webpop_env
from webpop.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


def _worker(name: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "webpop", "worker", "--hostname", f"{name}@%h",
            "--concurrency", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]  # fmt: skip


def _held_by_a_worker() -> int:
    """Tasks a worker has taken from Redis and not acknowledged (a countdown task waits there)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return client.hlen("unacked")
    finally:
        client.close()


def _forget_held_tasks() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete("unacked", "unacked_index")
    finally:
        client.close()


def test_a_worker_killed_inside_and_after_the_undo_window_sends_each_message_once_and_never_early(
    alice, smtp_account, smtp_server, tmp_path
):
    require_redis()
    require_postgresql()
    celery_app.control.purge()
    _forget_held_tasks()
    account = smtp_account()
    MailAccount.objects.update(next_poll_at=timezone.now() + timezone.timedelta(days=1))  # no polls in the way
    data_dir = tmp_path / "data"
    settings.WEBPOP_MAIL_DIR = data_dir / "mail"
    env = webpop_env(
        data_dir,
        WEBPOP_POLL_TICK_SECONDS="1",
        WEBPOP_SEND_REDISPATCH_SECONDS="2",  # w1's task counts as lost 2 s after the message fell due
        WEBPOP_POP3_CA_FILE=settings.WEBPOP_POP3_CA_FILE,  # trusts the test SMTP server (see smtp_server)
    )
    logs = tmp_path / "logs"
    beat = [sys.executable, "-m", "celery", "-A", "webpop", "beat", "--schedule", str(tmp_path / "schedule")]

    def draft(subject: str) -> OutgoingMessage:
        return send.save_draft(alice, None, account=account, to="bob@example.net", subject=subject, body="Hi.\n")

    with contextlib.ExitStack() as stack:
        beat_procs = stack.enter_context(running({"beat": beat}, env=env, cwd=REPO, logs=logs))
        first = stack.enter_context(running({"w1": _worker("w1")}, env=env, cwd=REPO, logs=logs))
        wait_until(lambda: "ready." in (logs / "w1.log").read_text(), "w1 to start", procs=first, logs=logs)

        # Killed inside the window, holding the task: nothing leaves early, the sweep finds it, one copy goes.
        inside = outgoing_actions.queue(alice, draft("Inside the window").id, delay=8)
        wait_until(lambda: _held_by_a_worker() >= 1, "w1 to take the task", procs={**beat_procs, **first}, logs=logs)
        first["w1"].kill()
        first["w1"].wait()
        assert timezone.now() < inside.next_attempt_at and smtp_server.received == []
        second = stack.enter_context(running({"w2": _worker("w2")}, env=env, cwd=REPO, logs=logs))
        live = {**beat_procs, **second}
        while timezone.now() < inside.next_attempt_at:
            assert smtp_server.received == [], "sent before the end of its Undo window"
            time.sleep(0.2)
        wait_until(
            lambda: OutgoingMessage.objects.get(id=inside.id).state == OutgoingState.SENT, "the send", procs=live,
            logs=logs,
        )  # fmt: skip
        inside.refresh_from_db()
        assert inside.attempts == 1 and inside.sent_at >= inside.next_attempt_at

        # Killed after the window, once it has sent: a third worker and the sweep send nothing again.
        after = outgoing_actions.queue(alice, draft("After the window").id, delay=2)
        wait_until(
            lambda: OutgoingMessage.objects.get(id=after.id).state == OutgoingState.SENT, "the send", procs=live,
            logs=logs,
        )  # fmt: skip
        second["w2"].kill()
        second["w2"].wait()
        third = stack.enter_context(running({"w3": _worker("w3")}, env=env, cwd=REPO, logs=logs))
        time.sleep(5)  # beyond WEBPOP_SEND_REDISPATCH_SECONDS and a few beat ticks
        assert all(proc.poll() is None for proc in {**beat_procs, **third}.values())
    subjects = sorted(got.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for got in smtp_server.received)
    assert subjects == [b"After the window", b"Inside the window"]
    assert OutgoingMessage.objects.get(id=after.id).attempts == 1
    _forget_held_tasks()  # w1's task, which Redis would hand out again after its visibility timeout
