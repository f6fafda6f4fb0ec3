"""PostgreSQL and Redis outages against a real web server (gunicorn) on servers of this test's own.

The web process runs on a private PostgreSQL and a private Redis, started here so stopping
them hurts no other test. While PostgreSQL is down a page answers the styled 503 with
Retry-After and /readyz 503; once it is back the same process answers 200 (no restart), and a
connection kept from before a restart is checked before it is reused (CONN_HEALTH_CHECKS: without
it the first page after the restart would fail). A Celery worker keeps running tasks too.
While Redis is down, sign-in and the inbox still answer 200 from the database, and /readyz
says 503 (the broker is part of readiness, docs/deployment.md).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
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
    folder = Path(tempfile.mkdtemp(prefix="webpop-outage-"))
    stops = []
    try:
        redis, redis_port = services.private_redis(folder / "redis")
        stops.append(redis)
        postgres, pg_port = services.private_postgresql(folder)
        stops.append(postgres)
        yield {
            "folder": folder,
            "postgres": postgres,
            "redis": redis,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/{services.DATABASE}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        }
    finally:
        for executor in reversed(stops):
            if executor.running():
                executor.stop()
        shutil.rmtree(folder, ignore_errors=True)


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
        except requests.ConnectionError:
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
