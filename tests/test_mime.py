"""MIME parsing: headers, bodies as mail clients choose them, attachments, charsets, bounds."""

from __future__ import annotations

import datetime as dt
import email.policy
import io
import struct
from email.message import EmailMessage

import pytest

from mailbox import mime


def _message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("sender", "Carol <carol@example.net>")
    msg["To"] = headers.pop("to", "alice@example.org")
    msg["Subject"] = headers.pop("subject", "Hello")
    msg["Date"] = headers.pop("date", "Thu, 26 Nov 2026 09:00:00 +0100")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def _parse(msg: EmailMessage, policy=email.policy.SMTP) -> mime.ParsedMessage:
    return mime.parse_bytes(msg.as_bytes(policy=policy))


# --- Headers ----------------------------------------------------------------------------


def test_headers_are_decoded_into_the_parsed_message():
    msg = _message(
        sender="Zoë Example <zoe@example.com>",
        to="Alice <alice@example.org>, bob@example.org",
        Cc="Team: dave@example.org, Erin <erin@example.org>;",
        subject="Résumé – 2026 🎉",
        Message_ID="<abc@example.com>",
        In_Reply_To="<parent@example.com>",
        References="<root@example.com> <parent@example.com>",
    )
    msg.set_content("Hi")
    parsed = _parse(msg)
    assert (parsed.subject, parsed.from_name, parsed.from_email) == (
        "Résumé – 2026 🎉",
        "Zoë Example",
        "zoe@example.com",
    )
    assert parsed.to == "Alice <alice@example.org>, bob@example.org"
    assert parsed.cc == "Team: dave@example.org, Erin <erin@example.org>;"
    assert parsed.date == dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
    assert parsed.date.utcoffset() == dt.timedelta(hours=1)
    assert (parsed.message_id, parsed.in_reply_to) == ("<abc@example.com>", "<parent@example.com>")
    assert parsed.references == "<root@example.com> <parent@example.com>"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?UTF-8?B?w6k=?= =?UTF-8?B?w6g=?=", "éè"),  # space between encoded words is dropped
        ("=?utf-8?b?8J+Y?= =?utf-8?b?gA==?=", "😀"),  # a character split across two words
        ("a =?utf-8?q?b?= c", "a b c"),
        ("=?iso-8859-1*fr?q?d=E9j=E0?=", "déjà"),  # RFC 2231 language suffix
        ("=?bogus?q?plain?=", "plain"),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("=?utf-8?b?PT91dGYtOD9xP3g/PQ==?=", "=?utf-8?q?x?="),  # decoded once, never recursively
    ],
)
def test_encoded_words_are_decoded_as_mail_clients_do(raw, expected):
    assert mime.decode_words(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu, 26 Nov 2026 09:00:00 +0100", "2026-11-26T09:00:00+01:00"),
        ("26 Nov 2026 09:00 GMT", "2026-11-26T09:00:00+00:00"),
        ("Thu, 26 Nov 26 09:00:00 EST", "2026-11-26T09:00:00-05:00"),
        ("Thu, 26 Nov 2026 09:00:60 +0000", "2026-11-26T09:00:59+00:00"),  # leap second
        ("2026-11-26T09:00:00Z", "2026-11-26T09:00:00+00:00"),
        ("2026-11-26 09:00", "2026-11-26T09:00:00+00:00"),
        ("Thu, 26 Nov 2026 09:00:00", "2026-11-26T09:00:00+00:00"),
    ],
)
def test_dates_in_common_and_broken_forms_are_timezone_aware(text, expected):
    assert mime.parse_date(text) == dt.datetime.fromisoformat(expected)
    assert mime.parse_date(text).tzinfo is not None


@pytest.mark.parametrize("text", ["", "yesterday", "Thu, 32 Nov 2026 09:00:00 +0000", "Mon, 1 Jan 1800 00:00 +0000"])
def test_hopeless_dates_are_none(text):
    assert mime.parse_date(text) is None


