"""Calendar invitations: parsing (zones, all-day, recurring, floating, hostile input), the iTIP REPLY,
answering end to end through the test SMTP server, updates and cancellations, the .ics download."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import zoneinfo

import icalendar
import pytest
from django.test import Client
from django.urls import reverse

from accounts.views_prefs import save_preferences
from mailbox import ical, invitations, itip
from mailbox.models import CalendarEntry
from outgoing import send
from outgoing.models import OutgoingMessage, OutgoingState
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def ics(
    *,
    method="REQUEST",
    uid="meeting-1@example.net",
    sequence=0,
    summary="Budget review",
    start="DTSTART;TZID=Europe/Berlin:20261203T140000",
    end="DTEND;TZID=Europe/Berlin:20261203T153000",
    extra="",
    before="",
) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Example//EN",
        f"METHOD:{method}",
        before,
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        "DTSTAMP:20261126T090000Z",
        start,
        end,
        f"SUMMARY:{summary}",
        "LOCATION:Room 4.2\\, Main building",
        'ORGANIZER;CN="Carol Jones":mailto:carol@example.net',
        'ATTENDEE;CN="Alice Example";PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:alice@example.org',
        'ATTENDEE;CN="Dan Brown";PARTSTAT=ACCEPTED:mailto:dan@example.net',
        extra,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(line for line in lines if line) + "\r\n"


def invitation_mail(calendar: str, subject="Invitation: Budget review", uidl="inv-1"):
    return build_message(subject, "You are invited.", attachments=[("invite.ics", "text/calendar", calendar.encode())])


CUSTOM_ZONE = "\r\n".join(
    [
        "BEGIN:VTIMEZONE",
        "TZID:Our Office Time",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:19700329T020000",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
    ]
)


# --- Parsing ---------------------------------------------------------------------------


def test_tzid_from_the_time_zone_database_gives_an_aware_time():
    [event] = ical.read(ics()).events
    assert event.start.aware
    assert event.start.value.astimezone(dt.UTC) == dt.datetime(2026, 12, 3, 13, 0, tzinfo=dt.UTC)


def test_tzid_described_by_the_files_own_vtimezone_is_resolved():
    calendar = ical.read(
        ics(
            before=CUSTOM_ZONE,
            start="DTSTART;TZID=Our Office Time:20260701T100000",
            end="DTEND;TZID=Our Office Time:20260701T110000",
        )
    )
    [event] = calendar.events
    # July: the zone's daylight rule, UTC+2.
    assert event.start.value.astimezone(dt.UTC) == dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
    assert event.end.value.astimezone(dt.UTC) == dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)


def test_all_day_event_is_a_date_and_its_exclusive_end_is_dropped():
    [event] = ical.read(ics(start="DTSTART;VALUE=DATE:20261224", end="DTEND;VALUE=DATE:20261225")).events
    assert event.start.all_day and event.start.value == dt.date(2026, 12, 24)
    assert event.end is None
    [two_days] = ical.read(ics(start="DTSTART;VALUE=DATE:20261224", end="DTEND;VALUE=DATE:20261226")).events
    assert two_days.end.value == dt.date(2026, 12, 25)


def test_floating_time_stays_as_written():
    [event] = ical.read(ics(start="DTSTART:20261203T090000", end="DTEND:20261203T100000")).events
    assert not event.start.aware and event.start.value == dt.datetime(2026, 12, 3, 9, 0)


def test_recurring_event_and_one_occurrence_are_told_apart():
    [series] = ical.read(ics(extra="RRULE:FREQ=WEEKLY;COUNT=10")).events
    assert series.recurring and not series.recurrence_id
    [occurrence] = ical.read(ics(extra="RECURRENCE-ID;TZID=Europe/Berlin:20261210T140000")).events
    assert not occurrence.recurring and occurrence.recurrence_id == "20261210T140000"


def test_title_loses_the_invitation_prefix_and_keeps_the_rest():
    [event] = ical.read(ics(summary="Invitation: Invitation: Budget review: Q3")).events
    assert event.title == "Budget review: Q3"


def test_organizer_attendees_sequence_and_uid_are_read():
    [event] = ical.read(ics(sequence=3)).events
    assert (event.organizer_name, event.organizer_email) == ("Carol Jones", "carol@example.net")
    assert [(p.name, p.email, p.partstat) for p in event.attendees] == [
        ("Alice Example", "alice@example.org", "NEEDS-ACTION"),
        ("Dan Brown", "dan@example.net", "ACCEPTED"),
    ]
    assert (event.uid, event.sequence, event.location) == ("meeting-1@example.net", 3, "Room 4.2, Main building")


def test_hostile_input_is_bounded_and_never_raises():
    assert ical.read("not a calendar at all").events == []
    unfinished = ical.read("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2026xx\r\n")  # no END lines
    assert all(event.start is None for event in unfinished.events)
    many = "".join(
        f"BEGIN:VEVENT\r\nUID:{n}\r\nSUMMARY:e{n}\r\nDTSTART:20261203T090000Z\r\nEND:VEVENT\r\n" for n in range(500)
    )
    assert len(ical.read(f"BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\n{many}END:VCALENDAR\r\n").events) == ical.MAX_EVENTS
    crowd = "".join(f"ATTENDEE:mailto:p{n}@example.net\r\n" for n in range(400))
    [event] = ical.read(ics(extra=crowd.rstrip("\r\n"))).events
    assert len(event.attendees) == ical.MAX_ATTENDEES and event.more_attendees == 402 - ical.MAX_ATTENDEES
    [event] = ical.read(ics(summary="x" * 100_000, start="DTSTART:20261340T990000Z")).events
    assert len(event.title) == 300 and event.start is None
    # A file beyond the read limit is cut, not parsed whole.
    assert ical.read(ics() + "X-PAD:" + "y" * (ical.MAX_TEXT_CHARS * 2)).method in ("", "REQUEST")


# --- The REPLY -------------------------------------------------------------------------


def test_reply_names_the_event_exactly_and_carries_only_the_attendees_answer():
    source = ical.parse(ics(sequence=2, before=CUSTOM_ZONE, extra="RECURRENCE-ID;TZID=Our Office Time:20261210T140000"))
    now = dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC)
    raw = itip.build_reply(
        source,
        uid="meeting-1@example.net",
        recurrence_id="20261210T140000",
        attendee_email="alice@example.org",
        attendee_name="Alice Example",
        partstat="TENTATIVE",
        now=now,
    )
    reply = icalendar.Calendar.from_ical(raw)
    assert str(reply["METHOD"]) == "REPLY"
    [event] = reply.walk("VEVENT")
    assert str(event["UID"]) == "meeting-1@example.net"
    assert int(event["SEQUENCE"]) == 2
    assert event.decoded("DTSTAMP") == now
    assert event["RECURRENCE-ID"].params["TZID"] == "Our Office Time"
    assert event.decoded("RECURRENCE-ID").replace(tzinfo=None) == dt.datetime(2026, 12, 10, 14, 0)
    assert str(event["ORGANIZER"]) == "mailto:carol@example.net"
    attendee = event["ATTENDEE"]
    assert not isinstance(attendee, list)
    assert str(attendee) == "mailto:alice@example.org" and attendee.params["PARTSTAT"] == "TENTATIVE"
    # Every TZID the reply uses is described: the file's own zone copied, the database's one added.
    assert sorted(str(z["TZID"]) for z in reply.walk("VTIMEZONE")) == ["Europe/Berlin", "Our Office Time"]


def test_reply_refuses_an_unknown_answer_and_an_unknown_event():
    source = ical.parse(ics())
    kwargs = {"attendee_email": "a@example.org", "attendee_name": "", "now": dt.datetime.now(dt.UTC)}
    with pytest.raises(ValueError):
        itip.build_reply(source, uid="meeting-1@example.net", recurrence_id="", partstat="MAYBE", **kwargs)
    with pytest.raises(itip.NoSuchEvent):
        itip.build_reply(source, uid="other@example.net", recurrence_id="", partstat="ACCEPTED", **kwargs)


# --- Answering, end to end ---------------------------------------------------------------


def _answer_url(message):
    return reverse("mailbox:calendar_answer", args=[message.attachments.get().id])


def test_accepting_sends_a_reply_to_the_organiser_and_the_card_says_so(
    alice, alice_client, smtp_account, smtp_server, send_enqueued, django_capture_on_commit_callbacks
):
    account = smtp_account()
    message = store_message(account, invitation_mail(ics()), "inv-1")
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert ">Accept<" in page and '<h2 dir="auto">Budget review</h2>' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            _answer_url(message), {"uid": "meeting-1@example.net", "recurrence_id": "", "answer": "ACCEPTED"}
        )
    assert response.status_code == 302
    [outgoing_id] = send_enqueued
    assert send.deliver(outgoing_id) == send.Outcome.SENT
    [got] = smtp_server.received
    assert got.rcpt_tos == ["carol@example.net"]
    mail = email.message_from_bytes(got.data, policy=email.policy.default)
    assert mail["Subject"] == "Accepted: Budget review"
    assert mail["In-Reply-To"] == message.message_id
    parts = {part.get_content_type(): part for part in mail.walk() if not part.is_multipart()}
    assert set(parts) == {"text/plain", "text/calendar"}
    assert parts["text/calendar"].get_param("method") == "REPLY"
    reply = icalendar.Calendar.from_ical(parts["text/calendar"].get_content())
    [event] = reply.walk("VEVENT")
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    assert str(event["ATTENDEE"]) == "mailto:alice@example.org"
    assert str(event["UID"]) == "meeting-1@example.net"
    assert OutgoingMessage.objects.get(id=outgoing_id).state == OutgoingState.SENT
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "You accepted." in page and "You can change your answer" in page
    assert CalendarEntry.objects.get(message=message).answer == "ACCEPTED"


def test_answer_subject_is_in_the_users_language(alice, alice_client, smtp_account, smtp_server):
    account = smtp_account()
    message = store_message(account, invitation_mail(ics()), "inv-1")
    alice_client.post(
        _answer_url(message),
        {"uid": "meeting-1@example.net", "recurrence_id": "", "answer": "DECLINED"},
        HTTP_ACCEPT_LANGUAGE="de",
    )
    outgoing = OutgoingMessage.objects.get(state=OutgoingState.QUEUED)
    assert outgoing.subject == "Abgelehnt: Budget review"


def test_answer_needs_csrf_and_the_owner(alice, bob, smtp_account, send_enqueued):
    account = smtp_account()
    message = store_message(account, invitation_mail(ics()), "inv-1")
    data = {"uid": "meeting-1@example.net", "recurrence_id": "", "answer": "ACCEPTED"}
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(_answer_url(message), data).status_code == 403
    assert alice_client_get(alice, _answer_url(message)).status_code == 405
    intruder = Client()
    intruder.force_login(bob)
    assert intruder.post(_answer_url(message), data).status_code == 404
    assert send_enqueued == [] and not OutgoingMessage.objects.exists()


def alice_client_get(user, url):
    client = Client()
    client.force_login(user)
    return client.get(url)


def test_answer_without_sending_settings_is_refused_and_nothing_is_recorded(alice, alice_client, send_enqueued):
    account = make_account(alice, username="alice@example.org")
    message = store_message(account, invitation_mail(ics()), "inv-1")
    response = alice_client.post(
        _answer_url(message), {"uid": "meeting-1@example.net", "recurrence_id": "", "answer": "ACCEPTED"}, follow=True
    )
    assert "Set up sending" in response.content.decode()
    assert send_enqueued == [] and not CalendarEntry.objects.exclude(answer="").exists()


# --- Updates and cancellations -------------------------------------------------------------


def test_an_update_supersedes_the_first_invitation_even_if_never_opened(alice, alice_client, smtp_account):
    account = smtp_account()
    first = store_message(account, invitation_mail(ics(summary="Budget review")), "inv-1")
    update = store_message(
        account, invitation_mail(ics(sequence=1, summary="Budget review (moved)"), "Updated invitation"), "inv-2"
    )
    old_page = alice_client.get(reverse("mailbox:message", args=[first.id])).content.decode()
    assert "A newer version of this invitation arrived" in old_page
    assert reverse("mailbox:message", args=[update.id]) in old_page
    assert ">Accept<" not in old_page
    new_page = alice_client.get(reverse("mailbox:message", args=[update.id])).content.decode()
    assert "Updated invitation" in new_page and ">Accept<" in new_page
    assert "A newer version" not in new_page


def test_a_cancellation_is_shown_and_marks_the_invitation(alice, alice_client, smtp_account):
    account = smtp_account()
    first = store_message(account, invitation_mail(ics()), "inv-1")
    cancel = store_message(
        account, invitation_mail(ics(method="CANCEL", sequence=1, extra="STATUS:CANCELLED"), "Cancelled"), "inv-2"
    )
    cancel_page = alice_client.get(reverse("mailbox:message", args=[cancel.id])).content.decode()
    assert "Cancelled" in cancel_page and ">Accept<" not in cancel_page and "Add to calendar" not in cancel_page
    old_page = alice_client.get(reverse("mailbox:message", args=[first.id])).content.decode()
    assert "This event was cancelled later." in old_page and ">Accept<" not in old_page


def test_the_same_event_in_two_parts_is_one_card(alice, smtp_account):
    account = smtp_account()
    raw = build_message(
        "Invitation: Budget review",
        "You are invited.",
        attachments=[("invite.ics", "text/calendar", ics().encode()), ("event.ics", "application/ics", ics().encode())],
    )
    message = store_message(account, raw, "inv-1")
    assert len(invitations.cards_for(message)) == 1


# --- The card in the user's time zone and language, and the download ---------------------------


def test_card_shows_the_time_in_the_users_zone_in_german(alice, alice_client, smtp_account):
    save_preferences(alice, time_zone="America/New_York", conversations=True)
    account = smtp_account()
    message = store_message(account, invitation_mail(ics(extra="RRULE:FREQ=WEEKLY")), "inv-1")
    page = alice_client.get(reverse("mailbox:message", args=[message.id]), HTTP_ACCEPT_LANGUAGE="de")
    text = page.content.decode()
    # 14:00 in Berlin (UTC+1 in December) is 8:00 in New York.
    assert "08:00" in text and "09:30" in text, text
    assert "Einladung" in text and "Zusagen" in text and "Teilnehmer" in text and "wiederkehrend" in text


def test_add_to_calendar_downloads_the_file_as_received(alice, alice_client, smtp_account):
    account = smtp_account()
    body = ics(summary="Budget review")
    message = store_message(account, invitation_mail(body), "inv-1")
    response = alice_client.get(reverse("mailbox:calendar_ics", args=[message.attachments.get().id]))
    assert response["Content-Type"] == "text/calendar"
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content) == body.encode()


def test_zone_names_resolve_for_windows_names():
    [event] = ical.read(ics(start="DTSTART;TZID=W. Europe Standard Time:20261203T140000", end="")).events
    assert event.start.value.utcoffset() == zoneinfo.ZoneInfo("Europe/Berlin").utcoffset(
        dt.datetime(2026, 12, 3, 14, 0)
    )
