"""Shared fixtures: users alice and bob, a private mail store, real services."""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str) -> None:
    """Skip outside CI when a service is missing; in CI a missing service fails."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but not available")
    pytest.skip(f"{what} not available (this test runs in CI)")


@pytest.fixture(autouse=True)
def _isolated_mail_store(settings, tmp_path):
    settings.WEBPOP_MAIL_DIR = tmp_path / "mail"
    # Tests talk to servers on loopback.
    settings.WEBPOP_POP3_ALLOW_PRIVATE = True


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.org", "alice-Password-1")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.org", "bob-Password-1")


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture(autouse=True)
def enqueued(request, monkeypatch) -> list[int]:
    """Record sync tasks the web enqueues instead of publishing them.

    Tests marked ``celery`` publish for real to a real worker.
    """
    calls: list[int] = []
    if request.node.get_closest_marker("celery") is None:
        from mailbox import tasks

        monkeypatch.setattr(tasks.sync_account, "delay", lambda account_id: calls.append(account_id))
        monkeypatch.setattr(tasks.index_search, "delay", lambda: None)
    return calls


# --- Real Dovecot -------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory):
    require(
        shutil.which("dovecot") is not None or os.path.exists("/usr/sbin/dovecot"),
        "Dovecot (apt-get install dovecot-pop3d)",
    )
    from tests.dovecot import DovecotServer

    server = DovecotServer(tmp_path_factory.mktemp("dovecot"))
    server.start()
    yield server
    server.stop()


@dataclass
class PopUser:
    """A mailbox on the session's Dovecot, fresh for each test."""

    server: object
    name: str
    password: str

    def deliver(self, raw: bytes) -> None:
        self.server.deliver(self.name, raw)

    def sha256s(self) -> set[str]:
        return self.server.server_sha256s(self.name)

    def messages(self) -> list[bytes]:
        return self.server.server_messages(self.name)


@pytest.fixture
def trust_dovecot(settings, dovecot):
    settings.WEBPOP_POP3_CA_FILE = str(dovecot.ca_file)


@pytest.fixture
def pop_user(dovecot, trust_dovecot) -> PopUser:
    name = f"u{next(_user_numbers)}{uuid.uuid4().hex[:6]}"
    password = f"pw-{uuid.uuid4().hex}"
    dovecot.add_user(name, password)
    return PopUser(dovecot, name, password)


_user_numbers = itertools.count(1)


@pytest.fixture
def dovecot_account(alice, pop_user, dovecot):
    """Factory: a MailAccount of alice's on ``pop_user``'s Dovecot mailbox."""

    def make(policy: str = "keep", security: str = "ssl", **overrides):
        from tests.factories import make_account

        fields = {
            "host": "localhost",
            "port": dovecot.pop3s_port if security == "ssl" else dovecot.pop3_port,
            "security": security,
            "username": pop_user.name,
            "password": pop_user.password,
            "policy": policy,
        }
        fields.update(overrides)
        return make_account(fields.pop("owner", alice), **fields)

    return make


# --- Our fault-injecting POP3 server ------------------------------------------------


@pytest.fixture
def fault_server():
    """Factory: ``fault_server(messages, users, **faults)`` starts a FaultServer for this test."""
    from tests.fault_server import ServerFactory

    with ServerFactory() as factory:
        yield factory
        for server in factory.servers:
            assert server.errors == [], "the fault server itself failed"


@pytest.fixture
def fault_account(alice):
    """Factory: a MailAccount of alice's on a running FaultServer (clear text, as its owner chose)."""

    def make(server, policy: str = "keep", **overrides):
        from tests.factories import make_account

        fields = {
            "host": server.host,
            "port": server.port,
            "security": "none",
            "username": "alice",
            "password": server.users["alice"],
            "policy": policy,
        }
        fields.update(overrides)
        return make_account(alice, **fields)

    return make


