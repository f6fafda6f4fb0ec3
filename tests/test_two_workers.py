"""Acceptance: two Celery worker processes on Redis share 50 Dovecot accounts.

Every sync is enqueued three times at once, so both workers' processes race
for the same accounts. No account may be synced twice at the same moment
(SyncRun rows of one account never overlap), each message is stored once, and
the dashboard, in Chromium, shows both workers' heartbeats; its screenshot is
kept in test-artifacts/screens/.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client

from accounts.models import MailAccount
from mailbox import tasks
from mailbox.models import Message, SyncRun
from ops.models import WorkerHeartbeat
from tests.conftest import require_postgresql, require_redis
from tests.factories import build_message, make_account
from tests.processes import REPO, webpop_env
from webpop.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.celery]

SCREENS = REPO / "test-artifacts" / "screens"
ACCOUNTS = 50
MESSAGES_EACH = 3
ROUNDS = 3


def _wait_for(predicate, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _parent_pid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@pytest.fixture
def worker_env(tmp_path, settings, dovecot, trust_dovecot):
    require_redis()
    require_postgresql()
    data_dir = tmp_path / "data"
    settings.WEBPOP_MAIL_DIR = data_dir / "mail"  # the workers' store, read back here
    return webpop_env(
        data_dir,
        WEBPOP_POP3_CA_FILE=str(dovecot.ca_file),
        WEBPOP_HEARTBEAT_SECONDS="1",
        LOG_LEVEL="WARNING",
    )


@pytest.fixture
def two_workers(worker_env, tmp_path):
    # Leftovers of earlier tests must not run here, nor count as work to wait for: queued tasks, and tasks
    # a worker that an earlier test killed had reserved (Redis keeps those until the visibility timeout).
    celery_app.control.purge()
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete("unacked", "unacked_index")
    finally:
        client.close()
    procs: dict[str, subprocess.Popen] = {}
    for name in ("ops-w1", "ops-w2"):
        with open(tmp_path / f"{name}.log", "w") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "webpop", "worker", "--hostname", f"{name}@%h",
                 "--concurrency", "2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
                cwd=REPO, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _idle() -> bool:
    """Nothing queued, nothing reserved by a worker, no lease held: every sync has run."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        waiting = client.llen("celery") + client.hlen("unacked")
    finally:
        client.close()
    return waiting == 0 and not MailAccount.objects.filter(sync_lease_token__gt="").exists()


def test_two_workers_share_fifty_accounts_and_the_dashboard_shows_both(
    two_workers, dovecot, django_user_model, staff, browser, live_server
):
    owners = [django_user_model.objects.create_user(f"owner{i}") for i in range(5)]
    delivered: dict[int, set[str]] = {}
    accounts = []
    for i in range(ACCOUNTS):
        name, password = f"tw{i}{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
        dovecot.add_user(name, password)
        shas = set()
        for n in range(MESSAGES_EACH):
            raw = build_message(f"Account {i} message {n}", f"body {i}/{n}", message_id=f"<tw{i}.{n}@x>")
            dovecot.deliver(name, raw)
            shas.add(hashlib.sha256(raw).hexdigest())
        account = make_account(
            owners[i % len(owners)], host="localhost", port=dovecot.pop3s_port, username=name, password=password
        )
        delivered[account.id] = shas
        accounts.append(account.id)
    # Keep beat's polling out of it: only the syncs enqueued below run.
    MailAccount.objects.update(next_poll_at="2100-01-01T00:00:00Z")

    _wait_for(lambda: WorkerHeartbeat.objects.filter(hostname__startswith="ops-w").count() == 2, "both workers")
    first_seen = dict(WorkerHeartbeat.objects.values_list("hostname", "last_seen_at"))

    def enqueue(ids: list[int]) -> None:
        for account_id in ids:
            tasks.sync_account.delay(account_id)

    rounds = [random.sample(accounts, len(accounts)) for _ in range(ROUNDS)]
    publishers = [threading.Thread(target=enqueue, args=(ids,)) for ids in rounds]
    for publisher in publishers:
        publisher.start()
    for publisher in publishers:
        publisher.join()

    _wait_for(lambda: Message.objects.count() == ACCOUNTS * MESSAGES_EACH, "every message to be stored")
    # The syncs' follow-up tasks (search documents, notifications) run too; on a busy machine that takes a while.
    _wait_for(_idle, "every enqueued sync to finish", timeout=420)

    # Each message stored once, byte-exact.
    for account_id, shas in delivered.items():
        stored = list(Message.objects.filter(account_id=account_id).values_list("sha256", flat=True))
        assert sorted(stored) == sorted(shas), f"account {account_id}"
    # At most one sync per account at any moment: its runs never overlap.
    runs = list(
        SyncRun.objects.order_by("account_id", "started_at").values_list(
            "account_id", "started_at", "finished_at", "worker"
        )
    )
    assert all(finished is not None for _, _, finished, _ in runs)
    for (a1, _s1, f1, _w1), (a2, s2, _f2, _w2) in itertools.pairwise(runs):
        if a1 == a2:
            assert s2 >= f1, f"two syncs of account {a1} overlapped"
    assert {a for a, *_ in runs} == set(accounts)
    # Both workers did the work (each run names the pool process that ran it: host:pid).
    parents = {_parent_pid(int(worker.rpartition(":")[2])) for *_, worker in runs}
    assert {two_workers["ops-w1"].pid, two_workers["ops-w2"].pid} <= parents

    # Both kept beating (every second here) while their pool processes synced.
    _wait_for(
        lambda: all(row.last_seen_at > first_seen[row.hostname] for row in WorkerHeartbeat.objects.all()),
        "further heartbeats",
    )

    # The dashboard in Chromium shows both workers alive.
    client = Client()
    client.force_login(staff)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
              "url": live_server.url}]
        )  # fmt: skip
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server.url}/ops/", wait_until="load")
        workers = page.locator("#workers")
        for name in ("ops-w1", "ops-w2"):
            row = workers.locator("tr.worker", has_text=f"{name}@")
            assert row.count() == 1
            assert "alive" in row.inner_text()
        assert page.locator("#syncs-24h svg rect.bar").count() >= 1
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "ops-dashboard-desktop.png"), full_page=True)
        assert errors == []
    finally:
        context.close()

    # A clean stop shows at once.
    for proc in two_workers.values():
        proc.send_signal(signal.SIGTERM)
    for proc in two_workers.values():
        proc.wait(timeout=60)
    assert set(WorkerHeartbeat.objects.filter(hostname__startswith="ops-w").values_list("stopped_at", flat=True)) != {
        None
    }
    assert WorkerHeartbeat.objects.filter(hostname__startswith="ops-w", stopped_at__isnull=True).count() == 0
