"""A private, real rspamd (and the Redis its Bayes statistics live in) for tests and benchmarks.

Plain Python (no Django), like tests/dovecot.py:

    with RspamdServer(tmp_path / "rspamd") as server:
        server.url, server.controller_url, server.password

rspamd runs from Debian's configuration (/etc/rspamd) with a local configuration folder of its
own: webpop's shipped snippets (deploy/rspamd/local.d), then the test's: free loopback ports, a
password the controller insists on (no address is trusted without it), its own Redis, few
learns before Bayes decides, and no module that asks the network (DNS lists, SPF, DKIM, DMARC,
fuzzy hashes, remote maps): the test machine has none. ``stop()`` and ``start()`` simulate an
outage on the same ports with the same statistics. ``checks`` turns some of those modules back on
(DKIM, DMARC, SPF) with ``nameserver`` a DNS server of the test's own (tests/dnsserver.py).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "deploy" / "rspamd" / "local.d"
HS_CACHE = Path(tempfile.gettempdir()) / "webpop-rspamd-hyperscan"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

# Modules that look things up on the network, and those that keep state in Redis we do not test.
OFFLINE = [
    "arc", "asn", "dcc", "dkim", "dmarc", "fuzzy_check", "greylist", "history_redis", "mid", "mime_types", "multimap",
    "mx_check", "neural", "phishing", "ratelimit", "rbl", "replies", "reputation", "rspamd_update", "spf", "surbl",
    "url_redirector", "whitelist",
]  # fmt: skip


def available() -> bool:
    return shutil.which("rspamd") is not None and shutil.which("redis-server") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphan outlives pytest


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
            return answer.read().startswith(b"pong")
    except OSError:
        return False


class RspamdServer:
    def __init__(
        self, base: Path, *, workers: int = 1, min_learns: int = 3, nice: int = 0, checks: tuple[str, ...] = (),
        nameserver: str = "",
    ) -> None:  # fmt: skip
        self.base = Path(base).resolve()
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.controller_port = _free_port()
        self.redis_port = _free_port()
        self.password = "rspamd-test-" + os.urandom(6).hex()
        self.workers = workers
        self.min_learns = min_learns
        self.checks = checks
        self.nameserver = nameserver
        self.nice = nice  # CPU priority below webpop's (a benchmark: as an operator would run it beside webpop)
        self._redis: subprocess.Popen | None = None
        self._proc: subprocess.Popen | None = None
        # rspamd's workers drop root for _rspamd (Debian's user); everything they write is in here.
        self.folder = Path(tempfile.mkdtemp(prefix="webpop-rspamd-", dir="/tmp"))
        self.folder.chmod(0o755)
        self._write_config()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def controller_url(self) -> str:
        return f"http://{HOST}:{self.controller_port}"

    @property
    def log_file(self) -> Path:
        return self.base / "rspamd.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        conf = self.folder / "conf"
        local, override = conf / "local.d", conf / "override.d"
        for folder in (local, override, self.folder / "db", self.folder / "run"):
            folder.mkdir(parents=True, exist_ok=True)
        for shipped in SHIPPED.glob("*"):
            if shipped.name != "worker-controller.inc":  # its placeholder hash is replaced below
                shutil.copy(shipped, local / shipped.name)
        files = {
            local / "worker-normal.inc": f'bind_socket = "{HOST}:{self.port}";\ncount = {self.workers};\n',
            local / "worker-controller.inc": (
                f'bind_socket = "{HOST}:{self.controller_port}";\n'
                f'password = "{self.password}";\nenable_password = "{self.password}";\n'
                "secure_ip = null;\n"  # Debian trusts 127.0.0.1 without a password; webpop sends one
            ),
            override / "worker-proxy.inc": "count = 0;\n",
            local / "redis.conf": f'servers = "{HOST}:{self.redis_port}";\n',
            override / "classifier-bayes.conf": (
                f'servers = "{HOST}:{self.redis_port}";\nmin_learns = {self.min_learns};\n'
            ),
            # Compiled Hyperscan databases (named by their content's hash) are kept for the next run: compiling
            # them takes rspamd half a minute of CPU, and the first start waits for part of it.
            local / "options.inc": f'hs_cache_dir = "{HS_CACHE}";\n' + self._dns(),
            local / "logging.inc": 'type = "console";\nlevel = "warning";\n',
        }
        files.update({local / f"{name}.conf": "enabled = false;\n" for name in OFFLINE if name not in self.checks})
        for path, text in files.items():
            path.write_text(text)
        HS_CACHE.mkdir(mode=0o755, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("_rspamd")
            for folder in (self.folder / "db", self.folder / "run", HS_CACHE):
                os.chown(folder, user.pw_uid, user.pw_gid)

    def _dns(self) -> str:
        if not self.nameserver:
            return ""
        return f'dns {{\n  nameserver = ["{self.nameserver}"];\n  timeout = 1s;\n  retransmits = 2;\n}}\n'

    def _argv(self) -> list[str]:
        folder = self.folder
        argv = [
            *(["nice", "-n", str(self.nice)] if self.nice else []),
            shutil.which("rspamd") or "rspamd",
            "-f",
            "-c",
            "/etc/rspamd/rspamd.conf",
            f"--var=LOCAL_CONFDIR={folder / 'conf'}",
            f"--var=DBDIR={folder / 'db'}",
            f"--var=RUNDIR={folder / 'run'}",
            f"--var=LOGDIR={folder / 'run'}",
        ]
        if os.geteuid() == 0:
            argv += ["-u", "_rspamd", "-g", "_rspamd"]
        return argv

    def start(self) -> None:
        """Start Redis (once) and rspamd; return when the worker and the controller answer /ping."""
        if self._redis is None or self._redis.poll() is not None:
            self._redis = subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--bind", HOST, "--port", str(self.redis_port),
                 "--save", "", "--appendonly", "no", "--dir", str(self.base)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        if self.running:
            return
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                self._argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        waiting = [self.url, self.controller_url]
        while waiting:
            if self._proc.poll() is not None:
                raise RuntimeError(f"rspamd exited with {self._proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rspamd did not answer within {START_TIMEOUT:g} s:\n{self.log_tail()}")
            if _answers(waiting[0]):
                waiting.pop(0)
            else:
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop rspamd and all its workers (Redis, and so the statistics, stay)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def forget(self) -> None:
        """Empty the Bayes statistics (each test trains its own)."""
        with socket.create_connection((HOST, self.redis_port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            if not sock.recv(64).startswith(b"+OK"):
                raise RuntimeError("Redis did not flush")

    def close(self) -> None:
        self.stop()
        redis, self._redis = self._redis, None
        if redis is not None and redis.poll() is None:
            redis.terminate()
            redis.wait(timeout=15)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> RspamdServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
