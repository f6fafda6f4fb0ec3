"""Snooze: a conversation leaves the Inbox until a chosen time, then beat's sweep brings it back on top, unread.

The sweep is called with a fixed "now" (no sleeping): before the time it wakes nothing, at the
time it wakes the conversation. The menu's times are pure functions of a clock and a time zone.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import zoneinfo
from html import unescape

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.views_prefs import save_preferences
from mailbox import actions, listing, snooze_times, sync, tasks
from mailbox.models import Folder, Message, Rule
from tests.conftest import require_postgresql, wait_for
from tests.factories import build_message, make_account, store_message
from webpop.lib import pagecache

pytestmark = pytest.mark.django_db

UTC = dt.UTC
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
INBOX = reverse("mailbox:inbox")
SNOOZED = reverse("mailbox:view", args=["snoozed"])
BASE = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def rows(account, specs) -> list[Message]:
    """Messages from (subject, minutes before BASE, folder, thread) specs; thread None: a conversation of its own."""
    made = Message.objects.bulk_create(
        [
            Message(
                owner_id=account.owner_id, account=account, uidl=f"u-{subject}", sha256="0" * 64, size=10,
                raw_path="raw/x", subject=subject, from_email="carol@example.net", date=BASE - dt.timedelta(minutes=m),
                folder=folder, seen=True,
            )
            for subject, m, folder, _thread in specs
        ]
    )  # fmt: skip
    by_subject = {m.subject: m for m in made}
    for message, (_s, _m, _f, thread) in zip(made, specs, strict=True):
        message.thread_id = by_subject[thread].id if thread else message.id
    Message.objects.bulk_update(made, ["thread_id"])
    pagecache.touch([account.owner_id])  # rows written here directly: what store.save_messages does
    return made


def listed(client, url=INBOX, **query) -> list[str]:
    response = client.get(url, query)
    assert response.status_code == 200
    return [row.subject for row in response.context["page"].rows]


def menu_times(html: str) -> dict[str, str]:
    """The snooze menu's choices on a page: label → the moment its button sends."""
    found = re.findall(r'name="until" value="([^"]+)"[^>]*>\s*<span>([^<]+)</span>', html)
    return {unescape(label): value for value, label in found}


@pytest.fixture
def account(alice):
    return make_account(alice)


@pytest.fixture
def mail(account):
    """A conversation of three in the Inbox (one reply sent from here), and two other messages."""
    return {
        m.subject: m
        for m in rows(
            account,
            [
                ("Plans", 300, Folder.INBOX, None),
                ("Re: Plans", 200, Folder.INBOX, "Plans"),
                ("My answer", 150, Folder.SENT, "Plans"),
                ("Re: Re: Plans", 100, Folder.INBOX, "Plans"),
                ("Newsletter", 50, Folder.INBOX, None),
                ("Receipt", 10, Folder.INBOX, None),
            ],
        )
    }


# --- The menu's times --------------------------------------------------------------------------------


def _choices(now, zone) -> dict[str, dt.datetime]:
    return {c.slug: c.when for c in snooze_times.choices(now, zone)}


@pytest.mark.sqlite
def test_the_menu_offers_times_in_the_users_zone():
    monday = dt.datetime(2026, 12, 7, 10, 20, tzinfo=UTC)  # 11:20 in Berlin, 05:20 in New York
    berlin = _choices(monday, BERLIN)
    assert berlin == {
        "later_today": dt.datetime(2026, 12, 7, 15, 0, tzinfo=BERLIN),  # three hours on, on the hour
        "tomorrow": dt.datetime(2026, 12, 8, 8, 0, tzinfo=BERLIN),
        "weekend": dt.datetime(2026, 12, 12, 8, 0, tzinfo=BERLIN),
        "next_week": dt.datetime(2026, 12, 14, 8, 0, tzinfo=BERLIN),
    }
    assert berlin["tomorrow"].astimezone(UTC) == dt.datetime(2026, 12, 8, 7, 0, tzinfo=UTC)
    new_york = _choices(monday, NEW_YORK)
    assert new_york["later_today"] == dt.datetime(2026, 12, 7, 9, 0, tzinfo=NEW_YORK)
    assert new_york["tomorrow"].astimezone(UTC) == dt.datetime(2026, 12, 8, 13, 0, tzinfo=UTC)


