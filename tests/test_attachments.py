"""Attachment previews without a browser: thumbnails and their bounds, the preview page, the ZIP, words for types.

Browser journeys (lightbox, PDF rendering, screenshots, axe) are in test_attachments_browser.py.
"""

from __future__ import annotations

import io
import os
import re
import zipfile

import pytest
from django.urls import reverse
from django.utils import translation
from PIL import Image, ImageFile

from accounts.views_prefs import save_preferences
from mailbox import attachment_zip, attachments, store, thumbnails, views_attachments
from tests import attachment_samples as samples
from tests import html_samples
from tests.factories import make_account, store_message

pytestmark = pytest.mark.django_db


def _store(owner, files, uidl="u1", subject="Files"):
    return store_message(make_account(owner), samples.message_with(files, subject=subject), uidl)


def _image_url(attachment, size="thumb") -> str:
    return reverse("mailbox:attachment_image", args=[attachment.id, size])


def _preview(client, attachment):
    return client.get(reverse("mailbox:attachment_preview", args=[attachment.id]))


@pytest.fixture
def decodes(monkeypatch) -> list[tuple[int, int]]:
    """The sizes of the images Pillow decodes (it still decodes them: this only watches)."""
    seen: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def load(self):
        if self.tile:  # data still to decode (load() returns at once for an image already decoded)
            seen.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return seen


# --- Thumbnails ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "data"),
    [
        ("photo.jpg", "image/jpeg", samples.image("JPEG", (1600, 1200))),
        ("shot.png", "image/png", samples.image("PNG", (800, 600))),
        ("anim.gif", "image/gif", samples.animated_gif()),
        ("pic.webp", "image/webp", samples.image("WEBP", (900, 500))),
        ("camera.jpg", "application/octet-stream", samples.image("JPEG", (640, 480))),  # the name decides
    ],
)
def test_thumbnails_of_each_raster_format(alice_client, alice, name, content_type, data):
    attachment = _store(alice, [(name, content_type, data)]).attachments.get()
    response = alice_client.get(_image_url(attachment))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    thumb = Image.open(io.BytesIO(response.content))
    assert thumb.format == "WEBP" and thumb.width <= 320 and thumb.height <= 240
    assert len(thumb.convert("RGB").getcolors(maxcolors=100_000) or ()) > 2  # a picture, not a blank
    large = Image.open(io.BytesIO(alice_client.get(_image_url(attachment, "large")).content))
    assert large.width <= 2048 and large.height <= 2048 and large.width >= thumb.width


def test_a_thumbnail_is_upright_and_carries_none_of_the_senders_metadata(alice_client, alice):
    attachment = _store(alice, [("camera.jpg", "image/jpeg", samples.jpeg_with_exif())]).attachments.get()
    response = alice_client.get(_image_url(attachment, "large"))
    thumb = Image.open(io.BytesIO(response.content))
    assert (thumb.width, thumb.height) == (200, 400)  # 400×200 turned by its EXIF orientation
    assert not thumb.getexif() and "icc_profile" not in thumb.info and "exif" not in thumb.info
    assert b"SecretCam" not in response.content


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (30_000, 30_000),  # 900 megapixels in 110 KB: Pillow's own bomb check
        (8_000, 8_000),  # 64 megapixels: under Pillow's limit, over ours
    ],
)
def test_images_with_too_many_pixels_are_refused_without_decoding(alice_client, alice, decodes, width, height):
    bomb = samples.png_bomb(width, height)
    assert len(bomb) < 2 * 1024 * 1024
    message = _store(alice, [("bomb.png", "image/png", bomb)])
    attachment = message.attachments.get()
    for size in ("thumb", "large"):
        assert alice_client.get(_image_url(attachment, size)).status_code == 404
    assert decodes == []
    assert alice_client.get(reverse("mailbox:message", args=[message.id])).status_code == 200
    preview = _preview(alice_client, attachment)
    assert preview.status_code == 200 and decodes == []
    assert "This image cannot be shown" in preview.content.decode()
    assert _image_url(attachment, "large") not in preview.content.decode()


