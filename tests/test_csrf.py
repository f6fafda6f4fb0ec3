"""Every state change is a POST that needs the CSRF token: a forged cross-site POST changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import urlwalk
from tests.urlwalk import snapshot

pytestmark = pytest.mark.django_db


def test_every_post_without_the_csrf_token_is_refused(alice, bob, settings, enqueued):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]
    world = urlwalk.build_world(alice, bob)
    world.signer = alice
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    before = snapshot(alice)
    checked, problems = 0, []
    for route in urlwalk.routes():
        case = urlwalk.COVERAGE.get(route.key)
        if case is None or "POST" not in case.methods.split():
            continue
        url = urlwalk.url_for(route, case.args(world))
        for data in case.posts(world):
            checked += 1
            response = client.post(url, data)
            if response.status_code != 403:
                problems.append(f"POST {url} ({route.key}) without a CSRF token: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert checked >= 15
    assert snapshot(alice) == before
    assert enqueued == []


def test_logging_in_and_out_needs_the_token_too(alice):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/login/", {"username": "alice", "password": "alice-Password-1"}).status_code == 403
    client.force_login(alice)
    assert client.post("/logout/").status_code == 403
    assert client.get("/accounts/").status_code == 200  # still logged in