@pytest.mark.sqlite
def test_the_menu_leaves_out_what_no_longer_fits_the_day():
    saturday_evening = dt.datetime(2026, 12, 12, 20, 30, tzinfo=BERLIN)
    choices = _choices(saturday_evening, BERLIN)
    assert set(choices) == {"tomorrow", "next_week"}  # 23:30 rounds to tomorrow; it is the weekend already
    assert choices["next_week"] == dt.datetime(2026, 12, 14, 8, 0, tzinfo=BERLIN)
    sunday = _choices(dt.datetime(2026, 12, 13, 9, 0, tzinfo=BERLIN), BERLIN)
    assert set(sunday) == {"later_today", "tomorrow"}  # next week is tomorrow: offered once


@pytest.mark.sqlite
def test_the_menu_keeps_eight_in_the_morning_across_a_change_of_summer_time():
    before_the_change = dt.datetime(2027, 3, 27, 12, 0, tzinfo=BERLIN)  # Saturday; clocks go forward that night
    tomorrow = _choices(before_the_change, BERLIN)["tomorrow"]
    assert tomorrow.astimezone(UTC) == dt.datetime(2027, 3, 28, 6, 0, tzinfo=UTC)  # 08:00 summer time


@pytest.mark.sqlite
def test_a_picked_time_is_read_in_the_users_zone_and_checked():
    now = dt.datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert snooze_times.parse("2026-12-24T18:00", now, BERLIN) == dt.datetime(2026, 12, 24, 17, 0, tzinfo=UTC)
    assert snooze_times.parse("2026-12-24T18:00:00+01:00", now, NEW_YORK) == dt.datetime(
        2026, 12, 24, 17, 0, tzinfo=UTC
    )
    for value, code in [
        ("", "unreadable"),
        ("tomorrow", "unreadable"),
        ("2026-12-07T10:59", "past"),  # 09:59 UTC
        ("2026-12-07T11:00", "past"),  # now, to the second
        ("2032-12-24T18:00", "too_far"),
        ("9999-12-31T23:59-23:00", "too_far"),
    ]:
        with pytest.raises(snooze_times.SnoozeTimeError) as raised:
            snooze_times.parse(value, now, BERLIN)
        assert raised.value.code == code, value


# --- Snoozing and waking -----------------------------------------------------------------------------


@pytest.mark.sqlite
def test_snoozing_from_the_list_takes_the_conversation_to_the_snoozed_view(alice, alice_client, mail):
    page = alice_client.get(INBOX).content.decode()
    tomorrow = menu_times(page)["Tomorrow"]
    response = alice_client.post(
        reverse("mailbox:snooze"), {"ids": [mail["Re: Re: Plans"].id], "until": tomorrow, "next": INBOX}
    )
    assert response.status_code == 302 and response["Location"] == INBOX
    # The whole conversation left the Inbox; what was sent stays in Sent.
    assert listed(alice_client, view="messages") == ["Receipt", "Newsletter"]
    assert set(listed(alice_client, SNOOZED, view="messages")) == {"Plans", "Re: Plans", "Re: Re: Plans"}
    assert Message.objects.get(id=mail["My answer"].id).folder == Folder.SENT
    until = dt.datetime.fromisoformat(tomorrow)
    assert set(Message.objects.filter(folder=Folder.SNOOZED).values_list("snoozed_until", flat=True)) == {until}
    # Grouped, the Snoozed view shows the conversation once, with the time it comes back.
    snoozed = alice_client.get(SNOOZED, {"view": "conversations"})
    assert [row.subject for row in snoozed.context["page"].rows] == ["Re: Re: Plans"]
    local = timezone.localtime(until)
    assert f"until {local:%b} {local.day}, {local:%Y %H:%M}" in snoozed.content.decode()


