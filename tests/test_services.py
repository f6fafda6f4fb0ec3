"""The test run's own servers (tests/services.py): started when the environment names none, stopped after.

Each test runs pytest on a small test of its own, in a subprocess with the environment it is about.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from tests.services import find_executable

REPO = Path(__file__).resolve().parent.parent

INNER = """
import json, os

import psycopg
import redis
from django.conf import settings


def test_report():
    db = settings.DATABASES["default"]
    seen = {"engine": db["ENGINE"], "redis_url": settings.REDIS_URL, "data_dir": str(settings.DATA_DIR)}
    if db["ENGINE"].endswith("postgresql"):
        with psycopg.connect(host=db["HOST"], port=int(db["PORT"]), user=db["USER"], dbname=db["NAME"]) as conn:
            seen["data_directory"] = conn.execute("SHOW data_directory").fetchone()[0]
            seen["fsync"] = conn.execute("SHOW fsync").fetchone()[0]
        seen["postgresql_port"] = int(db["PORT"])
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        assert client.ping()
        seen["redis_port"] = client.connection_pool.connection_kwargs["port"]
    with open(os.environ["WEBPOP_SERVICES_REPORT"], "w") as out:
        json.dump(seen, out)
"""


def run_inner(tmp_path: Path, *args: str, **env: str) -> dict:
    test = tmp_path / "test_inner.py"
    test.write_text(INNER)
    report = tmp_path / "report.json"
    ours = {"DATABASE_URL", "REDIS_URL", "WEBPOP_DATA_DIR"}  # and this run's xdist worker, if it is one
    environ = {k: v for k, v in os.environ.items() if k not in ours and not k.startswith("PYTEST_XDIST_")}
    environ.update(env, WEBPOP_SERVICES_REPORT=str(report))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO),
         "-p", "no:cacheprovider", *args, str(test)],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(report.read_text()) | {"output": result.stdout}


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_run_without_database_or_redis_urls_starts_its_own_servers_and_stops_them(tmp_path):
    seen = run_inner(tmp_path)

    assert seen["engine"] == "django.db.backends.postgresql"
    folder = Path(seen["data_directory"]).parents[1]  # <run folder>/postgresql/data
    assert folder.name.startswith("webpop-test-")
    assert seen["fsync"] == "off"  # a throwaway cluster
    assert seen["redis_url"] == f"redis://127.0.0.1:{seen['redis_port']}/0"
    assert Path(seen["data_dir"]).parent == folder  # not ./var, which `make run` uses
    assert "private servers: Redis on 127.0.0.1" in seen["output"]
    # Gone when the run ends: the servers and their folder.
    assert refuses(seen["postgresql_port"]) and refuses(seen["redis_port"])
    assert not folder.exists()


def test_test_workers_share_the_run_s_servers_each_with_a_redis_database_of_its_own(tmp_path):
    seen = run_inner(tmp_path, "-n", "1")

    assert seen["redis_url"] == f"redis://127.0.0.1:{seen['redis_port']}/1"  # gw0: database 0 is the run's
    assert Path(seen["data_directory"]).parents[1].name.startswith("webpop-test-")  # started once, by the run
    assert refuses(seen["postgresql_port"]) and refuses(seen["redis_port"])


def test_urls_that_are_set_are_used_as_given_and_nothing_is_started(tmp_path):
    data_dir = tmp_path / "data"
    seen = run_inner(
        tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", REDIS_URL="", WEBPOP_DATA_DIR=str(data_dir)
    )

    assert seen["engine"] == "django.db.backends.sqlite3"
    assert seen["redis_url"] is None  # empty: the folder queue, as `make run` has it
    assert seen["data_dir"] == str(data_dir)
    assert "private servers" not in seen["output"]


def test_a_missing_server_program_is_a_usage_error_that_says_how_to_install_it():
    with pytest.raises(pytest.UsageError, match=r"make system-deps.*package redis-server"):
        find_executable(["no-such-redis-server", "/nonexistent/redis-server"], "Redis", "redis-server")


def test_a_missing_service_fails_the_test_and_never_skips_it():
    try:
        require(False, "Dovecot", "`make system-deps` installs it")
    except BaseException as exc:  # a skip is a BaseException too
        outcome = exc
    assert type(outcome) is pytest.fail.Exception
    assert str(outcome) == "Dovecot is required but not available: `make system-deps` installs it."
