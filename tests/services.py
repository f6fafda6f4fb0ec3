"""Private PostgreSQL and Redis servers for a test run (a pytest plugin: ``-p tests.services`` in pyproject.toml).

Django reads ``DATABASE_URL`` and ``REDIS_URL`` when its settings are imported, which
pytest-django does while pytest starts up. So the servers start before that, in
``pytest_load_initial_conftests``, each in a temporary folder on a free port of 127.0.0.1,
and their URLs go into the environment (which the tests' own subprocesses inherit). They
stop, and the folder is removed, when pytest ends.

With pytest-xdist (``make test`` runs ``-n``) the servers start once, in the controlling
process, and its workers inherit their URLs: pytest-django gives each worker a test database
of its own, and each worker takes a Redis database of its own (``gw0`` database 1, ``gw1``
database 2, ...), so a test's Celery worker never takes another test run's tasks.

A variable that is set is used as given and nothing is started for it:
``DATABASE_URL=sqlite:///…`` runs on SQLite, ``REDIS_URL=`` (empty) runs without Redis, as
``make run`` does. ``WEBPOP_DATA_DIR``, when unset, is a folder of the run's own too, so a
test run never touches the ``./var`` of ``make run``.

The servers are Debian's (``make system-deps`` installs them), started through
pytest-postgresql's and pytest-redis's executors. PostgreSQL refuses to run as root, so
as root its ``pg_ctl`` runs as the ``postgres`` user on a folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL_HINT = "`make system-deps` installs it (Debian package {package})"
# A throwaway cluster: nothing in it has to survive a crash of the machine.
POSTGRES_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
DATABASE = "webpop"


@dataclass
class Started:
    """What this plugin started for the run (pytest's header names it)."""

    folder: Path | None = None
    services: list[str] = field(default_factory=list)


started_key = pytest.StashKey[Started]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser, args):
    # A wrapper: runs before every other implementation, pytest-django's (which imports the settings) included.
    namespace = early_config.known_args_namespace
    if not (namespace.help or namespace.version):
        early_config.stash[started_key] = start_missing(early_config)
    return (yield)


def pytest_report_header(config: pytest.Config) -> list[str]:
    started = config.stash.get(started_key, None)
    if started is None or not started.services:
        return []
    return [f"private servers: {', '.join(started.services)} (in {started.folder})"]


def start_missing(config: pytest.Config) -> Started:
    """Start what the environment does not name; register their stop with ``config``."""
    started = Started()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # the controller started the servers: only this worker's Redis database is its own
        if os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = worker_redis_url(os.environ["REDIS_URL"], worker)
        prepare_data_dir(config)
        return started
    missing = [name for name in ("DATABASE_URL", "REDIS_URL", "WEBPOP_DATA_DIR") if name not in os.environ]
    if not missing:
        prepare_data_dir(config)
        return started
    folder = Path(tempfile.mkdtemp(prefix="webpop-test-"))
    started.folder = folder
    # Cleanups run last-registered first: servers stop, then the folder goes, then the environment is restored.
    config.add_cleanup(lambda: _unset(missing))
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    if "WEBPOP_DATA_DIR" in missing:
        os.environ["WEBPOP_DATA_DIR"] = str(folder / "data")
    if "REDIS_URL" in missing:
        port = start_redis(config, folder / "redis")
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        started.services.append(f"Redis on 127.0.0.1:{port}")
    if "DATABASE_URL" in missing:
        port = start_postgresql(config, folder)
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/{DATABASE}"
        started.services.append(f"PostgreSQL on 127.0.0.1:{port}")
    prepare_data_dir(config)
    return started


def worker_redis_url(url: str, worker: str) -> str:
    """``url`` with the Redis database of xdist worker ``worker`` (``gw0`` -> 1): the run's own database 0 is
    the controller's. A Redis server has 16 databases unless configured otherwise."""
    from urllib.parse import urlsplit, urlunsplit

    index = int(worker.removeprefix("gw")) + 1
    if index > 15:
        raise pytest.UsageError(f"at most 15 test workers share one Redis server ({worker} is one more)")
    return urlunsplit(urlsplit(url)._replace(path=f"/{index}"))


def prepare_data_dir(config: pytest.Config) -> None:
    """What ``manage.py initdata`` does, before the settings read the keys; then the keys go into the environment,
    as an orchestrator passes them, so a test's own webpop processes with a fresh data dir share them."""
    from webpop.lib import datadir

    data_dir = Path(os.environ.get("WEBPOP_DATA_DIR") or Path(__file__).resolve().parent.parent / "var").resolve()
    datadir.initialize(data_dir, folder_queue=not os.environ.get("REDIS_URL"))
    for variable, file_name, _generate in datadir.KEYS:
        if not os.environ.get(variable) and not os.environ.get(f"{variable}_FILE"):
            os.environ[variable] = (data_dir / file_name).read_text().strip()
            config.add_cleanup(lambda variable=variable: os.environ.pop(variable, None))


