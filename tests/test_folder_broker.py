"""The folder queue (no REDIS_URL): a worker and beat started from a checkout keep every broker file under
WEBPOP_DATA_DIR and write nothing into the repository."""

from __future__ import annotations

import socket
import sys

import pytest

from accounts.models import MailAccount
from tests.conftest import require_postgresql
from tests.factories import make_account
from tests.processes import REPO, running, wait_until, webpop_env

pytestmark = pytest.mark.django_db(transaction=True)

# Written by tools while the tests run (this very pytest, ruff, Python itself), never by webpop.
_NOT_OURS = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".venv", "test-artifacts"}


def _repository_files() -> dict[str, tuple[int, int]]:
    found = {}
    for path in REPO.rglob("*"):
        parts = path.relative_to(REPO).parts
        if _NOT_OURS.intersection(parts) or not path.is_file():
            continue
        stat = path.stat()
        found["/".join(parts)] = (stat.st_mtime_ns, stat.st_size)
    return found


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_worker_and_beat_from_a_checkout_write_nothing_into_it(alice, tmp_path):
    require_postgresql()
    # Nothing listens there: the sync beat's poll starts fails fast, and its attempt is on the row.
    account = make_account(alice, host="127.0.0.1", port=_closed_port(), security="none")
    data_dir = tmp_path / "data"
    env = webpop_env(data_dir, REDIS_URL=None, WEBPOP_POLL_TICK_SECONDS="1", PYTHONDONTWRITEBYTECODE="1")
    before = _repository_files()
    celery = [sys.executable, "-m", "celery", "-A", "webpop"]
    commands = {
        "worker": [*celery, "worker", "--pool", "solo", "--hostname", "folder@here", "--loglevel", "INFO"],
        "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", str(data_dir / "celerybeat-schedule")],
    }
    with running(commands, env=env, cwd=REPO, logs=tmp_path / "logs") as procs:
        # The attempt is written when the sync starts and its outcome when it ends: wait for the outcome.
        wait_until(
            lambda: MailAccount.objects.get(id=account.id).last_error_class != "",
            "beat's poll to reach the worker and the worker's try of the account to end",
            procs=procs,
            logs=tmp_path / "logs",
        )
    tried = MailAccount.objects.get(id=account.id)
    assert tried.last_attempt_at is not None and tried.last_error_class == "refused"
    after = _repository_files()
    assert {name: after.get(name) for name in before.keys() | after.keys() if before.get(name) != after.get(name)} == {}
    assert sorted(p.name for p in (data_dir / "broker" / "control").iterdir()) == [
        "celery.exchange",
        "celery.pidbox.exchange",
    ]