def test_a_big_jpeg_is_decoded_at_a_reduced_scale(alice_client, alice, decodes):
    attachment = _store(alice, [("big.jpg", "image/jpeg", samples.image("JPEG", (6000, 4500)))]).attachments.get()
    assert alice_client.get(_image_url(attachment)).status_code == 200
    assert decodes and all(w * h <= 6000 * 4500 // 16 for w, h in decodes), decodes  # 27 MP read as 1.7 MP


def test_truncated_and_fake_images_are_refused_and_the_refusal_remembered(alice_client, alice, decodes):
    jpeg = samples.image("JPEG", (800, 600))
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    message = _store(
        alice,
        [
            ("cut.jpg", "image/jpeg", jpeg[: len(jpeg) // 2]),
            ("fake.png", "image/png", svg),
            ("x.png", "image/png", b""),
        ],
    )
    for attachment in message.attachments.all():
        assert alice_client.get(_image_url(attachment)).status_code == 404, attachment.filename
    tried = len(decodes)
    cut = message.attachments.get(filename="cut.jpg")
    assert alice_client.get(_image_url(cut)).status_code == 404
    assert len(decodes) == tried  # refused from the cache, not decoded again


def test_svg_attachments_get_no_image_preview(alice_client, alice):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>'
    message = _store(alice, [("logo.svg", "image/svg+xml", svg)])
    attachment = message.attachments.get()
    assert alice_client.get(_image_url(attachment)).status_code == 404
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "attachment-thumb" not in page and "SVG image" in page
    assert reverse("mailbox:attachment_preview", args=[attachment.id]) not in page  # a download, no preview


def test_thumbnails_are_cached_by_content(alice_client, alice, decodes):
    data = samples.image("PNG", (500, 400))
    first = _store(alice, [("a.png", "image/png", data)], "u1").attachments.get()
    second = _store(alice, [("b.png", "image/png", data)], "u2").attachments.get()
    made = alice_client.get(_image_url(first)).content
    assert len(decodes) == 1
    os.remove(store.path_of(first.stored_path))  # the same content: no need to read it again
    assert alice_client.get(_image_url(second)).content == made
    assert len(decodes) == 1


def test_only_known_sizes(alice_client, alice):
    attachment = _store(alice, [("a.png", "image/png", samples.image("PNG"))]).attachments.get()
    assert alice_client.get(_image_url(attachment, "huge")).status_code == 404


def test_another_users_attachments_are_not_found(alice, bob_client):
    message = _store(alice, [("a.png", "image/png", samples.image("PNG")), ("b.txt", "text/plain", b"secret-x")])
    for attachment in message.attachments.all():
        assert bob_client.get(_image_url(attachment)).status_code == 404
        assert bob_client.get(reverse("mailbox:attachment_preview", args=[attachment.id])).status_code == 404
    assert bob_client.get(reverse("mailbox:attachments_zip", args=[message.id])).status_code == 404


def test_image_routine_refuses_oversized_files_before_opening_them(monkeypatch):
    monkeypatch.setattr(thumbnails, "MAX_FILE_BYTES", 1000)
    with pytest.raises(thumbnails.Refused):
        thumbnails.render(samples.image("PNG", (300, 300)) + b"\x00" * 1000, (10, 10))


# --- The list on the message page ----------------------------------------------------------


def test_message_page_lists_attachments_with_kind_size_and_previews(alice_client, alice):
    message = _store(
        alice,
        [
            ("photo.jpg", "image/jpeg", samples.image("JPEG")),
            ("plan.pdf", "application/pdf", samples.pdf(["x"])),
            ("tool.exe", "application/octet-stream", b"MZ" * 700),
            ("invoice\u202efdp.exe", "application/octet-stream", b"MZ"),
        ],
    )
    photo, plan = message.attachments.order_by("id")[:2]
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert _image_url(photo) in page and _image_url(photo, "large") in page
    assert reverse("mailbox:attachment_preview", args=[plan.id]) in page
    assert re.search(r"PDF, \d+ bytes", page)
    assert "EXE file, 1.4 KB" in page
    assert "\u202e" not in page and "invoicefdp.exe" in page  # no right-to-left override to hide ".exe"
    assert reverse("mailbox:attachments_zip", args=[message.id]) in page
    assert "attachments/attachments.js" in page
    with translation.override("de"):
        german = alice_client.get(reverse("mailbox:message", args=[message.id]), HTTP_ACCEPT_LANGUAGE="de").content
    assert "EXE-Datei, 1,4 KB" in german.decode()


def test_pages_without_attachments_load_no_attachment_script(alice_client, alice):
    message = _store(alice, [])
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "attachments.js" not in page and "attachments.css" not in page


def test_one_attachment_has_no_download_all(alice_client, alice):
    message = _store(alice, [("a.txt", "text/plain", b"x")])
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert reverse("mailbox:attachments_zip", args=[message.id]) not in page


# --- Preview page: text, tables, calendars, PDF --------------------------------------------


def test_text_preview_is_escaped_and_decoded(alice_client, alice):
    text = "Grüße <script>alert(1)</script>\n"
    message = _store(alice, [("notes.log", "application/octet-stream", text.encode("latin-1"))])
    response = _preview(alice_client, message.attachments.get())
    body = response.content.decode()
    assert "Grüße &lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)" not in body


def test_long_text_preview_is_cut_with_a_notice(alice_client, alice):
    data = ("line of text\n" * 40_000).encode()
    message = _store(alice, [("big.txt", "text/plain", data)])
    body = _preview(alice_client, message.attachments.get()).content.decode()
    shown = re.search(r'<pre class="text-preview"[^>]*>(.*?)</pre>', body, re.S).group(1)
    assert len(shown) == views_attachments.TEXT_PREVIEW_BYTES
    assert "Showing the first 256 KB" in body


def test_binary_file_named_txt_is_not_shown_as_text(alice_client, alice):
    message = _store(alice, [("data.txt", "text/plain", b"\x00\x01\x02binary" * 10)])
    body = _preview(alice_client, message.attachments.get()).content.decode()
    assert "does not hold text" in body and "text-preview" not in body


def test_csv_preview_is_a_table(alice_client, alice):
    csv_data = b"Name;Amount\nCarol;12\n<b>Dan</b>;7\n"
    message = _store(alice, [("sums.csv", "text/csv", csv_data)])
    body = _preview(alice_client, message.attachments.get()).content.decode()
    assert '<th scope="col" dir="auto">Amount</th>' in body
    assert '<td dir="auto">&lt;b&gt;Dan&lt;/b&gt;</td>' in body


def test_calendar_preview_shows_the_event_in_the_readers_time_zone(alice_client, alice):
    save_preferences(alice, time_zone="Asia/Tokyo", conversations=True)
    message = _store(alice, [("invite.ics", "text/calendar", samples.ICS.encode())])
    body = _preview(alice_client, message.attachments.get()).content.decode()
    card = re.search(r'<section class="calendar-card.*?</section>', body, re.S).group(0)
    assert "Quarterly planning, Q3" in card and "Alarm text" not in card
    assert "Invitation" in card and "Room 4.2, Main building" in card
    assert "Carol Jones &lt;carol@example.net&gt;" in card
    assert "10 p.m." in card and "11:30 p.m." in card  # 14:00–15:30 in Berlin
    assert "Dec. 3, 2026" in card


def test_all_day_and_unknown_zone_events(alice_client, alice):
    ics = (
        "BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\nSUMMARY:Holiday\r\nDTSTART;VALUE=DATE:20261224\r\n"
        "DTEND;VALUE=DATE:20261227\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Call\r\n"
        "DTSTART;TZID=W. Europe Standard Time:20261201T090000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    message = _store(alice, [("two.ics", "application/octet-stream", ics.encode())])
    body = _preview(alice_client, message.attachments.get()).content.decode()
    holiday, call = re.findall(r'<section class="calendar-card.*?</section>', body, re.S)
    assert "cancelled" in holiday and "Dec. 24, 2026" in holiday and "Dec. 26, 2026" in holiday and "all day" in holiday
    # The Windows zone name is resolved (Europe/Berlin, UTC+1 in December): shown in the reader's zone, UTC.
    assert "8 a.m." in call and "(UTC)" in call


def test_pdf_preview_page_loads_pdfjs_only_there(alice_client, alice):
    message = _store(alice, [("plan.pdf", "application/pdf", samples.pdf(["x"])), ("a.txt", "text/plain", b"x")])
    pdf, text = message.attachments.order_by("id")
    body = _preview(alice_client, pdf).content.decode()
    assert 'id="pdf-viewer"' in body and "vendor/pdfjs/pdf.min.mjs" in body and "attachments/pdfview.js" in body
    assert reverse("mailbox:attachment", args=[pdf.id]) in body  # pdf.js reads the download, on our page
    assert "pdfview.js" not in alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "pdfview.js" not in _preview(alice_client, text).content.decode()


def test_preview_page_steps_through_the_previewable_attachments(alice_client, alice):
    message = _store(
        alice,
        [("a.txt", "text/plain", b"a"), ("b.bin", "application/octet-stream", b"b"), ("c.txt", "text/plain", b"c")],
    )
    first, _binary, last = message.attachments.order_by("id")
    body = _preview(alice_client, first).content.decode()
    assert "1 of 2" in body and reverse("mailbox:attachment_preview", args=[last.id]) in body


# --- Download all ---------------------------------------------------------------------------


def _zip(response) -> zipfile.ZipFile:
    assert response.streaming
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_download_all_holds_every_attachment_under_safe_unique_names(alice_client, alice):
    files = [
        ("report.pdf", "application/pdf", b"%PDF-1.4 one"),
        ("Report.PDF", "application/pdf", b"%PDF-1.4 two"),
        ("..\\..\\Windows\\evil.bat", "application/octet-stream", b"@echo off"),
        ("CON.txt", "text/plain", b"device name"),
        ("photo.jpg", "image/jpeg", samples.image("JPEG")),
    ]
    message = _store(alice, files, subject="Q3 / final: numbers")
    response = alice_client.get(reverse("mailbox:attachments_zip", args=[message.id]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="Q3 _ final_ numbers.zip"'
    archive = _zip(response)
    assert archive.testzip() is None
    names = archive.namelist()
    assert names == ["report.pdf", "Report (2).PDF", "evil.bat", "attachment-4.txt", "photo.jpg"]
    for (_name, _type, data), stored in zip(files, names, strict=True):
        assert archive.read(stored) == data


def test_download_all_streams_in_bounded_pieces(alice_client, alice):
    big = os.urandom(5 * 1024 * 1024)
    message = _store(alice, [("a.bin", "application/octet-stream", big), ("b.bin", "application/octet-stream", big)])
    response = alice_client.get(reverse("mailbox:attachments_zip", args=[message.id]))
    pieces = list(response.streaming_content)
    assert max(len(p) for p in pieces) <= attachment_zip.CHUNK + 64 * 1024
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.read("a.bin") == big and archive.read("b.bin") == big


def test_download_all_refuses_what_is_too_big(alice_client, alice, monkeypatch):
    monkeypatch.setattr(views_attachments, "ZIP_MAX_BYTES", 100)
    message = _store(
        alice, [("a.bin", "application/octet-stream", b"x" * 80), ("b.bin", "application/octet-stream", b"y" * 80)]
    )
    response = alice_client.get(reverse("mailbox:attachments_zip", args=[message.id]))
    assert response.status_code == 302 and response["Location"] == reverse("mailbox:message", args=[message.id])


def test_download_all_leaves_out_a_missing_file(alice_client, alice):
    message = _store(alice, [("a.txt", "text/plain", b"aaa"), ("b.txt", "text/plain", b"bbb")])
    os.remove(store.path_of(message.attachments.get(filename="a.txt").stored_path))
    archive = _zip(alice_client.get(reverse("mailbox:attachments_zip", args=[message.id])))
    assert archive.namelist() == ["b.txt"]


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\a.txt", "a.txt"),
        ("...", "fallback"),
        ("nul", "fallback"),
        ("lpt1.tar.gz", "fallback.gz"),
        ("a\x00b\x1fc.txt", "a b c.txt"),
        ('what?<>|*".txt', "what______.txt"),
        ("name. ", "name"),
        (" .hidden", "hidden"),
        ("x" * 300 + ".pdf", "x" * 146 + ".pdf"),
    ],
)
def test_zip_names_are_plain_file_names(raw, safe):
    assert attachment_zip.safe_name(raw, "fallback") == safe


# --- Words for types and sizes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "english", "german"),
    [
        (0, "0 bytes", "0 Bytes"),
        (1, "1 byte", "1 Byte"),
        (454, "454 bytes", "454 Bytes"),
        (1536, "1.5 KB", "1,5 KB"),
        (12 * 1024 + 100, "12 KB", "12 KB"),
        (1024 * 1024 - 1, "1 MB", "1 MB"),
        (int(2.25 * 1024 * 1024), "2.3 MB", "2,3 MB"),
        (3 * 1024**3, "3 GB", "3 GB"),
    ],
)
def test_sizes_in_words(size, english, german):
    assert attachments.size_in_words(size) == english
    with translation.override("de"):
        assert attachments.size_in_words(size) == german


@pytest.mark.parametrize(
    ("name", "content_type", "family", "preview", "english"),
    [
        ("a.pdf", "application/pdf", "pdf", "pdf", "PDF"),
        ("a.pdf", "application/octet-stream", "pdf", "pdf", "PDF"),
        ("a.jpg", "image/jpeg", "image", "image", "JPEG image"),
        ("a.svg", "image/svg+xml", "image", "", "SVG image"),
        ("a.heic", "image/heic", "image", "", "HEIC image"),
        ("a.ics", "text/calendar", "calendar", "calendar", "Calendar event"),
        ("a.csv", "text/csv", "spreadsheet", "text", "CSV"),
        ("a.py", "text/x-python", "code", "text", "Python code"),
        ("a.log", "application/octet-stream", "text", "text", "Text"),
        ("a.html", "text/html", "other", "", "HTML file"),
        ("a.docx", "application/octet-stream", "document", "", "Word document"),
        ("a.zip", "application/zip", "archive", "", "ZIP archive"),
        ("a.eml", "message/rfc822", "message", "", "E-mail message"),
        ("a.mp3", "audio/mpeg", "audio", "", "Audio"),
        ("noextension", "application/octet-stream", "other", "", "File"),
    ],
)
def test_kinds(name, content_type, family, preview, english):
    kind = attachments.kind_of(name, content_type)
    assert (kind.family, kind.preview, kind.type_label) == (family, preview, english)


def test_type_and_size_in_german():
    with translation.override("de"):
        kind = attachments.kind_of("a.jpg", "image/jpeg")
        assert attachments.label(kind, 1536) == "JPEG-Bild, 1,5 KB"
        assert attachments.label(attachments.kind_of("a.pdf", "application/pdf"), 12 * 1024) == "PDF, 12 KB"


def test_message_page_shows_an_invitation_as_a_card_in_the_readers_language_and_time_zone(alice, alice_client):
    save_preferences(alice, time_zone="Asia/Tokyo", conversations=True)
    message = _store(alice, [("invite.ics", "text/calendar", samples.ICS.encode())], subject="Planning")
    url = reverse("mailbox:message", args=[message.id])
    card = re.search(r'<section class="calendar-card.*?</section>', alice_client.get(url).content.decode(), re.S)
    assert card and "Quarterly planning, Q3" in card.group(0) and "10 p.m." in card.group(0)
    alice_client.cookies["django_language"] = "de"
    german = re.search(r'<section class="calendar-card.*?</section>', alice_client.get(url).content.decode(), re.S)
    assert "Einladung" in german.group(0) and "Wann" in german.group(0) and "22:00" in german.group(0)
    assert "When:" not in german.group(0)


def test_download_all_leaves_out_the_images_the_formatted_body_shows(alice, alice_client):
    from email import message_from_bytes, policy

    logo = {"logo@shop": samples.image("PNG")}
    raw = html_samples.html_message('<p>Hi</p><img src="cid:logo@shop" alt="">', cids=logo)
    mail = message_from_bytes(raw, policy=policy.SMTP)
    mail.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf", filename="terms.pdf")
    mail.add_attachment(b"notes", maintype="text", subtype="plain", filename="notes.txt")
    message = store_message(make_account(alice), mail.as_bytes(policy=policy.SMTP), "u-html")
    page = alice_client.get(reverse("mailbox:message", args=[message.id])).content.decode()
    assert "logo.png" not in page and "terms.pdf" in page  # shown in the body, not listed again
    archive = _zip(alice_client.get(reverse("mailbox:attachments_zip", args=[message.id])))
    assert archive.namelist() == ["terms.pdf", "notes.txt"]