def _unset(names: list[str]) -> None:
    for name in names:
        os.environ.pop(name, None)


def start_redis(config: pytest.Config, folder: Path) -> int:
    executor, port = private_redis(folder)
    config.add_cleanup(executor.stop)
    return port


def private_redis(folder: Path):
    """A Redis server of its own in ``folder`` (created): (executor, port); ``stop()`` and ``start()`` again."""
    from port_for import get_port
    from pytest_redis.executor import RedisExecutor

    executable = find_executable(["redis-server"], "Redis", "redis-server")
    folder.mkdir()
    port = get_port(None)
    executor = RedisExecutor(
        executable=executable,
        databases=16,
        redis_timeout=0,  # never drop idle clients (a worker's pool), like a default Redis
        loglevel="warning",
        host="127.0.0.1",
        port=port,
        datadir=folder,
    )
    executor.start()
    return executor, port


def start_postgresql(config: pytest.Config, folder: Path) -> int:
    executor, port = private_postgresql(folder)
    config.add_cleanup(executor.stop)
    return port


def private_postgresql(folder: Path):
    """A PostgreSQL server of its own in ``folder``, with an empty ``webpop`` database: (executor, port).

    ``executor.stop()`` shuts it down fast and ``executor.start()`` starts it again on the same data.
    """
    import psycopg
    from port_for import get_port
    from pytest_postgresql.executors import PostgreSQLExecutor

    pg_ctl = find_executable(
        ["pg_ctl", *sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=_version, reverse=True)],
        "PostgreSQL's server (pg_ctl)",
        "postgresql",
    )
    server = folder / "postgresql"
    server.mkdir()
    if os.geteuid() == 0:
        pg_ctl = _pg_ctl_as_postgres(pg_ctl, folder, server)
    port = get_port(None)
    executor = PostgreSQLExecutor(
        executable=pg_ctl,
        host="127.0.0.1",
        port=port,
        datadir=str(server / "data"),
        unixsocketdir=str(server),
        logfile=str(server / "server.log"),
        startparams="-w",
        dbname=DATABASE,
        postgres_options=POSTGRES_OPTIONS,
    )
    executor.start()
    # The executor returns once the port accepts connections; `pg_ctl start -w` exits when the server takes queries.
    if executor.process.wait(timeout=120) != 0:
        log = (server / "server.log").read_text(errors="replace")
        raise pytest.UsageError(f"PostgreSQL did not start:\n{log}")
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return executor, port


def _pg_ctl_as_postgres(pg_ctl: str, folder: Path, server: Path) -> str:
    """A ``pg_ctl`` that runs the real one as the ``postgres`` user, which owns ``server``."""
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise pytest.UsageError(
            "PostgreSQL refuses to run as root and there is no `postgres` user to run it as: "
            + INSTALL_HINT.format(package="postgresql")
        ) from None
    folder.chmod(0o711)  # the postgres user passes through to its own folder, and sees nothing else here
    os.chown(server, user.pw_uid, user.pw_gid)
    server.chmod(0o700)
    wrapper = folder / "pg_ctl"
    wrapper.write_text(f'#!/bin/sh\ncd / && exec runuser -u postgres -- {shlex.quote(pg_ctl)} "$@"\n')
    wrapper.chmod(0o700)
    return str(wrapper)


def find_executable(candidates: list, what: str, package: str) -> str:
    """The first candidate (a name on PATH or a path) that exists; a clear failure when none does."""
    for candidate in candidates:
        found = shutil.which(str(candidate))
        if found:
            return found
    raise pytest.UsageError(
        f"{what} is not installed: {INSTALL_HINT.format(package=package)}; "
        "or name a server of yours in DATABASE_URL / REDIS_URL."
    )


def _version(pg_ctl: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin/pg_ctl
    return tuple(int(part) for part in pg_ctl.parent.parent.name.split(".") if part.isdigit())


@contextlib.contextmanager
def private_servers(prefix: str) -> Iterator[dict]:
    """A PostgreSQL and a Redis of the caller's own, in a temporary folder, for tests that stop and start them."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    stops = []
    try:
        redis, redis_port = private_redis(folder / "redis")
        stops.append(redis)
        postgres, pg_port = private_postgresql(folder)
        stops.append(postgres)
        yield {
            "folder": folder,
            "postgres": postgres,
            "redis": redis,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/{DATABASE}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        }
    finally:
        for executor in reversed(stops):
            if executor.running():
                executor.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def small_tmpfs(mount_point: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` mounted on ``mount_point``: a small real file system to fill up (needs root)."""
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(
            f"mounting a {size_kb} KB tmpfs failed ({done.stderr.strip()}): this test needs root "
            "(or CAP_SYS_ADMIN) to give the mail store a small real file system; run it as root, as CI does"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)
