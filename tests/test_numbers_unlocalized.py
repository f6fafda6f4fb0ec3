"""Numbers a browser reads as numbers (SVG geometry, <meter>/<progress> values) are never localised.

German writes 657.33 as "657,33"; an SVG attribute with a comma is not a number and the bar vanishes.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailbox.models import SyncRun
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

# Attributes whose value a browser parses as one or more numbers.
_NUMERIC = {"x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height", "viewbox", "points", "d"}
_GAUGES = {"meter", "progress"}
_NUMBER_LIST = re.compile(r"^-?[0-9.]+([ ,]+-?[0-9.]+)*$")  # SVG lists separate with spaces (or commas)
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


class _NumericAttributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []
        self.svg_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.svg_depth += 1
        for name, value in attrs:
            if value is None:
                continue
            if self.svg_depth and name in _NUMERIC:
                self.found.append((tag, name, value))
            if tag in _GAUGES and name in {"min", "max", "value", "low", "high", "optimum"}:
                self.found.append((tag, name, value))

    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg_depth -= 1


def numeric_attributes(page: str) -> list[tuple[str, str, str]]:
    parser = _NumericAttributes()
    parser.feed(page)
    return parser.found


def bad_numbers(page: str) -> list[tuple[str, str, str]]:
    bad = []
    for tag, name, value in numeric_attributes(page):
        if name in {"viewbox", "points", "d"}:
            ok = name == "d" or _NUMBER_LIST.match(value)  # path data mixes letters and numbers
            ok = ok and not re.search(r"\d,\d", value) if name == "viewbox" else ok
        else:
            ok = _NUMBER.match(value)
        if not ok:
            bad.append((tag, name, value))
    return bad


@pytest.fixture
def german_operator(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("oskar", "oskar@example.org")
    client = Client(HTTP_ACCEPT_LANGUAGE="de")
    client.force_login(user)
    return client


def test_dashboard_charts_in_german_have_numbers_in_their_svg(german_operator, alice):
    account = make_account(alice)
    store_message(account, build_message("Hallo", "x"), "1")
    now = timezone.now()
    # Three bars of different heights give fractional coordinates (720 px over 24 or 168 bars).
    for hours_ago, count in ((0, 3), (2, 1), (30, 2)):
        for _ in range(count):
            started = now - dt.timedelta(hours=hours_ago)
            SyncRun.objects.create(
                account=account, started_at=started, finished_at=started + dt.timedelta(seconds=1.5), fetched=7
            )
    page = german_operator.get(reverse("ops:dashboard")).content.decode()
    assert 'lang="de"' in page
    attributes = numeric_attributes(page)
    assert any(name == "x" and "." in value for _tag, name, value in attributes), "the test needs fractional bars"
    assert bad_numbers(page) == []


@pytest.mark.parametrize("name", ["ops:dashboard", "ops:accounts", "ops:users"])
def test_operator_pages_in_german_have_unlocalised_gauges(german_operator, alice, name):
    from accounts.models import Profile

    store_message(make_account(alice), build_message("Hallo", "x" * 3000), "1")
    Profile.objects.update_or_create(user=alice, defaults={"storage_quota_bytes": 3 * 1024 * 1024})
    page = german_operator.get(reverse(name)).content.decode()
    assert bad_numbers(page) == []
