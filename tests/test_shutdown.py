"""Graceful shutdown and rolling restarts, with real processes: Celery workers (prefork, as deployed),
beat, gunicorn, Dovecot behind a relay that can slow down or silence the server (tests/relay.py).

- A worker stopped (SIGTERM) in the middle of a big sync ends it within WEBPOP_SHUTDOWN_GRACE: at the next
  message when the server is slow, by cutting the connection off when the server has gone silent. What
  arrived whole is stored, nothing is deleted on the server, the lease is free at once, and the next
  sync, by another worker, stores every message exactly once and applies the delete policy.
- A worker stopped in the middle of a check batch leaves the accounts it claimed due at once.
- web (gunicorn HUP), worker and beat restarted one after another while a client loads pages and mail
  arrives: no page answers 5xx, every message is stored once, every sync run ends, and the beat lease
  passes from the old beat to the new one without both sending.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from accounts.models import MailAccount
from mailbox import sync, tasks
from mailbox.models import Message, SyncRun
from ops.models import WorkerHeartbeat
from tests.conftest import require_postgresql, require_redis
from tests.factories import build_message, make_account
from tests.processes import REPO, log_tail, running, wait_until, webpop_env
from tests.relay import Relay
from webpop.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.celery]

GRACE = 5  # WEBPOP_SHUTDOWN_GRACE of the workers here
STOP_MARGIN = 15  # what a worker may take beyond the grace: commit what is whole, Celery's own shutdown
MESSAGES = 300
FAR = "2100-01-01T00:00:00Z"


def _worker(name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "webpop", "worker", "--hostname", f"{name}@%h", "--pool", "prefork",
        "--concurrency", "2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def _fresh_broker() -> None:
    """Leftovers of earlier tests must not run here: queued tasks, and tasks a killed worker had reserved."""
    celery_app.control.purge()
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete("unacked", "unacked_index")
    finally:
        client.close()


@pytest.fixture
def env(tmp_path, settings, dovecot, trust_dovecot):
    require_redis()
    require_postgresql()
    _fresh_broker()
    data_dir = tmp_path / "data"
    settings.WEBPOP_MAIL_DIR = data_dir / "mail"  # the workers' store, read back here
    return webpop_env(
        data_dir,
        WEBPOP_POP3_CA_FILE=str(dovecot.ca_file),
        WEBPOP_HEARTBEAT_SECONDS="1",
        WEBPOP_SHUTDOWN_GRACE=str(GRACE),
        LOG_LEVEL="WARNING",
    )


@pytest.fixture
def relay(dovecot):
    started: list[Relay] = []

    def make(**options) -> Relay:
        started.append(Relay(("127.0.0.1", dovecot.pop3s_port), **options).start())
        return started[-1]

    yield make
    for one in started:
        one.release()
        one.stop()


def _alive(name: str) -> bool:
    return WorkerHeartbeat.objects.filter(hostname__startswith=f"{name}@", stopped_at__isnull=True).exists()


def _stop(proc: subprocess.Popen, logs: Path, bound: float) -> float:
    """SIGTERM ``proc`` and wait for it to exit; the seconds it took."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {bound} s after SIGTERM\n{log_tail(logs)}") from None
    return time.monotonic() - started


def _assert_stored_once(account: MailAccount, delivered: dict[str, bytes]) -> None:
    stored = list(Message.objects.filter(account=account).values_list("sha256", "raw_path"))
    assert len(stored) == len({sha for sha, _ in stored}), "a message was stored twice"
    assert {sha for sha, _ in stored} == set(delivered)
    mail_dir = Path(settings.WEBPOP_MAIL_DIR)
    for sha, raw_path in stored:
        assert hashlib.sha256((mail_dir / raw_path).read_bytes()).hexdigest() == sha


