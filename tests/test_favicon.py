"""Browsers find webpop's icon: /favicon.ico and /apple-touch-icon.png at the root, and the links every page has."""

from __future__ import annotations

import re
import struct

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.django_db
@pytest.mark.parametrize("signed_in", [False, True])
def test_favicon_ico_is_an_icon_at_the_root_for_everyone(alice, signed_in):
    client = Client()
    if signed_in:
        client.force_login(alice)
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
    body = _body(response)
    reserved, kind, count = struct.unpack("<HHH", body[:6])
    assert (reserved, kind) == (0, 1) and count >= 2  # an ICO directory with several sizes
    touch = client.get("/apple-touch-icon.png")
    assert touch.status_code == 200 and _body(touch).startswith(b"\x89PNG")


@pytest.mark.django_db
def test_every_page_links_the_icons(alice_client):
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    links = dict(re.findall(r'<link rel="(icon|apple-touch-icon)" href="([^"]+)"[^>]*type="image/svg\+xml"', page))
    assert links.get("icon", "").endswith("img/icon.svg")
    assert finders.find("img/icon.svg"), "the SVG icon the pages link to is missing from static/"
    assert '<link rel="icon" href="/favicon.ico"' in page
    assert '<link rel="apple-touch-icon" href="/apple-touch-icon.png">' in page
    login = Client().get(reverse("login")).content.decode()
    assert '<link rel="icon" href="/favicon.ico"' in login
