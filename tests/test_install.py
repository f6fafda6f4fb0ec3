"""The production install is what these tests prove, not the development one.

A fresh virtualenv gets only what an install recipe installs (requirements.txt alone, as README,
docs/deployment.md and the systemd units say; and the Dockerfile's install step as written), then runs
webpop's processes from it on Redis and PostgreSQL: the web application loads under gunicorn, beat
ticks, and the worker runs what beat enqueues (a poll, the sync it starts against Dovecot, the search
indexing that sync enqueues). Recipes that install the same thing share one virtualenv and one run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mailbox.models import Message
from ops.models import SchedulerLease, WorkerHeartbeat
from tests import installs
from tests.conftest import require_postgresql, require_redis
from tests.factories import build_message
from tests.processes import REPO, log_tail, running, wait_until, webpop_env
from webpop.celery import app as celery_app


def install_test(test):
    """The slow install tests: a fresh virtualenv (pip's cache keeps repeat runs short) and real processes."""
    for mark in (pytest.mark.install, pytest.mark.dovecot, pytest.mark.django_db(transaction=True)):
        test = mark(test)
    return test


class Installs:
    """Virtualenvs built this session, by recipe key, and the keys whose processes were seen working."""

    def __init__(self, root: Path):
        self.root = root
        self.venvs: dict[str, Path] = {}
        self.proven: set[str] = set()

    def venv(self, recipe: installs.Recipe) -> Path:
        key = recipe.key()
        if key not in self.venvs:
            self.venvs[key] = installs.build(recipe, self.root / key)
        return self.venvs[key]


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Installs:
    return Installs(tmp_path_factory.mktemp("installs"))


@pytest.fixture
def prove(built, tmp_path, pop_user, dovecot_account, dovecot):
    """prove(recipe): install it and see webpop's web, worker and beat work from that virtualenv alone."""
    require_redis()
    require_postgresql()

    def run(recipe: installs.Recipe) -> None:
        key = recipe.key()
        venv = built.venv(recipe)
        if key in built.proven:
            return  # the same install ran worker and beat earlier in this session
        data_dir, logs = tmp_path / "data", tmp_path / "logs"
        env = webpop_env(
            data_dir,
            base=installs.clean_env(venv),
            WEBPOP_POLL_TICK_SECONDS="1",
            WEBPOP_HEARTBEAT_SECONDS="1",
            WEBPOP_POP3_CA_FILE=str(dovecot.ca_file),
        )
        bin_dir = venv / "bin"

        web = subprocess.run(
            [bin_dir / "gunicorn", "--check-config", "webpop.wsgi"], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert web.returncode == 0, web.stdout + web.stderr  # gunicorn loaded webpop's WSGI application

        pop_user.deliver(build_message("From the production install", "Fetched by a worker of requirements.txt"))
        account = dovecot_account()  # due for its first poll now
        celery_app.control.purge()  # tasks left by other tests must not run in these processes
        hostname = f"install-{key}@here"
        commands = {
            "worker": [bin_dir / "celery", "-A", "webpop", "worker", "--loglevel", "INFO", "--concurrency", "1",
                       "--hostname", hostname],
            "beat": [bin_dir / "celery", "-A", "webpop", "beat", "--loglevel", "INFO",
                     "--schedule", data_dir / "celerybeat-schedule"],
        }  # fmt: skip
        with running(commands, env=env, cwd=REPO, logs=logs) as procs:
            wait_until(
                lambda: Message.objects.filter(account=account, subject="From the production install").exists(),
                "beat's poll and the worker's sync to store the message",
                procs=procs,
                logs=logs,
            )
            wait_until(
                lambda: not Message.objects.filter(account=account, search_document__isnull=True).exists(),
                "the search indexing the sync enqueued",
                procs=procs,
                logs=logs,
            )
            assert WorkerHeartbeat.objects.filter(hostname=hostname).exists()
            assert SchedulerLease.objects.exclude(holder="").exists()  # beat ticked holding the beat lease
        worker_log = (logs / "worker.log").read_text()
        assert "transport:   redis://" in worker_log, log_tail(logs)
        assert "Traceback" not in log_tail(logs, chars=10**6), log_tail(logs)
        built.proven.add(key)

    return run


@install_test
def test_the_documented_install_runs_worker_and_beat_on_redis(prove):
    prove(installs.documented())


@install_test
def test_the_dockerfile_install_runs_worker_and_beat_on_redis(prove):
    recipe = installs.dockerfile()
    assert "requirements.txt" in recipe.files
    prove(recipe)


def test_the_dockerfile_recipe_is_what_the_dockerfile_says(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# a comment\n"
        "FROM python:3.12-slim\n"
        "ENV PIP_NO_CACHE_DIR=1 \\\n"
        "    PIP_NO_DEPS=1 WEBPOP_DATA_DIR=/srv\n"
        "COPY requirements.txt requirements-dev.txt ./\n"
        "RUN apt-get update && pip install --no-deps -r requirements.txt \\\n"
        "    && useradd webpop\n"
        "COPY . .\n"
        "RUN python -m pip install gunicorn\n"
    )
    recipe = installs.dockerfile(dockerfile)
    assert recipe.python == "3.12"
    assert recipe.pip_env == {"PIP_NO_DEPS": "1"}  # what is installed, not how fast
    assert recipe.commands == ("pip install --no-deps -r requirements.txt", "python -m pip install gunicorn")
    assert "webpop/settings.py" in recipe.files  # the second install runs after COPY . .

    documented = installs.documented()
    dockerfile.write_text(
        f"FROM python:{documented.python}\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n"
    )
    assert installs.dockerfile(dockerfile).key() == documented.key()  # one virtualenv for both
    dockerfile.write_text("FROM debian:bookworm\nRUN pip install -r requirements.txt\n")
    with pytest.raises(AssertionError, match="not an official python image"):
        installs.dockerfile(dockerfile)
