"""Attachments for the preview tests, made here: images of each format, PDFs, calendars, text."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw

from tests.factories import build_message


def image(fmt: str, size: tuple[int, int] = (640, 480), **save) -> bytes:
    """A picture with some structure (thumbnails of it are not blank), in ``fmt`` (JPEG, PNG, GIF, WEBP)."""
    picture = Image.new("RGB", size, (40, 110, 200))
    draw = ImageDraw.Draw(picture)
    w, h = size
    draw.ellipse((w // 6, h // 6, w * 5 // 6, h * 5 // 6), fill=(250, 200, 40))
    draw.rectangle((0, h * 2 // 3, w, h), fill=(30, 140, 70))
    out = io.BytesIO()
    picture.save(out, fmt, **save)
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (200, 120), color) for color in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    """A landscape JPEG whose EXIF says "rotate 90°" and names a camera and a GPS position."""
    picture = Image.open(io.BytesIO(image("JPEG", (400, 200))))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS
    out = io.BytesIO()
    picture.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width × height black pixels: a few hundred KB that decode to far more."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def pdf(pages: list[str], javascript: str | None = None, link: str | None = None) -> bytes:
    """A PDF with one line of text per page; ``javascript`` runs on opening in a viewer that runs scripts."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    open_action = b""
    if javascript is not None:
        js = javascript.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode()
        open_action = b" /OpenAction << /S /JavaScript /JS (" + js + b") >> /Names << /JavaScript 3 0 R >>"
    objects.append(b"<< /Type /Catalog /Pages 2 0 R" + open_action + b" >>")
    kids = b" ".join(b"%d 0 R" % pid for pid in page_ids)
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages))
    if javascript is not None:
        objects.append(b"<< /Names [(open) << /S /JavaScript /JS (" + js + b") >>] >>")
    else:
        objects.append(b"<< >>")
    font_id = 4 + 2 * len(pages)
    for i, text in enumerate(pages):
        annots = b""
        if link:
            annots = b" /Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 612 792] /A << /S /URI /URI (%s) >> >>]" % (
                link.encode()
            )
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
            b" /Resources << /Font << /F1 %d 0 R >> >>%s >>" % (page_ids[i] + 1, font_id, annots)
        )
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")
        stream = b"0.9 0.3 0.2 rg 60 600 492 120 re f 0 0 0 rg BT /F1 36 Tf 72 680 Td (" + safe + b") Tj ET"
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Example//EN\r
METHOD:REQUEST\r
BEGIN:VEVENT\r
UID:42@example.net\r
SUMMARY:Quarterly planning\\, Q3\r
DTSTART;TZID=Europe/Berlin:20261203T140000\r
DTEND;TZID=Europe/Berlin:20261203T153000\r
LOCATION:Room 4.2\\, Main building\r
ORGANIZER;CN="Carol Jones":mailto:carol@example.net\r
DESCRIPTION:Agenda:\\n1. Numbers\\n2. Plans\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
SUMMARY:Alarm text that is not the title\r
TRIGGER:-PT15M\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""


def message_with(attachments: list[tuple[str, str, bytes]], subject: str = "Photos and the plan") -> bytes:
    return build_message(subject, "Here they are.", attachments=attachments)
