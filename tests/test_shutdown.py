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
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.test import Client
from django.utils import timezone
from port_for import get_port

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


def _start(procs: dict[str, subprocess.Popen], name: str, argv: list[str], env: dict, logs: Path) -> subprocess.Popen:
    """One more process beside those ``running`` started (and stops at the end)."""
    with open(logs / f"{name}.log", "w") as log:
        procs[name] = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return procs[name]


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
        wait_until(  # a batch committed, so a stop has something to keep
            lambda: (
                sum(c.server_bytes for c in slow.conversations) > total / 8
                and Message.objects.filter(account=account).exists()
            ),
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
        assert min(held_until) > timezone.now() + sync.lease.claim_hold() / 2  # claimed: not due for minutes
        tasks.check_accounts.delay(claimed)
        wait_until(lambda: silent.connections >= len(ids), "every check to connect", procs=procs, logs=logs)
        took = _stop(procs["w1"], logs, GRACE + STOP_MARGIN)
    assert took < GRACE + STOP_MARGIN
    now = timezone.now()
    for account in MailAccount.objects.filter(id__in=ids):
        assert account.next_poll_at <= now, (account.id, account.next_poll_at)
        assert account.consecutive_failures == 0 and account.last_error_class == ""


# --- A rolling restart under load -------------------------------------------------------------------------

STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}).*Sending due task")


def _sends(log: Path) -> list[datetime]:
    """When this beat published its periodic tasks (celery.beat logs each send at INFO)."""
    return [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") for m in STAMP.finditer(log.read_text())]


def _beat(name: str, tmp_path: Path) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "webpop", "beat", "--loglevel", "INFO",
        "--schedule", str(tmp_path / f"{name}-schedule"),
    ]  # fmt: skip


def _signed_in(user) -> requests.Session:
    """A browser signed in as ``user`` (the session row made here, read by the web server)."""
    client = Client()
    client.force_login(user)
    web = requests.Session()
    web.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    return web


class Load:
    """Pages read in a loop, retried only when the connection is refused; mail delivered to every account."""

    def __init__(self, base: str, web: requests.Session, mailboxes: list[tuple[MailAccount, object]]):
        self.base, self.web, self.mailboxes = base, web, mailboxes
        self.answers: list[tuple[str, int]] = []
        self.refused = 0
        self.delivered: dict[int, dict[str, bytes]] = {account.id: {} for account, _user in mailboxes}
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._pages), threading.Thread(target=self._mail)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def _pages(self) -> None:
        paths = ["/", "/contacts/", "/healthz"]
        while not self.stopping.is_set():
            path = paths[len(self.answers) % len(paths)]
            try:
                answer = self.web.get(f"{self.base}{path}", timeout=60)
            except requests.ConnectionError as exc:
                if isinstance(exc, requests.Timeout) or "Connection refused" not in str(exc):
                    self.answers.append((path, 0))  # no answer, or cut off mid-way: a lost request
                    continue
                self.refused += 1  # nothing listening for a moment: a client or proxy tries again
                time.sleep(0.1)
                continue
            except requests.Timeout:
                self.answers.append((path, 0))
                continue
            self.answers.append((path, answer.status_code))

    def _mail(self) -> None:
        from django.db import connection

        try:
            n = 0
            while not self.stopping.wait(1.5):
                for account, user in self.mailboxes:
                    raw = build_message(f"rolling {n}", f"body {n} {uuid.uuid4()}", message_id=f"<r{n}.{account.id}@x>")
                    user.deliver(raw)
                    self.delivered[account.id][hashlib.sha256(raw).hexdigest()] = raw
                # New mail makes the accounts due, as their poll interval would.
                MailAccount.objects.filter(id__in=self.delivered).update(next_poll_at=timezone.now())
                n += 1
        finally:
            connection.close()


