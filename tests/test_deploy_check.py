"""``manage.py check --deploy`` is clean with production settings; HTTPS settings do what they say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH = ("PATH", "HOME", "LANG", "DATABASE_URL", "REDIS_URL")


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with only ``env`` (plus the service URLs) set; keys generated in tmp_path
    by ``manage.py initdata`` first, as a deploy does."""
    environ = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    environ["WEBPOP_DATA_DIR"] = str(tmp_path / "data")
    init = subprocess.run(
        [sys.executable, "manage.py", "initdata"], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120
    )
    assert init.returncode == 0, init.stdout + init.stderr
    environ.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {"DEBUG": "false", "WEBPOP_HTTPS": "true", "ALLOWED_HOSTS": "mail.example.org"}


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_a_plain_http_setup(tmp_path):
    # The same check fails when the HTTPS settings are off: it is really looking.
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", DEBUG="false")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for warning in ("security.W004", "security.W008", "security.W016"):
        assert warning in output
    # The session cookie is not Secure: W012, or W010 alone when a session middleware of ours is in use.
    assert "security.W012" in output or "security.W010" in output


def test_production_settings_from_the_environment(tmp_path):
    script = (
        "import json; from django.conf import settings as s; print(json.dumps({"
        "'hsts': s.SECURE_HSTS_SECONDS, 'subdomains': s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
        "'redirect': s.SECURE_SSL_REDIRECT,"
        "'proxy': s.SECURE_PROXY_SSL_HEADER, 'session_secure': s.SESSION_COOKIE_SECURE,"
        "'csrf_secure': s.CSRF_COOKIE_SECURE, 'samesite': [s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_SAMESITE],"
        "'frame': s.X_FRAME_OPTIONS, 'debug': s.DEBUG}))"
    )
    result = manage(tmp_path, "shell", "-c", script, **PRODUCTION, SECURE_HSTS_SECONDS="600")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "hsts": 600, "subdomains": True, "redirect": True, "proxy": ["HTTP_X_FORWARDED_PROTO", "https"],
        "session_secure": True, "csrf_secure": True, "samesite": ["Lax", "Lax"], "frame": "DENY", "debug": False,
    }  # fmt: skip


def test_a_bad_value_fails_loudly(tmp_path):
    result = manage(tmp_path, "check", **PRODUCTION, SECURE_HSTS_SECONDS="a year")
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS='a year' is not an integer" in result.stderr


@pytest.fixture
def behind_https(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True


@pytest.mark.django_db
def test_behind_https_plain_requests_are_redirected_but_health_probes_are_not(behind_https, alice):
    client = Client()
    response = client.get("/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/login/"
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_behind_https_pages_send_hsts_and_secure_lax_cookies(behind_https, alice):
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    page = client.get("/login/")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"
    login = client.post("/login/", {"username": "alice", "password": "alice-Password-1"})
    assert login.status_code == 302
    session = login.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"


# --- webpop's own checks (webpop/checks.py) --------------------------------------------------------


def test_test_only_switches_are_reported_by_the_deploy_check(settings):
    from webpop import checks

    settings.WEBPOP_SANITIZE_HTML = True
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = False
    settings.WEBPOP_POP3_ALLOW_PRIVATE = False
    assert checks.test_only_switches(None) == []
    settings.WEBPOP_SANITIZE_HTML = False
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = True
    settings.WEBPOP_POP3_ALLOW_PRIVATE = True
    found = checks.test_only_switches(None)
    assert [(c.id, c.level) for c in found] == [("webpop.E001", 40), ("webpop.W001", 30), ("webpop.I001", 20)]


def test_a_malformed_encryption_key_fails_every_start(tmp_path):
    result = manage(tmp_path, "check", WEBPOP_ENCRYPTION_KEYS="not-a-key")
    assert result.returncode != 0
    assert "webpop.E002" in result.stderr and "Key 1 of WEBPOP_ENCRYPTION_KEYS is not a Fernet key" in result.stderr


def test_the_image_proxy_switch_fails_the_production_check(tmp_path):
    result = manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE="true"
    )
    assert result.returncode != 0
    assert "webpop.W001" in result.stdout + result.stderr
