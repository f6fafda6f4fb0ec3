"""Shared fixtures: users alice and bob, a private mail store, real services."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client


def require(condition: bool, what: str, how: str) -> None:
    """Fail, never skip, when something a test needs is missing: a skipped test would hide it."""
    if not condition:
        pytest.fail(f"{what} is required but not available: {how}.", pytrace=False)


# Left unset, DATABASE_URL and REDIS_URL name the test run's own servers (tests/services.py).
def require_postgresql() -> None:
    from django.db import connection

    require(connection.vendor == "postgresql", "PostgreSQL", "unset DATABASE_URL so that the test run starts its own")


def require_redis() -> None:
    from django.conf import settings

    require(bool(settings.REDIS_URL), "Redis", "unset REDIS_URL so that the test run starts its own")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """SQLite tests on a file, not in memory: threads and forked children then share the database."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")


@pytest.fixture(autouse=True)
def _isolated_mail_store(settings, tmp_path):
    settings.WEBPOP_MAIL_DIR = tmp_path / "mail"
    # Tests talk to servers on loopback.
    settings.WEBPOP_POP3_ALLOW_PRIVATE = True


@pytest.fixture(autouse=True)
def _language_of_the_site():
    """Each test starts in the site's language and time zone: a request or override elsewhere must not leak
    into it."""
    from django.utils import timezone, translation

    translation.deactivate()
    timezone.deactivate()
    yield
    translation.deactivate()
    timezone.deactivate()


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
        # Released files wait in their rows: tests run the sweep (storage_gc.free_released) themselves.
        monkeypatch.setattr(tasks.free_released_files, "delay", lambda: None)
    return calls


@pytest.fixture(autouse=True)
def bulk_enqueued(request, monkeypatch) -> list[int]:
    """Record "Select all N" jobs the web enqueues (tests run mailbox.bulkjobs.run as a worker would)."""
    calls: list[int] = []
    if request.node.get_closest_marker("celery") is None:
        from mailbox import tasks

        monkeypatch.setattr(tasks.run_bulk_job, "delay", lambda job_id: calls.append(job_id))
    return calls