@pytest.mark.sqlite
def test_the_sweep_brings_it_back_at_its_time_on_top_and_unread(alice, alice_client, mail):
    until = BASE + dt.timedelta(days=1)
    snoozed = actions.snooze(alice.id, [mail["Plans"].id], until)
    assert len(snoozed) == 3
    assert actions.wake_due(now=until - dt.timedelta(seconds=1)) == 0
    assert listed(alice_client, view="messages") == ["Receipt", "Newsletter"]
    assert actions.wake_due(now=until) == 3
    # On top, above mail dated later, as if it had just arrived; the conversation's newest is unread.
    assert listed(alice_client, view="conversations") == ["Re: Re: Plans", "Receipt", "Newsletter"]
    assert listed(alice_client, view="messages") == ["Re: Re: Plans", "Re: Plans", "Plans", "Receipt", "Newsletter"]
    woken = {m.subject: m for m in Message.objects.filter(id__in=snoozed)}
    assert {m.folder for m in woken.values()} == {Folder.INBOX}
    assert {m.surfaced_at for m in woken.values()} == {until}
    assert {m.snoozed_until for m in woken.values()} == {None}
    assert [s for s, m in woken.items() if not m.seen] == ["Re: Re: Plans"]
    assert listed(alice_client, SNOOZED) == []
    # New mail after that comes above it.
    rows(mail["Plans"].account, [("Later news", -(24 * 60 + 5), Folder.INBOX, None)])
    assert listed(alice_client, view="conversations")[:2] == ["Later news", "Re: Re: Plans"]


