"""Shared plumbing for the benchmarks: throwaway PostgreSQL databases, child
processes that are always stopped, and cleanup that runs even on failure."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_url(name: str) -> str:
    """DATABASE_URL for a database on the benchmark's PostgreSQL server."""
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgres://", 1)
    return f"{base}/{name}"


def _pg_exec(*statements: str) -> None:
    """Run statements on the benchmark's PostgreSQL server outside a transaction (CREATE DATABASE, say)."""
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def create_database(name: str, *, template: str = "") -> None:
    """A fresh database ``name`` (dropped first if it exists), a copy of ``template`` if given."""
    copy = f' TEMPLATE "{template}"' if template else ""
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"{copy}')


def drop_database(name: str) -> None:
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Cleanup:
    """A LIFO list of cleanup actions run once: at close(), at interpreter exit,
    or when SIGTERM/SIGHUP arrive (turned into SystemExit so finally blocks run)."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], object]]] = []
        self._done = False
        atexit.register(self.close)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    @staticmethod
    def _on_signal(signum, _frame) -> None:
        raise SystemExit(128 + signum)

    def add(self, what: str, action: Callable[[], object]) -> None:
        self._actions.append((what, action))

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        while self._actions:
            what, action = self._actions.pop()
            try:
                action()
            except Exception as exc:  # keep cleaning up the rest
                print(f"cleanup of {what} failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def __enter__(self) -> Cleanup:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def stop_group(proc: subprocess.Popen, *, term_timeout: float = 20.0) -> None:
    """Stop a child started with start_new_session=True and everything in its
    process group: SIGTERM, then SIGKILL after term_timeout."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=term_timeout)
    # Children (e.g. Celery's pool processes) may outlive the leader briefly.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def run_checked(cmd: list[str], *, env: dict, cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a child to completion; raise with its stderr if it fails. Returns stdout."""
    proc = subprocess.run(cmd, env=env, cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:4])} … failed with status {proc.returncode}:\n{proc.stderr[-3000:]}{proc.stdout[-1000:]}"
        )
    return proc.stdout


def run_json(cmd: list[str], *, env: dict, cwd: Path | None = None, timeout: float = 600) -> tuple[dict, float]:
    """Run a child that prints one JSON line last; return (that JSON, wall seconds)."""
    import json

    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:3])} … failed with status {proc.returncode}:\n{proc.stderr[-3000:]}{proc.stdout[-1000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd[:3])} … printed no result:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads(lines[-1]), wall


def base_env() -> dict[str, str]:
    """The environment for children, without settings that could leak in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBPOP_", "DJANGO_"))}
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PYTHONPATH"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    # A benchmark's throwaway data folder has no key files (`manage.py initdata` makes them for a real
    # one): the run's own keys, the same for every child process, come from the environment instead.
    env["SECRET_KEY"], env["WEBPOP_ENCRYPTION_KEYS"] = _run_keys()
    return env


@functools.lru_cache(maxsize=1)
def _run_keys() -> tuple[str, str]:
    import secrets

    from cryptography.fernet import Fernet

    return secrets.token_urlsafe(50), Fernet.generate_key().decode()


def python_speed_ms() -> float:
    """This machine's single-core Python speed: ms for a fixed pure-Python loop, best of five.

    Figures taken on different days ran on machines whose speed differs by half or more: printed with a
    table, it tells a slower machine from slower code.
    """
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.process_time() - start)
    return best * 1000


# --- Reading /proc (Linux): a process's CPU time and memory -------------------------------------


def proc_stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, ...); OSError when it is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | str, *, waited_children: bool = False) -> float:
    """User + system CPU seconds of a process (with ``waited_children``, of the children it has waited for too).

    OSError when it is gone.
    """
    fields = proc_stat(pid)
    ticks = fields[11:15] if waited_children else fields[11:13]  # utime stime [cutime cstime]
    return sum(int(tick) for tick in ticks) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, all its threads together."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime, own.ru_stime


def status_kb(pid: int | str, field: str) -> int:
    """A figure of ``/proc/PID/status`` in kB (``VmRSS``; ``VmHWM``, the peak RSS); 0 when it is gone."""
    return _kb_line(Path(f"/proc/{pid}/status"), field)


def pss_kb(pid: int | str) -> int:
    """Proportional set size: shared pages (a prefork child's copy-on-write pages) counted once across
    the processes sharing them, so a sum over processes is what they use together, unlike RSS."""
    return _kb_line(Path(f"/proc/{pid}/smaps_rollup"), "Pss")


def _kb_line(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int | str) -> list[int]:
    """The child processes of every thread of ``pid`` ([] when it is gone)."""
    pids = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                pids += [int(child) for child in (task / "children").read_text().split()]
    except OSError:
        pass
    return pids
