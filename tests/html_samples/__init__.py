"""Ten realistic newsletters (written for these tests) and what must survive of each.

``SAMPLES[name]`` gives the file's expectations:
- ``tables``: how many tables the message has (all must survive);
- ``keep``: strings the sanitized HTML must still contain (colours, fonts, scoped rules);
- ``looks``: checks on the rendered frame in Chromium, as (text, what, expected): ``what`` is a
  computed CSS property of the element holding the text, or ``background`` (the first non-transparent
  background colour of it or its ancestors) or ``hidden`` (not visible);
- ``cids``: content ids of the inline images the message carries;
- ``trackers``: tracking pixels that must be removed.
"""

from __future__ import annotations

import email.policy
import struct
import zlib
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).resolve().parent

WHITE = "rgb(255, 255, 255)"

SAMPLES: dict[str, dict] = {
    "01_retail_sale": {
        "tables": 4,
        "cids": ["logo@northwind"],
        "trackers": 1,
        "keep": [
            'bgcolor="#1d3557"',
            'bgcolor="#e63946"',
            "#webpop-message .price { color: #d62828",
            "@media only screen",
        ],
        "looks": [
            ("Winter Sale", "color", WHITE),
            ("Winter Sale", "background", "rgb(29, 53, 87)"),
            ("Shop the sale", "background", "rgb(230, 57, 70)"),
            ("$149", "color", "rgb(214, 40, 40)"),
            ("Free shipping on orders over $50 · 60-day returns", "background", "rgb(241, 250, 238)"),
            ("Our biggest sale of the season starts now – free shipping on everything.", "hidden", True),
        ],
    },
    "02_tech_digest": {
        "tables": 2,
        "cids": [],
        "trackers": 0,
        "keep": ["<pre><code>", "#webpop-message .tag {", "border-left: 4px solid #0b5394"],
        "looks": [
            ("Backend Weekly", "color", "rgb(11, 83, 148)"),
            ("performance", "background", "rgb(232, 240, 254)"),
            ("Parsing JSON at a gigabyte per second", "color", "rgb(11, 83, 148)"),
            ("0-RTT resumption", "display", "list-item"),
        ],
    },
    "03_bank_statement": {
        "tables": 2,
        "cids": ["bank-logo"],
        "trackers": 0,
        "keep": ["#webpop-message .stmt tr.alt td { background-color: #eef3f8 }", "<thead>"],
        "looks": [
            ("Description", "background", "rgb(0, 75, 135)"),
            ("Description", "color", WHITE),
            ("Rent – Maple Properties", "background", "rgb(238, 243, 248)"),
            ("-1,400.00", "color", "rgb(176, 0, 32)"),
            ("Net change", "font-weight", "700"),
        ],
    },
    "04_travel_deals": {
        "tables": 3,
        "cids": [],
        "trackers": 0,
        "keep": ['<font face="Georgia, serif" size="6" color="#ffffff">', "background-color: #e0f7fa"],
        "looks": [
            ("Escape the cold", "color", WHITE),
            ("Escape the cold", "background", "rgb(0, 131, 143)"),
            ("Lisbon", "background", "rgb(255, 243, 224)"),
            ("Find my getaway", "background", "rgb(255, 111, 0)"),
            ("Seven nights in the sun from €499", "color", "rgb(178, 235, 242)"),
            ("Unsubscribe", "background", "rgb(0, 77, 64)"),
        ],
    },
    "05_saas_onboarding": {
        "tables": 3,
        "cids": ["logo@metricly"],
        "trackers": 0,
        "keep": ["border-radius: 50%", "box-shadow: 0 2px 8px rgba(0,0,0,0.08)"],
        "looks": [
            ("Open my workspace", "background", "rgb(108, 92, 231)"),
            ("Connect a data source", "font-weight", "600"),
            ("Three steps to your first dashboard.", "hidden", True),
            ("Welcome aboard, Alice!", "color", "rgb(45, 52, 54)"),
        ],
    },
    "06_news_morning": {
        "tables": 2,
        "cids": [],
        "trackers": 0,
        "keep": ["#webpop-message .kicker {", "text-transform: uppercase", "<blockquote"],
        "looks": [
            ("Central bank holds rates, signals cuts next year", "font-family", "Georgia"),
            ("Economy", "color", "rgb(192, 57, 43)"),
            ("Economy", "text-transform", "uppercase"),
            ("Probe returns samples from near-Earth asteroid", "font-size", "18px"),
        ],
    },
    "07_event_invite": {
        "tables": 4,
        "cids": [],
        "trackers": 0,
        "keep": ["#webpop-message .card { background-color: #1a1a2e", "#webpop-message { background-color: #0f0f1a }"],
        "looks": [
            ("Thu, Jan 14 · 18:30", "background", "rgb(36, 36, 62)"),
            (
                "Lightning talks, pizza and a hack corner. Bring a friend and your favourite bug.",
                "background",
                "rgb(26, 26, 46)",
            ),
            ("I'll be there", "background", "rgb(67, 170, 139)"),
            ("2027", "color", "rgb(249, 199, 79)"),
        ],
    },
    "08_charity_report": {
        "tables": 3,
        "cids": ["logo@wellspring"],
        "trackers": 0,
        "keep": ['bgcolor="#e76f51"', "#webpop-message .bar-fill { background-color: #2a9d8f"],
        "looks": [
            ("wells drilled", "background", "rgb(231, 111, 81)"),
            ("people served", "background", "rgb(244, 162, 97)"),
            ("Give again", "background", "rgb(38, 70, 83)"),
            ("148", "font-size", "30px"),
        ],
    },
    "09_restaurant_menu": {
        "tables": 1,
        "cids": [],
        "trackers": 0,
        "keep": ['<font face="Comic Sans MS, cursive" size="6" color="#8B0000">', 'bgcolor="#FBE9E7"', "<center>"],
        "looks": [
            ("Luigi's Trattoria", "color", "rgb(139, 0, 0)"),
            ("This Week's Specials", "color", WHITE),
            ("This Week's Specials", "background", "rgb(139, 0, 0)"),
            ("Risotto ai funghi porcini", "background", "rgb(251, 233, 231)"),
            ("Family recipes since 1962", "background", "rgb(255, 248, 231)"),
        ],
    },
    "10_social_notification": {
        "tables": 3,
        "cids": ["avatar@chirp"],
        "trackers": 2,
        "keep": ["#webpop-message .reply a {", "border-radius: 50%"],
        "looks": [
            ("Dana Whitfield", "font-weight", "700"),
            ("Reply", "background", "rgb(29, 161, 242)"),
            ("@danaw · 2h", "color", "rgb(101, 119, 134)"),
        ],
    },
    # A fixed 600 px layout without any rule for small screens: its right column holds the button.
    "11_concert_tickets": {
        "tables": 3,
        "cids": [],
        "trackers": 0,
        "keep": ['width="600"', "#webpop-message .col-right { border-left: 1px solid #d0d7de }"],
        "looks": [
            ("Harbour Hall", "background", "rgb(20, 33, 61)"),
            ("Pay for my tickets", "background", "rgb(230, 57, 70)"),
            ("Pay for my tickets", "color", WHITE),
            ("€84.00", "font-size", "28px"),
        ],
    },
}