def test_a_date_far_in_the_future_falls_back_to_the_receiving_servers_stamp():
    msg = _message(date="Fri, 1 Jan 2100 00:00:00 +0000")
    msg["Received"] = "from a by b; Wed, 25 Nov 2026 08:00:00 +0000"
    msg.set_content("x")
    parsed = mime.parse_bytes(msg.as_bytes(), received_at=dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    assert parsed.date == dt.datetime(2026, 11, 25, 8, tzinfo=dt.UTC)
    assert "date-in-future" in parsed.defects


def test_malformed_addresses_are_kept_as_text():
    parsed = mime.parse_bytes(b"From: Someone <not an address\r\nTo: x@, <>, ok@example.org\r\n\r\nbody")
    assert parsed.from_email == ""
    assert "Someone" in parsed.from_name
    assert parsed.to == "x@, <>, ok@example.org"


# --- Bodies -----------------------------------------------------------------------------


def test_alternative_gives_html_for_display_and_plain_for_the_snippet():
    msg = _message()
    msg.set_content("The plain words.")
    msg.add_alternative("<html><body><p>The <b>rich</b> words.</p></body></html>", subtype="html")
    parsed = _parse(msg)
    assert parsed.text_body == "The plain words.\n"
    assert "<b>rich</b>" in parsed.html_body
    assert parsed.snippet == "The plain words."
    assert "The plain words." in parsed.search_text


def test_html_only_snippet_is_readable_text_without_markup_scripts_or_styles():
    msg = _message()
    msg.set_content(
        "<html><head><title>Title</title><style>p{color:red}</style></head><body>"
        "<!-- tracking --><script>var x = '<p>no</p>';</script><p>Dear&nbsp;Alice,</p>"
        "<div>\u200c\u200c\u200c Your invoice &amp; receipt</div></body></html>",
        subtype="html",
    )
    parsed = _parse(msg)
    assert parsed.text_body == ""
    assert parsed.snippet == "Dear Alice, Your invoice & receipt"


def test_html_to_text_stays_linear_on_unclosed_hostile_markup():
    hostile = "<script" * 20000 + "<!--" * 20000 + "<style>" * 20000 + "<" * 50000
    assert mime.html_to_text("<p>visible</p>" + hostile).strip().startswith("visible")


def test_related_images_are_inline_attachments_with_their_content_id():
    msg = _message()
    msg.set_content("plain")
    msg.add_alternative('<p><img src="cid:logo@example.com"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG....", "image", "png", cid="<logo@example.com>")
    parsed = _parse(msg)
    (image,) = parsed.attachments
    assert (image.content_id, image.inline, image.content_type, image.data) == (
        "logo@example.com",
        True,
        "image/png",
        b"\x89PNG....",
    )
    assert 'src="cid:logo@example.com"' in parsed.html_body


def test_mixed_shows_every_inline_text_part_in_order():
    msg = _message()
    msg.set_content("First part.")
    msg.add_attachment(b"data", maintype="application", subtype="pdf", filename="a.pdf")
    footer = EmailMessage()
    footer.set_content("-- \nList footer")
    msg.attach(footer)
    parsed = _parse(msg)
    assert parsed.text_body.startswith("First part.")
    assert parsed.text_body.rstrip().endswith("List footer")
    assert [a.filename for a in parsed.attachments] == ["a.pdf"]


def test_format_flowed_text_is_joined_into_paragraphs():
    raw = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n\r\n"
        b"One long para \r\ngraph.\r\n> quo \r\n> ted\r\n-- \r\nsig\r\n"
    )
    assert mime.parse_bytes(raw).text_body == "One long paragraph.\n> quoted\n-- \nsig\n"


def test_a_calendar_invitation_has_a_readable_summary():
    ics = (
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Planning\\, 2027\r\n"
        "DTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nLOCATION:Room\r\n 12\r\n"
        'ORGANIZER;CN="Bob B":mailto:bob@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n'
    )
    msg = _message()
    msg.set_content("Join us")
    msg.add_alternative(ics.encode(), maintype="text", subtype="calendar", params={"method": "REQUEST"})
    parsed = _parse(msg)
    assert parsed.calendar_summary == (
        "Invitation: Planning, 2027\nWhen: 2026-12-01 10:00 UTC – 2026-12-01 11:00 UTC\n"
        "Where: Room12\nOrganizer: Bob B <bob@example.org>"
    )
    assert parsed.attachments[0].filename == "invite.ics"
    assert "Planning, 2027" in parsed.search_text


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        # A Windows zone name is read as the zone it stands for; the sender's prefix is said once.
        (
            "SUMMARY:Invitation: Sync\r\nDTSTART;TZID=W. Europe Standard Time:20261201T100000\r\n"
            "DTEND;TZID=Europe/Berlin:20261201T110000\r\n",
            "Invitation: Sync\nWhen: 2026-12-01 10:00 (Europe/Berlin) – 2026-12-01 11:00 (Europe/Berlin)",
        ),
        # DTEND of an all-day event is the day after: a one-day event shows one date.
        (
            "DTSTART;VALUE=DATE:20261201\r\nDTEND;VALUE=DATE:20261202\r\nORGANIZER:mailto:a@example.org\r\n",
            "Invitation: (no title)\nWhen: 2026-12-01\nOrganizer: a@example.org",
        ),
        # A floating time has no zone; a broken date leaves the rest of the summary.
        ("SUMMARY:Floating\r\nDTSTART:20261201T100000\r\n", "Invitation: Floating\nWhen: 2026-12-01 10:00"),
        ("SUMMARY:Broken\r\nDTSTART:20261301T250000\r\nLOCATION:Here\r\n", "Invitation: Broken\nWhere: Here"),
    ],
)
def test_calendar_summary_reads_zones_and_all_day_events(event, expected):
    ics = f"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n{event}END:VEVENT\r\nEND:VCALENDAR\r\n"
    assert mime.calendar_summary(ics) == expected