@pytest.mark.parametrize("server", ["slow", "silent"])
def test_a_worker_stopped_mid_sync_ends_it_within_the_grace_and_the_next_worker_stores_everything_once(
    server, env, tmp_path, relay, pop_user, alice
):
    delivered: dict[str, bytes] = {}
    for i in range(MESSAGES):
        raw = build_message(f"big {i}", f"line {i} " * 2000, message_id=f"<big{i}@x>")  # ~20 KB each
        pop_user.deliver(raw)
        delivered[hashlib.sha256(raw).hexdigest()] = raw
    total = sum(len(raw) for raw in delivered.values())
    slow = relay(rate=total / 40)  # the whole mailbox would take 40 s
    account = make_account(
        alice, host="localhost", port=slow.port, username=pop_user.name, password=pop_user.password, policy="delete"
    )
    MailAccount.objects.filter(id=account.id).update(next_poll_at=FAR)  # no beat here; only the syncs below
    logs = tmp_path / "logs"

    with running({"w1": _worker("w1")}, env=env, cwd=REPO, logs=logs) as procs:
        wait_until(lambda: _alive("w1"), "the first worker", procs=procs, logs=logs)
        tasks.sync_account.delay(account.id)
        wait_until(
            lambda: sum(c.server_bytes for c in slow.conversations) > total / 8,
            "the sync to be well under way",
            procs=procs,
            logs=logs,
        )
        if server == "silent":
            slow.hold()  # the server stops answering in the middle of a message
            time.sleep(0.5)
        took = _stop(procs["w1"], logs, GRACE + STOP_MARGIN)
    log = (logs / "w1.log").read_text()

    run = SyncRun.objects.get(account=account)
    assert run.finished_at is not None and run.error_class == "stopped", (run.error_class, run.error, log[-3000:])
    if server == "silent":
        assert took >= GRACE - 0.5, took  # it waited for the grace, not less
        assert "sync stopped, the worker is shutting down" in log and "stopped after" not in log, log[-3000:]
    else:
        assert "stopped after" in log, log[-3000:]  # at a message boundary, before any cut-off
    account.refresh_from_db()
    # The lease is free and the account due now: the next worker need not wait for anything.
    assert (account.sync_lease_token, account.sync_lease_owner, account.sync_lease_until) == ("", "", None)
    assert account.next_poll_at <= timezone.now()
    assert account.consecutive_failures == 0 and account.last_error_class == ""  # the account did nothing wrong
    # Stopped mid-way: some mail stored, nothing deleted on the server (no QUIT), nothing stored twice.
    kept = Message.objects.filter(account=account).count()
    assert 0 < kept < MESSAGES, kept
    assert pop_user.sha256s() == set(delivered)
    assert not list(tmp_path.glob("data/mail/tmp/*")), "a half-written download was left behind"

    slow.release()
    slow.rate = 0
    with running({"w2": _worker("w2")}, env=env, cwd=REPO, logs=logs) as procs:
        wait_until(lambda: _alive("w2"), "the second worker", procs=procs, logs=logs)
        tasks.sync_account.delay(account.id)
        wait_until(
            lambda: SyncRun.objects.filter(account=account, finished_at__isnull=False).count() == 2,
            "the next sync",
            procs=procs,
            logs=logs,
            timeout=100,
        )
    second = SyncRun.objects.filter(account=account).latest("started_at")
    assert second.error_class == "" and second.fetched == MESSAGES - kept, (second.error_class, second.error)
    assert second.worker != run.worker
    _assert_stored_once(account, delivered)
    assert pop_user.sha256s() == set()  # delete after fetch: all of it, now that all of it is stored


def test_a_worker_stopped_mid_check_leaves_the_accounts_it_claimed_due_at_once(env, tmp_path, relay, alice):
    silent = relay()
    silent.hold()  # checks in flight until the worker stops
    accounts = [
        make_account(alice, host="localhost", port=silent.port, username=f"c{i}", password="pw", label=f"c{i}")
        for i in range(5)
    ]
    ids = [account.id for account in accounts]
    # Synced before: a check (not a sync) is what their poll runs.
    MailAccount.objects.filter(id__in=ids).update(listing_digest="from-the-last-sync", next_poll_at=timezone.now())
    env = dict(env, WEBPOP_CHECK_DEADLINE="100")  # far beyond the grace: the stop must not wait for it
    logs = tmp_path / "logs"
    with running({"w1": _worker("w1")}, env=env, cwd=REPO, logs=logs) as procs:
        wait_until(lambda: _alive("w1"), "the worker", procs=procs, logs=logs)
        claimed = sync.claim_due_accounts()
        assert sorted(claimed) == sorted(ids)
        held_until = MailAccount.objects.filter(id__in=ids).values_list("next_poll_at", flat=True)
        assert min(held_until) > timezone.now() + sync.lease.CLAIM_HOLD / 2  # claimed: not due for minutes
        tasks.check_accounts.delay(claimed)
        wait_until(lambda: silent.connections >= len(ids), "every check to connect", procs=procs, logs=logs)
        took = _stop(procs["w1"], logs, GRACE + STOP_MARGIN)
    assert took < GRACE + STOP_MARGIN
    now = timezone.now()
    for account in MailAccount.objects.filter(id__in=ids):
        assert account.next_poll_at <= now, (account.id, account.next_poll_at)
        assert account.consecutive_failures == 0 and account.last_error_class == ""
