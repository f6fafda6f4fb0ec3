"""Invariant 7 over every URL of the project: bob reaches none of alice's objects, anonymous visitors reach nothing.

The URLs come from the URL configuration itself (tests/urlwalk.py), so a new
URL pattern that nobody added to ``COVERAGE`` or ``PUBLIC`` fails
``test_every_url_pattern_is_covered``.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from tests import urlwalk
from tests.urlwalk import COVERAGE, PUBLIC, SECRETS, Route, cross_owner_rows, is_admin, snapshot
from users import operators

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(alice, bob, settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]  # suggestions come from the presets: no lookups
    return urlwalk.build_world(alice, bob)


def body_of(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return str(response.headers) + content.decode("utf-8", "replace")


def _url(route: Route, world) -> tuple[str, urlwalk.Case | None]:
    if is_admin(route.key):
        return urlwalk.url_for(route, urlwalk.admin_kwargs(route, world)), None
    case = COVERAGE[route.key]
    return urlwalk.url_for(route, case.args(world)), case


def test_every_url_pattern_is_covered():
    keys = {route.key for route in urlwalk.routes()}
    missing = sorted(key for key in keys if key not in COVERAGE and key not in PUBLIC and not is_admin(key))
    assert not missing, (
        "These URL patterns are not covered by the isolation test. Add one line each to COVERAGE in "
        "tests/urlwalk.py (obj(...) when the URL names one of the user's objects, own(...) for the user's own "
        "list or form), or to PUBLIC if it must work without logging in: " + ", ".join(missing)
    )
    stale = sorted((set(COVERAGE) | set(PUBLIC)) - keys)
    assert not stale, f"COVERAGE / PUBLIC name URLs that no longer exist: {', '.join(stale)}"


def test_bob_reaches_none_of_alices_objects_and_changes_nothing(world, bob_client, enqueued, send_enqueued):
    before = snapshot(world.alice)
    problems = []
    requests = 0
    for route in urlwalk.routes():
        if route.key in PUBLIC:
            continue
        url, case = _url(route, world)
        if case is None:  # the admin: staff only, and bob is not staff
            for method in ("get", "post"):
                response = getattr(bob_client, method)(url)
                if response.status_code != 302 or not response["Location"].startswith(reverse("admin:login")):
                    problems.append(
                        f"{method.upper()} {url} ({route.key}): {response.status_code}, not the admin login"
                    )
            continue
        attempts = [("GET", query) for query in case.queries(world)] + [("POST", data) for data in case.posts(world)]
        for method, data in attempts:
            requests += 1
            if method == "GET":
                response = bob_client.get(url, data)
            else:
                response = bob_client.post(url, data)
            where = (
                f"{method} {url}{'?' + urlencode(data, doseq=True) if data and method == 'GET' else ''} ({route.key})"
            )
            status = response.status_code
            if case.kind in ("object", "token", "operator"):
                allowed = {403, 404} if method in case.methods.split() else {403, 404, 405}
                if status not in allowed:
                    problems.append(f"{where}: {status}, expected one of {sorted(allowed)}")
            elif status >= 500:
                problems.append(f"{where}: {status}")
            leaked = [secret for secret in SECRETS if secret in body_of(response)]
            if leaked:
                problems.append(f"{where}: shows alice's {leaked}")
    assert not problems, "\n".join(problems)
    assert requests > len(COVERAGE)
    assert snapshot(world.alice) == before, "a request of bob's changed alice's data"
    assert cross_owner_rows(world.bob) == []
    assert world.account.id not in enqueued
    assert not {world.draft.id, world.failed.id} & set(send_enqueued)


def test_alice_reaches_each_of_her_objects(world, alice_client):
    # Proves the URLs above were built right: the same URLs work for their owner.
    world.signer = world.alice
    checked = 0
    for route in urlwalk.routes():
        case = COVERAGE.get(route.key)
        if case is None or case.kind in ("own", "operator") or "GET" not in case.methods.split():
            continue
        url = urlwalk.url_for(route, case.args(world))
        for query in case.queries(world):
            response = alice_client.get(url, query)
            checked += 1
            # The proxied image answers 502: its address (192.0.2.1) is refused, after the token was accepted.
            assert response.status_code in (200, 502), f"GET {url} {query} ({route.key}): {response.status_code}"
    assert checked >= 10


def test_owners_reach_what_each_post_only_url_names(world, alice_client):
    # Proves the POST-only URLs were built right: bob's 404 there means "not his", not "no such object".
    # Each POST runs in a transaction rolled back afterwards, so every one sees the same world.
    checked, problems = 0, []
    for route in urlwalk.routes():
        case = COVERAGE.get(route.key)
        if case is None or case.kind != "object" or case.methods.split() != ["POST"]:
            continue
        url = urlwalk.url_for(route, case.args(world))
        for data in case.posts(world):
            checked += 1
            with transaction.atomic():
                response = alice_client.post(url, data)
                transaction.set_rollback(True)
            if response.status_code in (403, 404, 405) or response.status_code >= 500:
                problems.append(f"POST {url} {data} ({route.key}): {response.status_code}")
    assert not problems, "\n".join(problems)
    assert checked >= 15


def test_operator_urls_open_for_operators(world, alice_client):
    # Bob's 403 on the operators' URLs is his lacking the permission: the same URLs work for an operator.
    operators.grant(world.alice)
    urls = [route for route in urlwalk.routes() if getattr(COVERAGE.get(route.key), "kind", "") == "operator"]
    problems = []
    for route in urls:
        case = COVERAGE[route.key]
        url = urlwalk.url_for(route, case.args(world))
        attempts = [("GET", query) for query in case.queries(world)] if "GET" in case.methods.split() else []
        attempts += [("POST", data) for data in case.posts(world)] if "POST" in case.methods.split() else []
        for method, data in attempts:
            with transaction.atomic():
                response = alice_client.get(url, data) if method == "GET" else alice_client.post(url, data)
                transaction.set_rollback(True)
            if response.status_code not in (200, 302):
                problems.append(f"{method} {url} {data} ({route.key}): {response.status_code}")
    assert not problems, "\n".join(problems)
    assert len(urls) >= 9


def test_anonymous_visitors_are_sent_to_login_everywhere_but_public_pages(world):
    before = snapshot(world.alice)
    client = Client()
    problems = []
    for route in urlwalk.routes():
        if route.key in PUBLIC:
            continue
        url, case = _url(route, world)
        login = reverse("admin:login") if case is None else reverse("login")
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            status = response.status_code
            if case is not None and case.kind == "token":
                # Signed URLs need no session: the signature (here another user's) is what is checked.
                ok = status in ((403, 404) if method == "get" else (403, 404, 405))
            else:
                ok = status == 302 and response["Location"].startswith(login + "?next=")
            if not ok:
                problems.append(f"{method.upper()} {url} ({route.key}): {status} {response.get('Location', '')}")
            if any(secret in body_of(response) for secret in SECRETS):
                problems.append(f"{method.upper()} {url} ({route.key}): shows alice's data")
    assert not problems, "\n".join(problems)
    assert snapshot(world.alice) == before


@pytest.mark.parametrize("signup_mode", ["closed", "invite", "open"])
def test_public_pages_show_nothing_of_anyones_and_forged_links_change_nothing(world, settings, signup_mode):
    settings.WEBPOP_SIGNUP = signup_mode
    before = snapshot(world.alice)
    client = Client()
    visited = set()
    for route in urlwalk.routes():
        if route.key not in PUBLIC:
            continue
        visited.add(route.key)
        url = urlwalk.url_for(route, PUBLIC[route.key](world))
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code < 500, f"{method.upper()} {url}: {response.status_code}"
            assert not any(secret in body_of(response) for secret in SECRETS), url
    assert visited == set(PUBLIC)
    assert snapshot(world.alice) == before  # a forged reset link set no password; the invitation is unused
    world.newcomer.refresh_from_db()
    assert not world.newcomer.is_active  # a forged confirmation link confirmed nobody
