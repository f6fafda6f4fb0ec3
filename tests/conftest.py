"""Shared fixtures: users alice and bob, a private mail store, real services."""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from dataclasses import dataclass

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


# --- Users ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """A cheap hasher for tests: PBKDF2's million rounds cost a quarter second per sign-in and per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
