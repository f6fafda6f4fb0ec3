"""Real webpop processes (Celery worker, beat) started as an operator starts them, on this test's database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

from webpop.lib import datadir

REPO = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """DATABASE_URL of the database this test runs on (pytest-django's test database)."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def webpop_env(
    data_dir: Path, *, base: dict[str, str] | None = None, redis: bool = True, **extra: str
) -> dict[str, str]:
    """The environment of a webpop process sharing this test's database, keys and (unless ``redis=False``: the
    folder queue under ``data_dir``) Redis."""
    env = dict(os.environ if base is None else base)
    for name in ("WEBPOP_TEST_CRASH_AT", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=database_url(),
        WEBPOP_DATA_DIR=str(data_dir),
        SECRET_KEY=settings.SECRET_KEY,
        WEBPOP_ENCRYPTION_KEYS=",".join(settings.WEBPOP_ENCRYPTION_KEYS),
        WEBPOP_POP3_ALLOW_PRIVATE="true",  # the test servers listen on loopback
    )
    if redis and settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    # The folders `manage.py initdata` makes (the keys are in the environment).
    datadir.initialize(data_dir, folder_queue=not env.get("REDIS_URL"))
    return {name: value for name, value in env.items() if value is not None}


@contextlib.contextmanager
def running(
    commands: dict[str, list[str]], *, env: dict[str, str], cwd: Path, logs: Path
) -> Iterator[dict[str, subprocess.Popen]]:
    """Start each named command (output to ``logs/<name>.log``); SIGTERM and wait for all of them at the end."""
    logs.mkdir(parents=True, exist_ok=True)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, argv in commands.items():
            with open(logs / f"{name}.log", "w") as log:
                procs[name] = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def log_tail(logs: Path, chars: int = 3000) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text()[-chars:]}" for path in sorted(logs.glob("*.log")))


def wait_until(
    predicate: Callable[[], bool], what: str, *, procs: dict[str, subprocess.Popen], logs: Path, timeout: float = 120
) -> None:
    """Until ``predicate()`` holds; fails at once, with the logs, when one of ``procs`` exits."""
    deadline = time.monotonic() + timeout
    while not predicate():
        dead = {name: proc.returncode for name, proc in procs.items() if proc.poll() is not None}
        if dead:
            raise AssertionError(f"{dead} exited while waiting for {what}\n{log_tail(logs)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{log_tail(logs)}")
        time.sleep(0.3)
