"""Shared fixtures: users alice and bob, a private mail store, real services."""

from __future__ import annotations

import os

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
