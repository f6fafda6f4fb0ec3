"""PostgreSQL and Redis outages against a real web server (gunicorn) on servers of this test's own.

The web process runs on a private PostgreSQL and a private Redis, started here so stopping
them hurts no other test. While PostgreSQL is down a page answers the styled 503 with
Retry-After and /readyz 503; once it is back the same process answers 200 (no restart), and a
connection kept from before a restart is checked before it is reused (CONN_HEALTH_CHECKS: without
it the first page after the restart would fail). A Celery worker keeps running tasks too.
While Redis is down, sign-in and the inbox still answer 200 from the database, and /readyz
says 503 (the broker is part of readiness, docs/deployment.md).

Redis stopped for a while and started again, empty, under a real worker, beat and gunicorn: none of
them is restarted, the worker reconnects (and stops retrying once connected), beat's next tick
publishes again, "Check now" clicked during the outage is done from the database row once Redis is
back, and the inbox left open in Chromium shows the new mail without a reload. A send made during
the outage goes out once, from its row, after Redis returns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from port_for import get_port

from tests import processes, services

PASSWORD = "outage-test-passphrase-1"
PUBLISH = "from ops.tasks import fold_sync_totals; print(fold_sync_totals.delay())"


@pytest.fixture
def servers():
    with services.private_servers("webpop-outage-") as running:
        yield running


def _manage(env: dict, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=processes.REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _sign_in(base: str, lang: str = "en") -> requests.Session:
    web = requests.Session()
    web.headers["Accept-Language"] = lang
    page = web.get(f"{base}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = web.post(
        f"{base}/login/",
        data={"csrfmiddlewaretoken": token, "username": "alice", "password": PASSWORD},
        headers={"Referer": f"{base}/login/"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.url.rstrip("/") != f"{base}/login", answer.url
    return web


def _sign_out(web: requests.Session, base: str) -> requests.Response:
    token = web.cookies["csrftoken"]
    return web.post(f"{base}/logout/", data={"csrfmiddlewaretoken": token}, headers={"Referer": f"{base}/"}, timeout=30)


def _wait(predicate, what: str, procs, logs: Path, timeout: float = 60) -> None:
    processes.wait_until(predicate, what, procs=procs, logs=logs, timeout=timeout)


def test_the_web_answers_503_while_postgresql_is_down_and_200_when_it_is_back(servers):
    data = servers["folder"] / "data"
    env = processes.webpop_env(
        data, DATABASE_URL=servers["DATABASE_URL"], REDIS_URL=servers["REDIS_URL"], WEBPOP_HTTPS="false"
    )
    env["DATABASE_URL"], env["REDIS_URL"] = servers["DATABASE_URL"], servers["REDIS_URL"]
    _manage(env, "migrate", "--noinput")
    _manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user('alice', password='{PASSWORD}')",
    )
    port = get_port(None)
    base = f"http://127.0.0.1:{port}"
    web_argv = [sys.executable, "-m", "gunicorn", "webpop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    logs = servers["folder"] / "logs"

    def answers() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=5).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # starting, or slow to start on a busy machine
            return False

    with processes.running({"web": web_argv}, env=env, cwd=processes.REPO, logs=logs) as procs:
        _wait(answers, "the web server answers", procs, logs)
        assert requests.get(f"{base}/readyz", timeout=30).status_code == 200
        web = _sign_in(base)
        inbox = web.get(f"{base}/", timeout=30)
        assert inbox.status_code == 200, inbox.text[-2000:]

        # --- PostgreSQL restarts between two requests: the kept connection is checked, not reused broken
        assert web.get(f"{base}/contacts/", timeout=30).status_code == 200
        servers["postgres"].stop()
        servers["postgres"].start()
        servers["postgres"].process.wait(timeout=120)
        first = web.get(f"{base}/contacts/", timeout=30)
        assert first.status_code == 200, first.text[-2000:]

        # --- PostgreSQL down for a while -------------------------------------------------------------
        servers["postgres"].stop()
        started = time.monotonic()
        down = web.get(f"{base}/contacts/", timeout=30)
        assert down.status_code == 503, down.text[-2000:]
        assert down.headers["Retry-After"].isdigit()
        assert '<h1 id="error-title">Back in a moment</h1>' in down.text
        assert "/static/css/shell.css" in down.text and "Traceback" not in down.text
        german = web.get(f"{base}/contacts/", headers={"Accept-Language": "de"}, timeout=30)
        assert german.status_code == 503
        assert '<h1 id="error-title">Gleich wieder da</h1>' in german.text
        ready = requests.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is False
        assert time.monotonic() - started < 20  # answered at once, not after long timeouts

        servers["postgres"].start()
        servers["postgres"].process.wait(timeout=120)
        assert requests.get(f"{base}/readyz", timeout=30).status_code == 200
        back = web.get(f"{base}/contacts/", timeout=30)  # same process, same session: reconnected by itself
        assert back.status_code == 200, back.text[-2000:]
        assert procs["web"].poll() is None

        # --- Redis goes away -----------------------------------------------------------------------
        servers["redis"].stop()
        for path in ("/", "/contacts/"):
            page = web.get(f"{base}{path}", timeout=30)
            assert page.status_code == 200, (path, page.text[-2000:])
        fresh = _sign_in(base)  # signing in needs no cache
        assert fresh.get(f"{base}/", timeout=30).status_code == 200
        ready = requests.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"]["ok"] is False and ready.json()["checks"]["database"]["ok"] is True

        # Warned about once (not on every page), naming the error's class, not the host.
        log = (logs / "web.log").read_text()
        for what in ("session cache", "page cache"):
            assert log.count(f"{what} unavailable (ConnectionError)") == 1, log[-3000:]
        assert servers["REDIS_URL"].split("//")[1].split("/")[0] not in log

        # Publishing a task fails softly: the broker only wakes workers, the work is on a row.
        started = time.monotonic()
        publish = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", PUBLISH],
            cwd=processes.REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert publish.returncode == 0 and publish.stdout.split()[-1:] == ["None"], publish.stdout + publish.stderr
        assert "broker unavailable (OperationalError)" in publish.stderr
        assert time.monotonic() - started < 30

        # Signing out cannot drop the cached session: it fails with the 503 and the session stays whole.
        out = _sign_out(web, base)
        assert out.status_code == 503 and "Back in a moment" in out.text

        servers["redis"].start()
        assert requests.get(f"{base}/readyz", timeout=30).status_code == 200
        assert web.get(f"{base}/", timeout=30).status_code == 200
        assert _sign_out(web, base).status_code == 200
        assert web.get(f"{base}/", timeout=30).url.startswith(f"{base}/login/")


def test_a_worker_keeps_running_tasks_after_postgresql_restarts(servers):
    """A task before the restart and one after both succeed in the same worker, and its heartbeat
    (the main process's own connection) is recorded again: the worker needs no restart.

    Celery closes a task's database connections when it ends, so each task connects afresh; the
    heartbeat drops its broken connection itself (webpop/celery.py)."""
    import psycopg

    data = servers["folder"] / "data"
    env = processes.webpop_env(data, WEBPOP_HEARTBEAT_SECONDS="1")
    env["DATABASE_URL"], env["REDIS_URL"] = servers["DATABASE_URL"], servers["REDIS_URL"]
    _manage(env, "migrate", "--noinput")
    logs = servers["folder"] / "logs"
    worker_argv = [sys.executable, "-m", "celery", "-A", "webpop", "worker", "--loglevel", "INFO"]
    worker_argv += ["--concurrency", "1", "--hostname", "outage@%h", "--without-gossip", "--without-mingle"]

    def run_task() -> None:
        done = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "webpop", "call", "ops.tasks.fold_sync_totals"],
            cwd=processes.REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def last_heartbeat():
        with psycopg.connect(servers["DATABASE_URL"], connect_timeout=5) as conn:
            row = conn.execute("SELECT max(last_seen_at) FROM ops_workerheartbeat").fetchone()
        return row[0]

    with processes.running({"worker": worker_argv}, env=env, cwd=processes.REPO, logs=logs) as procs:
        log = logs / "worker.log"
        _wait(lambda: "ready." in log.read_text(), "the worker is ready", procs, logs)
        run_task()
        _wait(lambda: " succeeded in " in log.read_text(), "the first task succeeds", procs, logs)

        servers["postgres"].stop()
        time.sleep(3)  # heartbeats fail meanwhile; the worker must not die of it
        assert procs["worker"].poll() is None
        servers["postgres"].start()
        servers["postgres"].process.wait(timeout=120)
        after_restart = last_heartbeat()

        run_task()
        _wait(lambda: log.read_text().count(" succeeded in ") >= 2, "the second task succeeds", procs, logs)
        _wait(lambda: last_heartbeat() > after_restart, "a heartbeat after the restart", procs, logs)
        text = log.read_text()
        assert "raised unexpected" not in text and "connection already closed" not in text, text[-3000:]


# --- Redis stopped and started under a real worker, beat and web server ------------------------------


@pytest.fixture
def private_broker(tmp_path):
    """A Redis of this test's own for the broker and the cache ({"redis": executor, "url": ...}).

    It keeps nothing on disk, so a restart comes back empty, as after a crash: whatever was queued is gone.
    """
    redis, port = services.private_redis(tmp_path / "redis")
    try:
        yield {"redis": redis, "url": f"redis://127.0.0.1:{port}/0"}
    finally:
        if redis.running():
            redis.stop()


def _count_lines(path: Path, text: str) -> int:
    return path.read_text().count(text)


def _worker_beat_web(tmp_path: Path, port: int) -> dict[str, list[str]]:
    """One Celery worker, one beat and gunicorn, as an operator starts them."""
    worker = [sys.executable, "-m", "celery", "-A", "webpop", "worker", "--loglevel", "INFO", "--concurrency", "1"]
    worker += ["--hostname", "redis-outage@%h", "--without-gossip", "--without-mingle"]
    beat = [sys.executable, "-m", "celery", "-A", "webpop", "beat", "--schedule", str(tmp_path / "schedule")]
    beat += ["--loglevel", "INFO"]
    web = [sys.executable, "-m", "gunicorn", "webpop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    return {"worker": worker, "beat": beat, "web": web}


@pytest.mark.celery
@pytest.mark.dovecot
@pytest.mark.django_db(transaction=True)
def test_after_redis_returns_worker_and_beat_carry_on_a_check_now_from_the_outage_syncs_and_the_inbox_shows_it(
    alice, pop_user, dovecot, dovecot_account, private_broker, tmp_path
):
    """One worker, one beat and gunicorn on a private Redis that is stopped for a while and started empty.

    None of them is restarted. "Check now", clicked while Redis is away, is committed (the page answers)
    and its sync cannot be published; once Redis is back, beat's next tick publishes the poll, the worker
    syncs the account from Dovecot, and the inbox left open in Chromium shows the new mail by itself.
    """
    from django import db
    from django.utils import timezone

    from accounts.models import MailAccount
    from mailbox.models import Message
    from tests.browser import chromium, chromium_available, new_context
    from tests.conftest import require, require_postgresql
    from tests.factories import build_message

    require_postgresql()  # the processes share this test's database
    require(chromium_available(), "Chromium", "`make system-deps` installs it (Debian package chromium)")
    redis = private_broker["redis"]
    env = processes.webpop_env(
        tmp_path / "data",
        REDIS_URL=private_broker["url"],
        WEBPOP_POP3_CA_FILE=str(dovecot.ca_file),
        WEBPOP_POLL_TICK_SECONDS="1",
        WEBPOP_HTTPS="false",
    )
    _manage(env, "collectstatic", "--noinput", "--verbosity", "0")  # gunicorn serves mail.js from the data dir
    account = dovecot_account(policy="keep")
    pop_user.deliver(build_message("Before the outage", "first", message_id="<before@x>"))
    port = get_port(None)
    base = f"http://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    worker_log, beat_log = logs / "worker.log", logs / "beat.log"

    def stored(subject: str) -> bool:
        return Message.objects.filter(account=account, subject=subject).exists()

    with contextlib.ExitStack() as stack:
        commands = _worker_beat_web(tmp_path, port)
        procs = stack.enter_context(processes.running(commands, env=env, cwd=processes.REPO, logs=logs))
        browser = stack.enter_context(chromium())
        # The ORM queries below run in Playwright's greenlet, on a connection of their own: close it here.
        stack.callback(db.connections.close_all)

        def wait(predicate, what: str, timeout: float = 60) -> None:
            _wait(predicate, what, procs, logs, timeout=timeout)

        wait(lambda: stored("Before the outage"), "the first sync")
        # Synced: the next regular poll is minutes away, so only "Check now" can bring the next message.
        assert MailAccount.objects.get(id=account.id).next_poll_at > timezone.now() + dt.timedelta(seconds=30)
        wait(lambda: "Connected to redis://" in worker_log.read_text(), "the worker's connection")

        context = new_context(browser, base, alice)
        inbox = context.new_page()
        inbox.clock.install()  # mail.js polls every 30 s: the test moves the page's clock instead of waiting
        inbox.goto(f"{base}/")
        assert "Before the outage" in inbox.locator("#message-list").inner_text()
        inbox.evaluate("window.sameDocument = true")

        # --- Redis goes away -------------------------------------------------------------------------
        redis.stop()
        down_since = time.monotonic()
        pop_user.deliver(build_message("During the outage", "second", message_id="<during@x>"))
        detail = context.new_page()
        detail.goto(f"{base}/accounts/{account.id}/")
        clicked = time.monotonic()
        detail.get_by_role("button", name="Check now").click()
        detail.wait_for_url(f"{base}/accounts/{account.id}/")
        assert "Checking" in detail.locator("body").inner_text()  # committed, the page answered
        assert time.monotonic() - clicked < 20
        detail.close()
        inbox.bring_to_front()
        # The sync could not be published: the account is due at once, for beat's first poll once Redis is back.
        assert MailAccount.objects.get(id=account.id).next_poll_at <= timezone.now()
        while time.monotonic() - down_since < 15:  # down for a while: beat's ticks fail, the worker retries
            assert all(proc.poll() is None for proc in procs.values())
            time.sleep(1)
        assert not stored("During the outage")  # nothing can wake the worker meanwhile
        lost_before = _count_lines(worker_log, "Connection to broker lost")
        assert lost_before >= 1, worker_log.read_text()[-3000:]

        # --- Redis is back, empty --------------------------------------------------------------------
        redis.start()
        wait(lambda: _count_lines(worker_log, "Connected to redis://") >= 2, "the worker to reconnect")
        wait(lambda: stored("During the outage"), "the sync of the message delivered during the outage")
        assert Message.objects.filter(account=account).count() == 2

        # The inbox left open notices the new mail at its next poll, without a reload.
        inbox.clock.run_for(31_000)
        inbox.locator("#message-list", has_text="During the outage").wait_for(timeout=30_000)
        assert inbox.evaluate("window.sameDocument") is True

        # No reconnect loop: with Redis up, the worker logs no more connection errors while beat ticks on.
        errors = _count_lines(worker_log, "Cannot connect to redis://")
        ticks = _count_lines(beat_log, "Sending due task")
        time.sleep(5)
        assert _count_lines(worker_log, "Cannot connect to redis://") == errors
        assert _count_lines(worker_log, "Connection to broker lost") == lost_before
        assert _count_lines(beat_log, "Sending due task") > ticks
        assert all(proc.poll() is None for proc in procs.values())
        context.close()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_send_made_while_redis_is_away_goes_out_once_after_it_returns(
    alice, settings, smtp_account, smtp_server, private_broker, tmp_path
):
    """Send is committed while Redis is down (its task cannot be published); once Redis is back, beat's
    sweep finds the message on its row and the worker sends it, once. The sweep takes a task as lost
    WEBPOP_SEND_REDISPATCH_SECONDS after the message fell due: a few seconds here."""
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import MailAccount, Profile
    from outgoing.models import OutgoingMessage, OutgoingState
    from tests.browser import session_cookie
    from tests.conftest import require_postgresql

    require_postgresql()
    redis = private_broker["redis"]
    account = smtp_account()
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 0})
    MailAccount.objects.update(next_poll_at=timezone.now() + dt.timedelta(days=1))  # no polls in the way
    env = processes.webpop_env(
        tmp_path / "data",
        REDIS_URL=private_broker["url"],
        WEBPOP_POP3_CA_FILE=settings.WEBPOP_POP3_CA_FILE,  # trusts the SMTP server's CA
        WEBPOP_POLL_TICK_SECONDS="1",
        WEBPOP_SEND_REDISPATCH_SECONDS="3",
        WEBPOP_HTTPS="false",
    )
    port = get_port(None)
    base = f"http://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    web = requests.Session()
    web.cookies.set(settings.SESSION_COOKIE_NAME, session_cookie(alice))

    def sent() -> bool:
        return OutgoingMessage.objects.filter(owner=alice, state=OutgoingState.SENT).exists()

    with processes.running(_worker_beat_web(tmp_path, port), env=env, cwd=processes.REPO, logs=logs) as procs:
        worker_log = logs / "worker.log"
        _wait(lambda: "Connected to redis://" in worker_log.read_text(), "the worker's connection", procs, logs)
        compose = f"{base}{reverse('outgoing:compose')}"
        _wait(lambda: _answers(web, compose), "the web server answers", procs, logs)

        redis.stop()
        down_since = time.monotonic()
        answer = web.post(
            compose,
            data={"csrfmiddlewaretoken": web.cookies["csrftoken"], "account": account.id, "to": "bob@example.net",
                  "subject": "Sent through an outage", "body": "Hi.", "action": "send"},
            headers={"Referer": compose}, allow_redirects=False, timeout=60,
        )  # fmt: skip
        assert answer.status_code == 302, answer.text[-2000:]
        assert OutgoingMessage.objects.get(owner=alice).state == OutgoingState.QUEUED  # committed, not sent
        while time.monotonic() - down_since < 10:
            assert all(proc.poll() is None for proc in procs.values())
            time.sleep(1)
        assert not sent() and smtp_server.received == []

        redis.start()
        _wait(sent, "the send after Redis is back", procs, logs)
        time.sleep(3)  # one more redispatch period: the sweep must not send it again
        assert [got.rcpt_tos for got in smtp_server.received] == [["bob@example.net"]]
        assert OutgoingMessage.objects.get(owner=alice).attempts == 1
        assert all(proc.poll() is None for proc in procs.values())


def _answers(web: requests.Session, url: str) -> bool:
    try:
        return web.get(url, timeout=5).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False


@pytest.mark.django_db
def test_a_check_now_whose_sync_cannot_be_published_makes_the_account_due_at_once(
    alice, monkeypatch, django_capture_on_commit_callbacks
):
    """Published, the sync is on its way and beat's poll is the fallback two minutes later; not published
    (WebpopTask returns None while the broker is away), the account is due for beat's first poll."""
    from django.utils import timezone

    from accounts.models import MailAccount
    from mailbox import actions, tasks
    from tests.factories import make_account

    account = make_account(alice)
    MailAccount.objects.filter(id=account.id).update(next_poll_at=timezone.now() + dt.timedelta(hours=1))
    monkeypatch.setattr(tasks.sync_account, "delay", lambda account_id: object())  # a result: published
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.sync_now(account)
    assert MailAccount.objects.get(id=account.id).next_poll_at > timezone.now() + dt.timedelta(minutes=1)

    monkeypatch.setattr(tasks.sync_account, "delay", lambda account_id: None)  # not published
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.sync_now(account)
    assert MailAccount.objects.get(id=account.id).next_poll_at <= timezone.now()
