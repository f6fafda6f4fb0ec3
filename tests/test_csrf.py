"""Every state change is a POST that needs the CSRF token: a forged cross-site POST changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.test import Client

from tests import urlwalk
from tests.urlwalk import snapshot
from users.signup import verification_tokens

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


def test_public_forms_refuse_a_post_without_the_token_even_with_real_links(alice, bob, settings):
    # Sign-up, confirmation, invitation, password reset and the code step change state without a session
    # of the visitor's own: a forged cross-site POST, even with a genuine link, must do nothing.
    settings.WEBPOP_SIGNUP = "open"
    world = urlwalk.build_world(alice, bob)
    newcomer = world.newcomer
    links = {
        "users:verify": {"uidb64": urlwalk.uid(newcomer), "token": verification_tokens.make_token(newcomer)},
        "password_reset_confirm": {"uidb64": urlwalk.uid(alice), "token": default_token_generator.make_token(alice)},
    }
    form = {"username": "mallory", "email": "mallory@example.net", "password1": "Mallory-Pass-42",
            "password2": "Mallory-Pass-42", "new_password1": "Mallory-Pass-42", "new_password2": "Mallory-Pass-42",
            "password": "alice-Password-1", "token": "123456"}  # fmt: skip
    users = get_user_model().objects.count()
    before = snapshot(alice)
    client = Client(enforce_csrf_checks=True)
    checked, problems = 0, []
    for route in urlwalk.routes():
        if route.key not in urlwalk.PUBLIC:
            continue
        url = urlwalk.url_for(route, links.get(route.key) or urlwalk.PUBLIC[route.key](world))
        checked += 1
        response = client.post(url, {**form, "username": "alice"} if route.key == "login" else form)
        if response.status_code != 403:
            problems.append(f"POST {url} ({route.key}) without a CSRF token: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert checked >= 15
    assert snapshot(alice) == before  # the invitation is still unused, alice's password unchanged
    assert get_user_model().objects.count() == users
    newcomer.refresh_from_db()
    assert not newcomer.is_active
