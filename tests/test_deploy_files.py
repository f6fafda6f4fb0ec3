"""The deployment files hold together: compose services and roles, systemd units, the health check."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import require

REPO = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _entrypoint_roles() -> set[str]:
    script = (REPO / "deploy" / "docker-entrypoint.sh").read_text()
    return set(re.findall(r"^  ([a-z]+)\)$", script, re.M))


def test_compose_runs_web_two_workers_one_beat_postgres_and_redis(compose):
    services = compose["services"]
    assert set(services) == {"web", "worker", "beat", "postgres", "redis"}
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["beat"]["deploy"]["replicas"] == 1
    assert {services[name]["command"][0] for name in APP_SERVICES} == {"web", "worker", "beat"} <= _entrypoint_roles()


def test_compose_app_services_share_database_broker_keys_and_mail_store(compose):
    services = compose["services"]
    environments = [services[name]["environment"] for name in APP_SERVICES]
    for key in ("DATABASE_URL", "REDIS_URL", "WEBPOP_DATA_DIR"):
        assert len({env[key] for env in environments}) == 1, key
    assert environments[0]["REDIS_URL"].startswith("redis://redis:")
    assert "@postgres:5432/" in environments[0]["DATABASE_URL"]
    assert {tuple(services[name]["volumes"]) for name in APP_SERVICES} == {("webpop-data:/srv/webpop",)}
    assert {services[name]["env_file"] for name in APP_SERVICES} == {".env"}  # SECRET_KEY, encryption keys
    # Workers and beat wait for web, which migrates first.
    assert services["worker"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["web"]["healthcheck"]["test"] == ["CMD", "python", "deploy/healthcheck.py"]


def test_the_entrypoint_is_valid_shell():
    assert subprocess.run(["sh", "-n", str(REPO / "deploy" / "docker-entrypoint.sh")]).returncode == 0
    assert os.access(REPO / "deploy" / "docker-entrypoint.sh", os.X_OK)


def test_systemd_units_verify(tmp_path):
    require(
        shutil.which("systemd-analyze") is not None,
        "systemd-analyze",
        "`make system-deps` installs it (Debian package systemd)",
    )
    # Point the units at this checkout and its virtualenv instead of /opt/webpop.
    venv_bin = Path(sys.executable).parent
    (tmp_path / "opt" / ".venv").mkdir(parents=True)
    (tmp_path / "opt" / ".venv" / "bin").symlink_to(venv_bin)
    units = []
    for unit in sorted((REPO / "deploy" / "systemd").glob("*.service")):
        text = unit.read_text().replace("/opt/webpop", str(tmp_path / "opt"))
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
        units.append(str(tmp_path / name))
    if any("@1.service" in u for u in units):  # an instance needs its template next to it
        for unit in (REPO / "deploy" / "systemd").glob("*@.service"):
            (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/webpop", str(tmp_path / "opt")))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, cwd=tmp_path
    )
    # This machine may lack the services the units order themselves after, or run no systemd.
    harmless = re.compile(r"(postgresql|redis-server|network-online)\.|System has not been booted")
    problems = [line for line in result.stderr.splitlines() if line.strip() and not harmless.search(line)]
    assert problems == [], result.stderr


def test_the_container_health_check_asks_readyz(live_server, settings):
    port = live_server.url.rsplit(":", 1)[1]
    env = {**os.environ, "PORT": port, "ALLOWED_HOSTS": "localhost"}
    ok = subprocess.run([sys.executable, "deploy/healthcheck.py"], cwd=REPO, env=env, capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free_port = closed.getsockname()[1]
    env["PORT"] = str(free_port)
    down = subprocess.run([sys.executable, "deploy/healthcheck.py"], cwd=REPO, env=env, capture_output=True, timeout=30)
    assert down.returncode == 1 and b"not ready" in down.stderr