def html(name: str) -> str:
    return (HERE / f"{name}.html").read_text(encoding="utf-8")


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG (for the inline logos)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def message(name: str, *, sender: str = "Newsletter <news@sender.example>", subject: str | None = None) -> bytes:
    """The sample as a multipart/alternative message, its cid: images in a multipart/related part."""
    return html_message(
        html(name),
        sender=sender,
        subject=subject or name.split("_", 1)[1].replace("_", " ").title(),
        cids={cid: png(160, 48, (40 + 20 * i, 90, 160)) for i, cid in enumerate(SAMPLES[name]["cids"])},
    )


def html_message(
    markup: str,
    *,
    sender: str = "Newsletter <news@sender.example>",
    subject: str = "HTML mail",
    text: str | None = "This message is best viewed as HTML.",
    cids: dict[str, bytes] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "alice@example.org"
    msg["Subject"] = subject
    msg["Date"] = "Thu, 26 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = f"<{abs(hash((subject, markup)))}@sender.example>"
    if text is None:
        msg.set_content(markup, subtype="html")
        html_part = msg
    else:
        msg.set_content(text)
        msg.add_alternative(markup, subtype="html")
        html_part = msg.get_payload()[1]
    for cid, data in (cids or {}).items():
        name = f"{cid.split('@')[0]}.png"
        html_part.add_related(data, maintype="image", subtype="png", cid=f"<{cid}>", filename=name)
    return msg.as_bytes(policy=email.policy.SMTP)