def test_only_the_first_event_of_a_big_calendar_is_read_and_few_calendar_parts_are():
    events = "".join(f"BEGIN:VEVENT\r\nSUMMARY:Event {i}\r\nEND:VEVENT\r\n" for i in range(5000))
    assert mime.calendar_summary(f"BEGIN:VCALENDAR\r\n{events}END:VCALENDAR\r\n") == "Event: Event 0"
    part = b"--b\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:E%d\r\nEND:VEVENT\r\n"
    parts = b"".join(part % i + b"END:VCALENDAR\r\n" for i in range(mime.walker.MAX_CALENDARS + 3))
    parsed = mime.parse_bytes(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--")
    assert parsed.calendar_summary.split("\n\n") == [f"Event: E{i}" for i in range(mime.walker.MAX_CALENDARS)]
    assert len(parsed.attachments) == mime.walker.MAX_CALENDARS + 3


# --- Attachments --------------------------------------------------------------------------


def test_attached_message_is_listed_byte_exact_and_opens_as_a_message():
    inner = _message(subject="The original")
    inner.set_content("Original body")
    inner_bytes = inner.as_bytes(policy=email.policy.SMTP)
    raw = (
        b"From: a@example.net\r\nSubject: Fwd\r\nContent-Type: multipart/mixed; boundary=f\r\n\r\n"
        b"--f\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
        b"--f\r\nContent-Type: message/rfc822\r\n\r\n" + inner_bytes + b"\r\n--f--\r\n"
    )
    (attached,) = mime.parse_bytes(raw).attachments
    assert (attached.filename, attached.content_type, attached.data) == (
        "The original.eml",
        "message/rfc822",
        inner_bytes,
    )
    opened = mime.parse_bytes(attached.data)
    assert (opened.subject, opened.text_body) == ("The original", "Original body\n")


def test_file_names_come_from_disposition_then_content_type_and_lose_any_folder():
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b'--b\r\nContent-Type: application/pdf; name="from-type.pdf"\r\n\r\nA\r\n'
        b'--b\r\nContent-Type: application/pdf; name="ignored.pdf"\r\n'
        b'Content-Disposition: attachment; filename="..\\\\..\\\\windows\\\\from-disposition.pdf"\r\n\r\nB\r\n'
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n"
        b" filename*0*=UTF-8''%E2%82%AC%20; filename*1*=report.pdf\r\n\r\nC\r\n--b--\r\n"
    )
    names = [a.filename for a in mime.parse_bytes(raw).attachments]
    assert names == ["from-type.pdf", "from-disposition.pdf", "€ report.pdf"]


def _tnef(files: list[tuple[str, bytes]]) -> bytes:
    def attribute(level: int, attr_id: int, payload: bytes) -> bytes:
        return struct.pack("<BII", level, attr_id, len(payload)) + payload + struct.pack("<H", sum(payload) & 0xFFFF)

    out = struct.pack("<IH", 0x223E9F78, 1) + attribute(1, 0x00089006, b"\0\0\1\0")
    for name, data in files:
        out += attribute(2, 0x00069002, bytes(14))
        out += attribute(2, 0x00018010, name.encode() + b"\0")
        out += attribute(2, 0x0006800F, data)
    return out


def test_winmail_dat_is_replaced_by_the_files_inside_it():
    msg = _message()
    msg.set_content("Outlook")
    msg.add_attachment(
        _tnef([("a.txt", b"alpha"), ("b.bin", b"\0beta")]),
        maintype="application",
        subtype="ms-tnef",
        filename="winmail.dat",
    )
    parsed = _parse(msg)
    assert [(a.filename, a.data) for a in parsed.attachments] == [("a.txt", b"alpha"), ("b.bin", b"\0beta")]
    assert parsed.attachments[0].content_type == "text/plain"