def test_a_rolling_restart_of_web_worker_and_beat_under_load_loses_no_request_and_no_sync(
    env, tmp_path, relay, dovecot, alice
):
    from tests.conftest import PopUser

    users = []
    for i in range(4):
        name, password = f"roll{i}{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
        dovecot.add_user(name, password)
        users.append(PopUser(dovecot, name, password))
    accounts = [
        make_account(
            alice, host="localhost", port=dovecot.pop3s_port, username=user.name, password=user.password,
            policy="delete" if i % 2 else "keep", label=f"roll{i}",
        )
        for i, user in enumerate(users)
    ]  # fmt: skip
    # One big mailbox behind a slow link: its sync is under way when the first worker stops.
    big_user = users.pop()
    big_account = accounts.pop()
    big: dict[str, bytes] = {}
    for i in range(150):
        raw = build_message(f"backlog {i}", f"line {i} " * 2000, message_id=f"<backlog{i}@x>")
        big_user.deliver(raw)
        big[hashlib.sha256(raw).hexdigest()] = raw
    slow = relay(rate=sum(map(len, big.values())) / 45)
    MailAccount.objects.filter(id=big_account.id).update(port=slow.port)

    port = get_port(None)
    base = f"http://127.0.0.1:{port}"
    env = dict(env, WEBPOP_HTTPS="false", WEBPOP_POLL_TICK_SECONDS="2", WEBPOP_BEAT_LEASE_SECONDS="6")
    web_argv = [
        sys.executable, "-m", "gunicorn", "webpop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--graceful-timeout", "30",
    ]  # fmt: skip
    logs = tmp_path / "logs"
    commands = {"web": web_argv, "w1": _worker("w1"), "beat1": _beat("beat1", tmp_path)}

    def answers() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=10).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading the app
            return False

    with running(commands, env=env, cwd=REPO, logs=logs) as procs:
        wait_until(answers, "the web server", procs=procs, logs=logs, timeout=120)
        wait_until(lambda: _alive("w1"), "the first worker", procs=procs, logs=logs)
        mailboxes = [(account, user) for account, user in zip(accounts, users, strict=True)]
        with Load(base, _signed_in(alice), mailboxes) as load:
            wait_until(
                lambda: sum(c.server_bytes for c in slow.conversations) > 500_000,
                "the big sync to be under way",
                procs=procs,
                logs=logs,
            )
            # worker: the new one first, then the old one stops (its syncs end within the grace)
            _start(procs, "w2", _worker("w2"), env, logs)
            wait_until(lambda: _alive("w2"), "the second worker", procs=procs, logs=logs)
            w1 = procs.pop("w1")
            _stop(w1, logs, GRACE + STOP_MARGIN)
            slow.rate = 0  # the rest of the backlog at full speed, for the test's time
            # beat: the new one waits on standby, takes over when the old one stops and releases the lease
            _start(procs, "beat2", _beat("beat2", tmp_path), env, logs)
            wait_until(
                lambda: "is on standby" in (logs / "beat2.log").read_text(), "beat2 on standby", procs=procs, logs=logs
            )
            beat1 = procs.pop("beat1")
            _stop(beat1, logs, 30)
            wait_until(lambda: _sends(logs / "beat2.log"), "beat2 to take over", procs=procs, logs=logs)
            # web: gunicorn's graceful reload (new workers with the new code; old ones finish their requests)
            booted = (logs / "web.log").read_text().count("Booting worker")
            procs["web"].send_signal(signal.SIGHUP)
            wait_until(
                lambda: (logs / "web.log").read_text().count("Booting worker") >= booted + 1,
                "the web's new workers",
                procs=procs,
                logs=logs,
            )
            time.sleep(2)  # the load goes on a little with everything new
        # Every delivered message arrives: the accounts are polled until then.
        expected = {account.id: load.delivered[account.id] for account in accounts} | {big_account.id: big}

        def all_stored() -> bool:
            MailAccount.objects.filter(id__in=expected).update(next_poll_at=timezone.now())
            return all(
                set(Message.objects.filter(account_id=account_id).values_list("sha256", flat=True)) >= set(shas)
                for account_id, shas in expected.items()
            )

        wait_until(all_stored, "every message stored", procs=procs, logs=logs, timeout=90)
        wait_until(
            lambda: not MailAccount.objects.filter(sync_lease_token__gt="").exists(),
            "syncs to end",
            procs=procs,
            logs=logs,
        )

    # No page failed: every request was answered, and answered 200 (refused connections were retried).
    assert load.answers, "no page was read"
    failed = [(path, status) for path, status in load.answers if status != 200]
    assert not failed, (failed, log_tail(logs))
    # Each message stored once, byte-exact; delete-after-fetch accounts' servers empty, the others whole.
    for account, user in [*mailboxes, (big_account, big_user)]:
        _assert_stored_once(account, expected[account.id])
        assert user.sha256s() == (set() if account.policy == "delete" else set(expected[account.id]))
    # Every sync run ended; none failed (a stop is no failure, and the account is polled again at once).
    runs = list(SyncRun.objects.values_list("account_id", "finished_at", "error_class", "error"))
    assert all(finished is not None for _a, finished, _c, _e in runs), runs
    assert {error_class for _a, _f, error_class, _e in runs} <= {"", "busy", "stopped"}, runs
    assert "stopped" in {c for a, _f, c, _e in runs if a == big_account.id}, "the worker did not stop mid-sync"
    # Never two beats sending: all of beat1's sends come before beat2's first.
    first, second = _sends(logs / "beat1.log"), _sends(logs / "beat2.log")
    assert first and second and max(first) <= min(second), (first[-3:], second[:3])
