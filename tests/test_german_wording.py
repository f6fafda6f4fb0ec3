"""German pages read as German: words that differ by meaning, folder names with articles, dates in German order."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from mailbox.models import Folder, Message
from ops import charts
from outgoing import compose
from outgoing.models import OutgoingMessage
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def german(alice) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="de")
    client.force_login(alice)
    return client


def test_when_as_a_time_and_when_as_a_condition_are_different_german_words(german):
    security = german.get(reverse("users:security")).content.decode()
    assert "<th>Wann</th>" in security
    rules = german.get(reverse("mailbox:rules")).content.decode()
    assert re.search(r"<label[^>]*>Wenn", rules)


@pytest.mark.parametrize(
    ("folder", "german_text"),
    [
        (Folder.INBOX, "Ihr Posteingang ist leer."),
        (Folder.TRASH, "Der Papierkorb ist leer."),
        (Folder.ARCHIVE, "Nichts archiviert."),
        (Folder.SPAM, "Kein Spam."),
        (Folder.SENT, "Noch nichts gesendet."),
    ],
)
def test_an_empty_folder_says_so_in_proper_german(german, alice, folder, german_text):
    make_account(alice)  # with no account at all the page offers to add one instead
    page = german.get(reverse("mailbox:folder", args=[folder.value])).content.decode()
    assert german_text in page
    assert "Nichts in " not in page


def test_an_empty_folder_of_ones_own_says_so_in_proper_german(german, alice):
    from mailbox.models import UserFolder

    make_account(alice)
    folder = UserFolder.objects.create(owner=alice, name="Reisen")
    page = german.get(reverse("mailbox:folder", args=[folder.slug])).content.decode()
    assert "Keine Nachrichten im Ordner „Reisen“." in page


def test_short_dates_in_conversations_and_drafts_are_in_german_order(german, alice):
    account = make_account(alice)
    first = store_message(account, build_message("Plan", "a"), "1")
    second = store_message(account, build_message("Re: Plan", "b"), "2")
    when = dt.datetime(2026, 12, 6, 7, 51, tzinfo=dt.UTC)
    Message.objects.filter(id__in=[first.id, second.id]).update(date=when, thread_id=first.thread_id)
    page = german.get(reverse("mailbox:message", args=[second.id])).content.decode()
    assert ">6. Dez, 07:51</time>" in page
    OutgoingMessage.objects.create(owner=alice, account=account, subject="Entwurf")
    OutgoingMessage.objects.filter(owner=alice).update(updated_at=when)
    drafts = german.get(reverse("outgoing:drafts")).content.decode()
    assert ">6. Dez, 07:51</time>" in drafts
    english = Client()
    english.force_login(alice)
    assert ">Dec 6, 07:51</time>" in english.get(reverse("outgoing:drafts")).content.decode()


def test_chart_labels_are_in_german_order():
    start = dt.datetime(2026, 12, 6, 0, 0, tzinfo=dt.UTC)
    points = [(start + dt.timedelta(hours=h), h % 3) for h in range(48)]
    with translation.override("de"), timezone.override(dt.UTC):
        chart = charts.hourly_chart(points, daily_ticks=True)
    assert chart.bars[14].label == "So, 6. Dez 14:00"
    assert chart.x_ticks[0].text == "So 6."
    with translation.override("en"), timezone.override(dt.UTC):
        chart = charts.hourly_chart(points, daily_ticks=True)
    assert chart.bars[14].label == "Sun 6 Dec 14:00"


def test_reply_attribution_date_follows_the_language():
    from tests.test_compose import _original

    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):
        with translation.override("de"):
            german_body = compose.reply_body(_original(), signature="")
        with translation.override("en"):
            english_body = compose.reply_body(_original(), signature="")
    assert "Am Fr, 20. Nov 2026 um 15:05 schrieb Carol <carol@example.net>:" in german_body
    assert "On Fri, 20 Nov 2026 at 15:05, Carol <carol@example.net> wrote:" in english_body