@pytest.mark.parametrize("data", [b"", b"x" * 10, _tnef([("a", b"x" * 100)])[:-30], b"\x78\x9f\x3e\x22" + b"\xff" * 64])
def test_broken_tnef_yields_no_files_and_never_raises(data):
    assert mime.tnef_files(data) == []


def test_signature_and_encrypted_parts_are_attachments_with_useful_names():
    raw = (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=s\r\n\r\n'
        b"--s\r\nContent-Type: text/plain\r\n\r\nsigned words\r\n"
        b"--s\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"AAEC\r\n--s--\r\n"
    )
    parsed = mime.parse_bytes(raw)
    assert parsed.text_body == "signed words"
    assert [(a.filename, a.data) for a in parsed.attachments] == [("smime.p7s", b"\x00\x01\x02")]


# --- Charsets ------------------------------------------------------------------------------


RUSSIAN = "Привет, как дела? Всё хорошо, спасибо. Мы встретимся завтра утром у входа в библиотеку."


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("Grüße".encode("iso-8859-1"), "iso-8859-1", "Grüße"),
        ("Grüße".encode(), "iso-8859-1", "Grüße"),  # mislabelled UTF-8
        ("Grüße".encode(), "x-no-such-charset", "Grüße"),
        ("Grüße aus Köln".encode("cp1252"), "utf-8", "Grüße aus Köln"),  # mislabelled Latin-1
        ("“quoted”".encode("cp1252"), "iso-8859-1", "“quoted”"),  # the windows-1252 superset
        (RUSSIAN.encode("koi8-r"), None, RUSSIAN),  # undeclared: detected
        (b"\x81\x8d\x8f", "utf-8", "\ufffd\ufffd\ufffd"),  # nothing fits: Latin-1 with replacement
        ("中文".encode("gb2312"), "GB2312", "中文"),
        ("x".encode("utf-16"), "punycode", "ÿþx\x00"),  # a refused codec: never a slow decoder
    ],
)
def test_charsets_declared_then_utf8_then_detection_then_latin1(data, charset, expected):
    assert mime.decode_text(data, charset) == expected


def test_nul_bytes_and_lone_surrogates_never_reach_the_database():
    parsed = mime.parse_bytes(b"Subject: a\x00b\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n+2D8-x\x00y")
    assert parsed.subject == "ab"
    assert "\x00" not in parsed.text_body
    parsed.text_body.encode("utf-8")  # no lone surrogate left


# --- Bounds and inputs -----------------------------------------------------------------------


def test_too_many_parts_stops_with_a_notice(monkeypatch):
    monkeypatch.setattr(mime.walker, "MAX_PARTS", 10)
    parts = b"".join(b"--b\r\nContent-Disposition: attachment\r\n\r\nx\r\n" for _ in range(50))
    parsed = mime.parse_bytes(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--")
    assert len(parsed.attachments) == 9
    assert "more than 10 parts" in parsed.parse_notice


def test_deep_nesting_stops_with_a_notice(monkeypatch):
    monkeypatch.setattr(mime.walker, "MAX_DEPTH", 3)
    body = b"Content-Type: text/plain\r\n\r\ndeepest"
    for level in range(6):
        body = b"Content-Type: multipart/mixed; boundary=l%d\r\n\r\n--l%d\r\n%s\r\n--l%d--" % (
            level,
            level,
            body,
            level,
        )
    parsed = mime.parse_bytes(b"Subject: deep\r\n" + body)
    assert parsed.subject == "deep"
    assert "nested more than 3 levels" in parsed.parse_notice
    assert "deepest" not in parsed.text_body


def test_huge_headers_are_cut_with_a_notice_but_keep_the_fields_webpop_uses(monkeypatch):
    monkeypatch.setattr(mime.headers, "MAX_HEADER_BYTES", 1000)
    raw = b"".join(b"X-Junk-%d: %s\r\n" % (i, b"j" * 50) for i in range(100)) + b"Subject: found\r\n\r\nbody"
    parsed = mime.parse_bytes(raw)
    assert (parsed.subject, parsed.text_body) == ("found", "body")
    assert parsed.parse_notice


def test_parse_file_accepts_any_binary_file_object_including_empty():
    assert mime.parse_file(io.BytesIO(b"Subject: mem\r\n\r\nx")).subject == "mem"
    assert mime.parse(b"").subject == ""
    assert mime.parse_file(io.BytesIO(b"")).attachments == []


def test_parse_file_maps_real_files(tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(
        b"Subject: mapped\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg=="
    )
    with open(path, "rb") as fh:
        parsed = mime.parse_file(fh)
    assert (parsed.subject, parsed.attachments[0].data) == ("mapped", b"%PDF")