@pytest.fixture(scope="module")
def browser():
    """Real Chromium for this test module (one launch per module keeps the suite fast)."""
    from tests.browser import chromium, chromium_available

    require(chromium_available(), "Chromium (apt-get install chromium)")
    with chromium() as launched:
        yield launched


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """The configured cache (Redis in CI), under a key prefix of this test's own.

    Rate-limit counters (webpop/ratelimit.py) are keyed per user and client
    address; every test client is 127.0.0.1, so without this they would carry
    over from one test to the next.
    """
    caches = {alias: dict(config) for alias, config in settings.CACHES.items()}
    for config in caches.values():
        config["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches


# --- Operators (ops/) ---------------------------------------------------------------


@pytest.fixture
def staff(django_user_model):
    # No password (signed in with force_login): hashing one costs more than the tests that use it.
    return django_user_model.objects.create_user("olga", "olga@example.org", is_staff=True)


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


# --- Real SMTP server (aiosmtpd) and sending ------------------------------------------


@pytest.fixture(autouse=True)
def send_enqueued(request, monkeypatch) -> list[int]:
    """Record send tasks the web enqueues instead of publishing them (tests marked ``celery`` publish)."""
    calls: list[int] = []
    if request.node.get_closest_marker("celery") is None:
        from outgoing import tasks

        monkeypatch.setattr(tasks.send_outgoing, "delay", lambda outgoing_id: calls.append(outgoing_id))
    return calls


@pytest.fixture(scope="session")
def _smtp_server(tmp_path_factory):
    from tests.smtp_server import SmtpTestServer

    server = SmtpTestServer(tmp_path_factory.mktemp("smtp"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(_smtp_server, settings, tmp_path):
    """The session's SMTP server, emptied for this test; its CA trusted (with any CA trusted already)."""
    _smtp_server.reset()
    bundle = tmp_path / "smtp-ca-bundle.pem"
    extra = Path(settings.WEBPOP_POP3_CA_FILE).read_bytes() if settings.WEBPOP_POP3_CA_FILE else b""
    bundle.write_bytes(_smtp_server.ca_file.read_bytes() + b"\n" + extra)
    settings.WEBPOP_POP3_CA_FILE = str(bundle)
    return _smtp_server


@pytest.fixture
def smtp_account(alice, smtp_server):
    """Factory: sending settings (a separate login on ``smtp_server``) for a MailAccount of alice's."""

    def make(account=None, *, security: str = "starttls", **overrides):
        from outgoing.models import SmtpSettings
        from tests.factories import make_account

        if account is None:
            account = make_account(alice, username="alice@example.org")
        fields = {
            "host": "localhost",
            "port": smtp_server.ssl_port if security == "ssl" else smtp_server.starttls_port,
            "security": security,
            "auth": "separate",
            "username": f"smtp-{account.id}",
            "from_name": "Alice Example",
            "from_email": "alice@example.org",
        }
        password = overrides.pop("password", f"smtp-pw-{account.id}-ü")
        fields.update(overrides)
        smtp = SmtpSettings(account=account, **fields)
        smtp.set_password(password)
        smtp.save()
        if fields["auth"] == "separate":
            smtp_server.add_user(fields["username"], password)
        return account

    return make


# --- Users ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """A cheap hasher for tests: PBKDF2's million rounds cost a quarter second per sign-in and per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- A real Celery worker -------------------------------------------------------------


@pytest.fixture
def celery_worker(settings):
    """A Celery worker on Redis in this process (solo pool), for tests marked ``celery``."""
    require(bool(settings.REDIS_URL), "Redis (set REDIS_URL)")
    from celery.contrib.testing.worker import start_worker

    from webpop.celery import app as celery_app

    celery_app.control.purge()  # leftovers from an earlier run must not run here
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker


def wait_for(predicate, timeout: float = 60.0) -> None:
    """Until ``predicate()`` holds; fails the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the worker")