@pytest.mark.sqlite
def test_pages_of_the_inbox_walk_woken_mail_in_order_without_gaps(alice, alice_client, account):
    made = rows(account, [(f"M{i:03d}", i * 10, Folder.INBOX, None) for i in range(130)])
    woken = [made[i] for i in (3, 40, 41, 77, 129, 128)]
    for n, message in enumerate(woken):  # each comes back at its own time, some at the same time
        until = BASE + dt.timedelta(hours=1 + n // 2)
        actions.snooze(alice.id, [message.id], until)
        actions.wake_due(now=until)
    expected = sorted(Message.objects.filter(folder=Folder.INBOX), key=lambda m: (m.surfaced_at or m.date, m.id))[::-1]
    assert [m.subject for m in expected[:4]] == ["M129", "M128", "M077", "M041"]
    pages, cursor, walked = [], None, []
    while True:
        response = alice_client.get(INBOX, {"before": cursor} if cursor else {})
        page = response.context["page"]
        pages.append(page)
        walked += [row.id for row in page.rows]
        if page.older is None:
            break
        cursor = page.older
    assert walked == [m.id for m in expected]
    assert len(pages) == 3
    back = alice_client.get(INBOX, {"after": pages[2].newer}).context["page"]
    assert [row.id for row in back.rows] == [row.id for row in pages[1].rows]
    assert (
        listing.encode(pages[0].rows[0], "listed_at")
        == f"{(BASE + dt.timedelta(hours=3)).timestamp():.6f}_{woken[4].id}"
    )


@pytest.mark.sqlite
def test_the_sweep_is_idempotent_and_marks_unread_once(alice, mail):
    until = BASE + dt.timedelta(hours=2)
    actions.snooze(alice.id, [mail["Newsletter"].id], until)
    assert actions.wake_due(now=until) == 1
    Message.objects.filter(id=mail["Newsletter"].id).update(seen=True)  # read after it came back
    assert actions.wake_due(now=until) == 0
    assert actions.wake_all_due(now=until + dt.timedelta(days=3)) == 0
    assert Message.objects.get(id=mail["Newsletter"].id).seen


@pytest.mark.sqlite
def test_the_sweep_works_in_batches_soonest_first(alice, account):
    made = rows(account, [(f"N{i}", i, Folder.INBOX, None) for i in range(7)])
    for i, message in enumerate(made):
        actions.snooze(alice.id, [message.id], BASE + dt.timedelta(minutes=10 - i))
    assert actions.wake_due(now=BASE + dt.timedelta(hours=1), limit=3) == 3
    assert set(Message.objects.filter(folder=Folder.INBOX).values_list("subject", flat=True)) == {"N6", "N5", "N4"}
    assert actions.wake_all_due(now=BASE + dt.timedelta(hours=1)) == 4


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_wake_each_message_once(alice, account):
    """A second sweep while the first holds its claim: it takes only the rest, and nothing twice."""
    require_postgresql()
    made = rows(account, [(f"P{i}", i, Folder.INBOX, None) for i in range(10)])
    until = BASE + dt.timedelta(hours=1)
    actions.snooze(alice.id, [m.id for m in made], until)
    claimed_first, second_done = threading.Event(), threading.Event()
    counts: dict[str, int] = {}

    def first():
        try:
            with transaction.atomic():
                counts["first"] = actions.wake_due(now=until, limit=6)
                claimed_first.set()
                second_done.wait(timeout=5)  # commit once the second has run (or is blocked on our rows)
        finally:
            claimed_first.set()
            connections.close_all()

    def second():
        try:
            claimed_first.wait(timeout=30)
            counts["second"] = actions.wake_due(now=until, limit=10)
        finally:
            second_done.set()
            connections.close_all()

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert counts == {"first": 6, "second": 4}
    assert Message.objects.filter(owner=alice, folder=Folder.INBOX).count() == 10
    assert Message.objects.filter(owner=alice, seen=False).count() == 10  # each its own conversation


@pytest.mark.sqlite
def test_undo_puts_a_snoozed_conversation_back_where_it_was(alice, alice_client, mail):
    Message.objects.filter(id=mail["Plans"].id).update(folder=Folder.ARCHIVE)
    until = menu_times(alice_client.get(INBOX).content.decode())["Tomorrow"]
    alice_client.post(reverse("mailbox:snooze"), {"ids": [mail["Re: Re: Plans"].id], "until": until})
    assert Message.objects.filter(folder=Folder.SNOOZED).count() == 2  # the Inbox's part of it
    assert b"undo-bar" in alice_client.get(INBOX).content
    alice_client.post(reverse("mailbox:undo"), {"next": INBOX})
    assert listed(alice_client, view="messages") == ["Receipt", "Newsletter", "Re: Re: Plans", "Re: Plans"]
    assert Message.objects.get(id=mail["Plans"].id).folder == Folder.ARCHIVE


@pytest.mark.sqlite
def test_unsnooze_and_undoing_a_move_out_of_snooze(alice, alice_client, mail):
    until = BASE + dt.timedelta(days=2)
    actions.snooze(alice.id, [mail["Newsletter"].id, mail["Receipt"].id], until)
    page = alice_client.get(SNOOZED).content.decode()
    assert 'name="action" value="inbox"' in page and "Unsnooze" in page
    alice_client.post(reverse("mailbox:bulk"), {"action": "inbox", "ids": [mail["Receipt"].id], "next": SNOOZED})
    assert Message.objects.get(id=mail["Receipt"].id).folder == Folder.INBOX
    alice_client.post(reverse("mailbox:bulk"), {"action": "archive", "ids": [mail["Newsletter"].id], "next": SNOOZED})
    alice_client.post(reverse("mailbox:undo"), {"next": SNOOZED})
    back = Message.objects.get(id=mail["Newsletter"].id)
    assert (back.folder, back.snoozed_until) == (Folder.SNOOZED, until)  # asleep again, with its time
    assert actions.wake_due(now=until) == 1


@pytest.mark.sqlite
def test_snoozing_from_the_message_page_in_the_users_time_zone(alice, alice_client, account):
    save_preferences(alice, time_zone="Asia/Tokyo", conversations=True)
    alice_client.logout()
    alice_client.force_login(alice)
    message = store_message(account, build_message("Receipt", "Thanks."), "u-receipt")
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    times = menu_times(page)
    assert "Tomorrow" in times and "Pick date and time…" in page
    tomorrow = dt.datetime.fromisoformat(times["Tomorrow"])
    assert tomorrow.utcoffset() == dt.timedelta(hours=9) and (tomorrow.hour, tomorrow.minute) == (8, 0)
    response = alice_client.post(
        reverse("mailbox:snooze"), {"ids": [message.id], "until": times["Tomorrow"], "next": INBOX}
    )
    assert response["Location"] == INBOX
    assert Message.objects.get(id=message.id).snoozed_until == tomorrow
    flash = alice_client.get(INBOX).content.decode()
    assert "1 message snoozed until" in flash and ", 08:00." in flash
    # Its page says where it is and offers to wake it.
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert f'href="{SNOOZED}"' in page and "Unsnooze" in page


@pytest.mark.sqlite
def test_picking_a_date_and_time(alice, alice_client, mail):
    save_preferences(alice, time_zone="America/New_York", conversations=True)
    alice_client.logout()
    alice_client.force_login(alice)
    ids = [mail["Newsletter"].id]
    form = alice_client.post(reverse("mailbox:snooze"), {"ids": ids, "pick": "1", "next": INBOX})
    assert form.status_code == 200
    html = form.content.decode()
    assert 'type="datetime-local"' in html and "America/New_York" in html and f'value="{ids[0]}"' in html
    assert Message.objects.get(id=ids[0]).folder == Folder.INBOX  # nothing changes yet
    future = (timezone.now() + dt.timedelta(days=30)).astimezone(NEW_YORK).replace(hour=18, minute=30)
    picked = future.strftime("%Y-%m-%dT%H:%M")
    alice_client.post(reverse("mailbox:snooze"), {"ids": ids, "until": picked, "picking": "1", "next": INBOX})
    message = Message.objects.get(id=ids[0])
    assert message.folder == Folder.SNOOZED
    assert message.snoozed_until == future.replace(second=0, microsecond=0)
    past = alice_client.post(
        reverse("mailbox:snooze"), {"ids": ids, "until": "2020-01-01T08:00", "picking": "1", "next": INBOX}
    )
    assert past.status_code == 400 and "That time has passed" in past.content.decode()
    assert 'value="2020-01-01T08:00"' in past.content.decode()  # what was typed, to correct


@pytest.mark.sqlite
def test_a_time_that_has_passed_changes_nothing(alice_client, mail):
    response = alice_client.post(
        reverse("mailbox:snooze"), {"ids": [mail["Receipt"].id], "until": "2020-01-01T08:00:00+00:00", "next": INBOX}
    )
    assert response.status_code == 302
    assert "That time has passed" in alice_client.get(INBOX).content.decode()
    assert not Message.objects.filter(folder=Folder.SNOOZED).exists()


@pytest.mark.sqlite
def test_sent_spam_and_trash_are_not_snoozed(alice, alice_client, mail):
    Message.objects.filter(id=mail["Receipt"].id).update(folder=Folder.TRASH)
    until = (timezone.now() + dt.timedelta(days=1)).isoformat()
    alice_client.post(reverse("mailbox:snooze"), {"ids": [mail["Receipt"].id, mail["My answer"].id], "until": until})
    assert not Message.objects.filter(folder=Folder.SNOOZED).exists()
    assert "cannot be snoozed" in alice_client.get(INBOX).content.decode()
    assert actions.snooze(alice.id, [mail["Receipt"].id], BASE) == {}


@pytest.mark.sqlite
def test_nobody_snoozes_someone_elses_mail(bob_client, mail):
    until = (timezone.now() + dt.timedelta(days=1)).isoformat()
    bob_client.post(reverse("mailbox:snooze"), {"ids": [m.id for m in mail.values()], "until": until})
    assert not Message.objects.filter(folder=Folder.SNOOZED).exists()
    assert bob_client.get(SNOOZED).context["page"].rows == []


@pytest.mark.sqlite
def test_snoozing_needs_post_and_csrf(alice, mail):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    until = (timezone.now() + dt.timedelta(days=1)).isoformat()
    assert client.get(reverse("mailbox:snooze"), {"ids": [mail["Receipt"].id], "until": until}).status_code == 405
    assert client.post(reverse("mailbox:snooze"), {"ids": [mail["Receipt"].id], "until": until}).status_code == 403
    assert not Message.objects.filter(folder=Folder.SNOOZED).exists()


@pytest.mark.sqlite
def test_the_sweep_runs_on_every_beat_tick(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["wake-snoozed"]
    assert entry["task"] == "mailbox.tasks.wake_snoozed"
    assert entry["schedule"] == settings.CELERY_BEAT_SCHEDULE["poll-due-accounts"]["schedule"]


# --- New mail in a snoozed conversation (a real sync from Dovecot) -----------------------------------


def _reply_to(original_id: str, subject: str, body: str) -> bytes:
    raw = build_message(subject, body, date="Fri, 27 Nov 2026 09:00:00 +0000")
    return raw.replace(b"\r\n\r\n", f"\r\nIn-Reply-To: {original_id}\r\n\r\n".encode(), 1)


@pytest.mark.sqlite
@pytest.mark.dovecot
def test_a_reply_arriving_brings_its_snoozed_conversation_back(alice, alice_client, pop_user, dovecot_account):
    account = dovecot_account()
    pop_user.deliver(build_message("Trip planning", "Where to?", message_id="<trip@example.net>"))
    pop_user.deliver(build_message("Other things", "Hello", message_id="<other@example.net>"))
    assert sync.sync_account(account.id).fetched == 2
    trip = Message.objects.get(subject="Trip planning")
    other = Message.objects.get(subject="Other things")
    later = timezone.now() + dt.timedelta(days=3)
    actions.snooze(alice.id, [trip.id], later)
    actions.snooze(alice.id, [other.id], later)
    pop_user.deliver(_reply_to("<trip@example.net>", "Re: Trip planning", "The mountains!"))
    assert sync.sync_account(account.id).fetched == 1
    reply = Message.objects.get(subject="Re: Trip planning")
    assert reply.thread_id == trip.thread_id
    trip.refresh_from_db()
    assert (trip.folder, trip.snoozed_until) == (Folder.INBOX, None)
    assert listed(alice_client, view="conversations") == ["Re: Trip planning"]
    assert Message.objects.get(id=other.id).folder == Folder.SNOOZED  # another conversation sleeps on


@pytest.mark.sqlite
@pytest.mark.dovecot
def test_a_reply_a_rule_files_elsewhere_leaves_the_conversation_asleep(alice, pop_user, dovecot_account):
    account = dovecot_account()
    Rule.objects.create(owner=alice, field="subject", contains="re: trip", action="move", folder=Folder.ARCHIVE)
    pop_user.deliver(build_message("Trip planning", "Where to?", message_id="<trip2@example.net>"))
    sync.sync_account(account.id)
    trip = Message.objects.get(subject="Trip planning")
    actions.snooze(alice.id, [trip.id], timezone.now() + dt.timedelta(days=3))
    pop_user.deliver(_reply_to("<trip2@example.net>", "Re: Trip planning", "The sea!"))
    sync.sync_account(account.id)
    assert Message.objects.get(subject="Re: Trip planning").folder == Folder.ARCHIVE
    assert Message.objects.get(id=trip.id).folder == Folder.SNOOZED


# --- The beat task on a real worker ------------------------------------------------------------------


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_wake_task_on_a_worker(alice, account, celery_worker):
    made = rows(account, [("Due now", 5, Folder.INBOX, None), ("Due later", 6, Folder.INBOX, None)])
    actions.snooze(alice.id, [made[0].id], timezone.now() + dt.timedelta(seconds=1))
    actions.snooze(alice.id, [made[1].id], timezone.now() + dt.timedelta(days=1))
    # As if the time had come: the row says it is due (the sweep reads nothing else).
    Message.objects.filter(id=made[0].id).update(snoozed_until=timezone.now() - dt.timedelta(minutes=1))
    tasks.wake_snoozed.delay()
    wait_for(lambda: Message.objects.get(id=made[0].id).folder == Folder.INBOX)
    assert Message.objects.get(id=made[1].id).folder == Folder.SNOOZED
    connection.close()