# --- Real Dovecot -------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory):
    require(
        shutil.which("dovecot") is not None or os.path.exists("/usr/sbin/dovecot"),
        "Dovecot",
        "`make system-deps` installs it (Debian package dovecot-pop3d)",
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

    def remove(self, raw: bytes) -> None:
        self.server.remove(self.name, raw)

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


@pytest.fixture(autouse=True)
def spam_enqueued(request, monkeypatch) -> list[str]:
    """Record spam scan and training wake-ups instead of publishing them (tests marked ``celery`` publish)."""
    calls: list[str] = []
    if request.node.get_closest_marker("celery") is None:
        from spam import tasks

        monkeypatch.setattr(tasks.scan_pending, "delay", lambda: calls.append("scan"))
        monkeypatch.setattr(tasks.learn_pending, "delay", lambda: calls.append("learn"))
    return calls


# --- Real rspamd ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def rspamd_server(tmp_path_factory):
    from tests.rspamd import RspamdServer, available

    require(available(), "rspamd and Redis", "`make system-deps` installs them (Debian packages rspamd, redis-server)")
    server = RspamdServer(tmp_path_factory.mktemp("rspamd"))
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def dkim_signer():
    from tests.dkim_mail import Signer

    return Signer("example.com")


@pytest.fixture(scope="session")
def rspamd_checking_senders(tmp_path_factory, dkim_signer):
    """A second rspamd that checks DKIM and DMARC, asking a DNS server of the test's own for the keys."""
    from tests.dnsserver import DnsServer
    from tests.rspamd import RspamdServer, available

    require(available(), "rspamd and Redis", "`make system-deps` installs them (Debian packages rspamd, redis-server)")
    with DnsServer(dkim_signer.records()) as dns_server:
        server = RspamdServer(
            tmp_path_factory.mktemp("rspamd-dkim"), checks=("dkim", "dmarc", "spf"), nameserver=dns_server.address
        )
        server.start()
        yield server
        server.close()


@pytest.fixture
def rspamd_dkim(rspamd_checking_senders, settings):
    """webpop set up for the rspamd that checks DKIM and DMARC (example.com: signed, p=reject)."""
    server = rspamd_checking_senders
    server.start()
    settings.WEBPOP_RSPAMD_URL = server.url
    settings.WEBPOP_RSPAMD_CONTROLLER_URL = server.controller_url
    settings.WEBPOP_RSPAMD_PASSWORD = server.password
    return server


@pytest.fixture
def rspamd(rspamd_server, settings):
    """webpop set up for the session's rspamd, which is running and has learned nothing yet."""
    rspamd_server.start()  # a test may have stopped it
    rspamd_server.forget()
    settings.WEBPOP_RSPAMD_URL = rspamd_server.url
    settings.WEBPOP_RSPAMD_CONTROLLER_URL = rspamd_server.controller_url
    settings.WEBPOP_RSPAMD_PASSWORD = rspamd_server.password
    return rspamd_server


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

    require(chromium_available(), "Chromium", "`make system-deps` installs it (Debian package chromium)")
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def axe():
    """axe-core, run in a page by the accessibility checks."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


@pytest.fixture
def browser_context(browser, live_server, alice):
    """Factory: ``browser_context(size, scheme, locale, user=alice, language=None, **options)``.

    A new Chromium context at a size (tests.browser.SIZES name or viewport), colour scheme and locale,
    logged in as alice (or ``user``; None: logged out); closed after the test. See tests.browser.new_context.
    """
    from tests.browser import new_context

    contexts = []

    def make(size="desktop", scheme="light", locale="en", *, user=alice, **options):
        context = new_context(browser, live_server.url, user, size=size, scheme=scheme, locale=locale, **options)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):  # a test may have closed it
            context.close()


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """The configured cache (Redis in CI), under a key prefix of this test's own.

    Cached rows and pages are keyed by ids that the next test reuses.
    """
    caches = {alias: dict(config) for alias, config in settings.CACHES.items()}
    for config in caches.values():
        config["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def steady_clock(monkeypatch) -> FakeClock:
    """The rate limiter's clock held mid-window: tests that count to a limit cannot straddle a window's end."""
    from webpop.lib import ratelimit

    clock = FakeClock(1_000_020.0)  # a minute's start, 47 minutes into an hour
    monkeypatch.setattr(ratelimit, "time", clock)
    return clock


# --- Operators (ops/) ---------------------------------------------------------------


@pytest.fixture
def staff(django_user_model):
    """An operator: staff, in the Operators group."""
    from users import operators

    # No password (signed in with force_login): hashing one costs more than the tests that use it.
    user = django_user_model.objects.create_user("olga", "olga@example.org", is_staff=True)
    operators.grant(user)
    return user


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
        from webpop import broker
        from webpop.celery import app as celery_app

        def apply_async(args=(), kwargs=None, **options):
            # As publishing would: a countdown the broker cannot keep is refused.
            broker.check_delay(options, celery_app.conf.broker_transport_options)
            calls.append(args[0])

        monkeypatch.setattr(tasks.send_outgoing, "delay", lambda outgoing_id: calls.append(outgoing_id))
        monkeypatch.setattr(tasks.send_outgoing, "apply_async", apply_async)
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
    require_redis()
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


# --- Imports ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def import_enqueued(request, monkeypatch) -> list[int]:
    """Record import jobs the web enqueues instead of publishing them (tests marked ``celery`` publish)."""
    calls: list[int] = []
    if request.node.get_closest_marker("celery") is None:
        from mailbox import tasks

        monkeypatch.setattr(tasks.import_mailbox, "delay", lambda job_id: calls.append(job_id))
    return calls


# --- Unsubscribing ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def unsubscribe_enqueued(request, monkeypatch) -> list[int]:
    """Record one-click unsubscribe tasks the web enqueues instead of publishing them (``celery`` tests publish)."""
    calls: list[int] = []
    if request.node.get_closest_marker("celery") is None:
        from unsubscribe import tasks

        monkeypatch.setattr(tasks.unsubscribe, "delay", lambda request_id: calls.append(request_id))
    return calls


# --- Notifications (push/) ------------------------------------------------------------


@pytest.fixture(autouse=True)
def push_enqueued(request, monkeypatch) -> list[tuple[str, int]]:
    """Record notification tasks instead of publishing them (tests marked ``celery`` publish)."""
    calls: list[tuple[str, int]] = []
    if request.node.get_closest_marker("celery") is None:
        from push import tasks

        monkeypatch.setattr(tasks.notify_new_mail, "delay", lambda owner_id: calls.append(("notify", owner_id)))
        monkeypatch.setattr(tasks.deliver, "delay", lambda subscription_id: calls.append(("deliver", subscription_id)))
    return calls


@pytest.fixture
def list_server(tmp_path, settings):
    """A mailing list's one-click unsubscribe endpoint on loopback (HTTPS, its own CA): reachable only because
    tests allow private addresses."""
    from tests.https_server import HttpsServer

    server = HttpsServer(tmp_path / "list-pki")
    server.routes["/u/12"] = (200, {})
    settings.WEBPOP_UNSUBSCRIBE_CA_FILE = str(server.ca_file)
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = True
    yield server
    server.close()
