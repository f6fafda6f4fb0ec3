"""Write the hostile corpus: odd and broken messages, one .eml file each, and expected.json.

Run from the repository root: ``python tests/corpus/generate.py``. Output is
deterministic; the .eml files and expected.json are committed, so tests never
depend on this script, and the expectations come from what was put into each
message, not from what the parser makes of it.

expected.json maps a file name to what parsing it must give:
subject / subject_prefix, from_email, from_name, to_contains, text_contains
(in the text body, HTML body or calendar summary), attachments (name, sha256,
size, in order) or attachments_prefix + attachment_count, notice (a parse
notice must be set), date (ISO 8601) or date_fallback (the date must fall
back to the receipt or Received time).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import quopri
import random
import struct
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRLF = b"\r\n"
RNG = random.Random(5)
DATE = "Thu, 26 Nov 2026 09:00:00 +0000"

CASES: dict[str, tuple[bytes, dict]] = {}


def case(name: str, raw: bytes, **expect) -> None:
    assert name not in CASES, name
    CASES[name] = (raw, expect)


def blob(size: int) -> bytes:
    return bytes(RNG.getrandbits(8) for _ in range(size))


def att(name: str, data: bytes) -> dict:
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def lines(*items: str | bytes) -> bytes:
    """Join header and body lines with CRLF (the wire format)."""
    return CRLF.join(i.encode("utf-8") if isinstance(i, str) else i for i in items)


def head(subject: str = "Test", extra: tuple = (), *, sender: str = "Carol <carol@example.net>") -> list:
    return [
        f"From: {sender}",
        "To: Alice <alice@example.org>",
        f"Subject: {subject}",
        f"Date: {DATE}",
        f"Message-ID: <{RNG.getrandbits(64):x}@corpus.example>",
        "MIME-Version: 1.0",
        *extra,
    ]


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF).rstrip(CRLF)


def multipart(subtype: str, boundary: str, parts: list[bytes], headers: list, *, params: str = "") -> bytes:
    out = [*headers, f'Content-Type: multipart/{subtype}; boundary="{boundary}"{params}', "", "This is MIME."]
    for part in parts:
        out += [f"--{boundary}", part]
    out += [f"--{boundary}--", ""]
    return lines(*out)


def text_part(body: str, ctype: str = "text/plain", charset: str = "utf-8", cte: str = "8bit") -> bytes:
    data = body.encode(charset) if charset else body.encode("latin-1")
    if cte == "base64":
        data = b64(data)
    elif cte == "quoted-printable":
        data = quopri.encodestring(data).replace(b"\n", CRLF)
    return lines(f"Content-Type: {ctype}; charset={charset}", f"Content-Transfer-Encoding: {cte}", "", data)


def file_part(name_header: str, data: bytes, ctype: str = "application/octet-stream", *, extra: tuple = ()) -> bytes:
    return lines(
        f"Content-Type: {ctype}",
        f"Content-Disposition: attachment; {name_header}",
        "Content-Transfer-Encoding: base64",
        *extra,
        "",
        b64(data),
    )


def rfc2231(name: str, charset: str = "UTF-8") -> str:
    return f"filename*={charset}''{urllib.parse.quote(name.encode(charset if charset != 'UTF-8' else 'utf-8'))}"


def rfc2231_continued(name: str, pieces: int = 3) -> str:
    quoted = urllib.parse.quote(name.encode("utf-8"))
    step = -(-len(quoted) // pieces)
    chunks = []
    pos = 0
    while pos < len(quoted):  # never split inside a %XX escape
        end = min(len(quoted), pos + step)
        while "%" in quoted[max(pos, end - 2) : end]:
            end += 1
        chunks.append(quoted[pos:end])
        pos = end
    params = [f"filename*0*=UTF-8''{chunks[0]}"] + [f"filename*{i}*={c}" for i, c in enumerate(chunks[1:], 1)]
    return ";\r\n ".join(params)


# --- Plain structure and line endings ------------------------------------------------

case(
    "plain-crlf.eml",
    lines(*head("Plain and simple"), "", "Hello Alice.", ""),
    subject="Plain and simple",
    from_email="carol@example.net",
    from_name="Carol",
    text_contains="Hello Alice.",
    date="2026-11-26T09:00:00+00:00",
)
case(
    "lf-only.eml",
    lines(*head("Bare LF line endings"), "", "Line one.", "Line two.", "").replace(CRLF, b"\n"),
    subject="Bare LF line endings",
    text_contains="Line two.",
)
case(
    "bare-cr.eml",
    lines(*head("Bare CR line endings"), "", "Old Mac mail.", "").replace(CRLF, b"\r"),
    subject="Bare CR line endings",
    text_contains="Old Mac mail.",
)
case(
    "mixed-line-endings.eml",
    b"From: carol@example.net\r\nSubject: Mixed endings\nDate: " + DATE.encode() + b"\r\n\nBody\r\nmore\rend\n",
    subject="Mixed endings",
    text_contains="more",
)
case("headers-only.eml", lines(*head("Nothing below"), ""), subject="Nothing below")
case(
    "no-blank-line.eml",
    lines(*head("No separator"), "This line is body without a blank line first.", ""),
    subject="No separator",
    text_contains="without a blank line",
)
case(
    "mbox-from-line.eml",
    lines("From carol@example.net Thu Nov 26 09:00:00 2026", *head("Envelope line"), "", "Hi", ""),
    subject="Envelope line",
    from_email="carol@example.net",
)
case(
    "body-only.eml",
    lines("", "There are no headers at all in this message.", ""),
    subject="",
    text_contains="no headers at all",
    date_fallback=True,
)
case("very-long-line.eml", lines(*head("One long line"), "", "x" * 1_000_000, ""), subject="One long line")
case(
    "nul-in-body.eml",
    lines(*head("NUL bytes in body"), "", b"before\x00after\x00\x00end", ""),
    subject="NUL bytes in body",
    text_contains="beforeafterend",
)
case(
    "nul-in-headers.eml",
    lines("From: Nul\x00 Sender <nul@example.net>", "Subject: Sub\x00ject with NUL", f"Date: {DATE}", "", "Body", ""),
    subject="Subject with NUL",
    from_email="nul@example.net",
)

# --- Dates -------------------------------------------------------------------------------

case(
    "no-date.eml",
    lines("From: carol@example.net", "Subject: No date", "", "When?", ""),
    subject="No date",
    date_fallback=True,
)
case(
    "no-date-received.eml",
    lines(
        "Received: from mx.example.net by mx.example.org; Tue, 3 Mar 2015 10:11:12 +0100",
        "From: carol@example.net",
        "Subject: Date from Received",
        "",
        "Hi",
        "",
    ),
    subject="Date from Received",
    date="2015-03-03T10:11:12+01:00",
)
case(
    "future-date.eml",
    lines("From: carol@example.net", "Subject: From the future", "Date: Fri, 1 Jan 2100 00:00:00 +0000", "", "Hi", ""),
    subject="From the future",
    date_fallback=True,
)
case(
    "broken-date.eml",
    lines("From: carol@example.net", "Subject: Broken date", "Date: Tue, 32 Foo 2023 25:61:00 +9999", "", "Hi", ""),
    subject="Broken date",
    date_fallback=True,
)
case(
    "iso-date.eml",
    lines("From: carol@example.net", "Subject: ISO date", "Date: 2024-03-05T10:20:30+02:00", "", "Hi", ""),
    subject="ISO date",
    date="2024-03-05T10:20:30+02:00",
)
case(
    "obsolete-date.eml",
    lines("From: carol@example.net", "Subject: Two-digit year", "Date: 5 Mar 99 10:20 EST", "", "Hi", ""),
    subject="Two-digit year",
    date="1999-03-05T10:20:00-05:00",
)
case(
    "date-no-zone.eml",
    lines("From: carol@example.net", "Subject: No zone", "Date: Wed, 4 Feb 2015 08:09:10", "", "Hi", ""),
    subject="No zone",
    date="2015-02-04T08:09:10+00:00",
)

# --- Headers ----------------------------------------------------------------------------

case("no-from-no-subject.eml", lines(f"Date: {DATE}", "", "Anonymous.", ""), subject="", from_email="")
case(
    "duplicate-headers.eml",
    lines(
        "From: First <first@example.net>",
        "From: Second <second@example.net>",
        "Subject: First subject",
        "Subject: Second subject",
        f"Date: {DATE}",
        "Date: Mon, 1 Jan 2001 00:00:00 +0000",
        "",
        "Dupes",
        "",
    ),
    subject="First subject",
    from_email="first@example.net",
    date="2026-11-26T09:00:00+00:00",
)


def ew(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


case("encoded-subject.eml", lines(*head(ew("Héllò wörld 🌍")), "", "Hi", ""), subject="Héllò wörld 🌍")
case(
    "encoded-split-multibyte.eml",
    lines(*head("=?UTF-8?B?w6k=?= =?UTF-8?B?w6g=?= =?UTF-8?B?4oKs?= =?UTF-8?B?8J+Y?= =?UTF-8?B?gA==?="), "", "Hi", ""),
    subject="éè€😀",
)
case(
    "encoded-q-and-words.eml",
    lines(*head("=?iso-8859-1?q?Caf=E9?= au lait =?utf-8?q?na=C3=AFve_r=C3=A9sum=C3=A9?="), "", "Hi", ""),
    subject="Café au lait naïve résumé",
)
case(
    "encoded-word-abuse.eml",
    lines(
        *head(
            " ".join(["=?utf-8?q?a?="] * 3000) + " =?x-bogus?q?zz?= =?utf-8?b?PT91dGYtOD9xP25lc3RlZD89?= =?utf-8?q?open"
        ),
        "",
        "Hi",
        "",
    ),
    subject_prefix="aaaaaaaaaa",
)
case("encoded-unknown-charset.eml", lines(*head("=?x-klingon?q?Qapla=27?= done"), "", "Hi", ""), subject="Qapla' done")
case(
    "raw-utf8-headers.eml",
    lines(
        "From: Zoë Ünïcode <zoe@exämple.org>",
        "To: Ådne <adne@example.no>",
        "Subject: Grüße aus Köln ☕",
        f"Date: {DATE}",
        "",
        "RFC 6532",
        "",
    ),
    subject="Grüße aus Köln ☕",
    from_name="Zoë Ünïcode",
)
case(
    "raw-latin1-headers.eml",
    lines(
        b"From: J\xfcrgen <j@example.de>",
        b"Subject: Gr\xfc\xdfe aus M\xfcnchen",
        f"Date: {DATE}".encode(),
        b"",
        b"Hallo",
        b"",
    ),
    subject="Grüße aus München",
    from_name="Jürgen",
)
case(
    "huge-subject.eml",
    lines(*head("Long " + "subject " * 40_000), "", "Body after a huge header", ""),
    subject_prefix="Long subject subject",
    notice=True,
)
case(
    "many-received.eml",
    lines(
        *[f"Received: from relay{i}.example.net by relay{i + 1}.example.net; {DATE}" for i in range(20_000)],
        *head("Twenty thousand hops"),
        "",
        "Finally here",
        "",
    ),
    notice=True,
    text_contains="Finally here",
    subject="Twenty thousand hops",
    from_email="carol@example.net",
)
case(
    "header-garbage-line.eml",
    lines(
        "From: carol@example.net",
        "Subject: Garbage follows",
        "this line has no colon",
        "X-After: ignored",
        "",
        "Body",
        "",
    ),
    subject="Garbage follows",
)
case(
    "folded-headers.eml",
    lines("From: carol@example.net", "Subject: Folded", "\tacross three", "  lines", f"Date: {DATE}", "", "Hi", ""),
    subject="Folded across three lines",
)
case(
    "address-groups.eml",
    lines(
        "From: carol@example.net",
        "To: Friends: Alice <alice@example.org>, bob@example.org;, dave@example.org",
        "Cc: undisclosed-recipients:;",
        "Subject: Groups",
        f"Date: {DATE}",
        "",
        "Hi",
        "",
    ),
    subject="Groups",
    to_contains="Friends: Alice <alice@example.org>, bob@example.org;",
)
case(
    "malformed-addresses.eml",
    lines(
        "From: broken <<foo@",
        'To: foo@bar@baz, <>, ,, "unterminated <x@y.z>',
        "Subject: Bad addresses",
        f"Date: {DATE}",
        "",
        "Hi",
        "",
    ),
    subject="Bad addresses",
    from_name="broken",
)
case(
    "encoded-display-name.eml",
    lines(
        "From: =?utf-8?q?Bj=C3=B6rk_Gu=C3=B0mundsd=C3=B3ttir?= <bjork@example.is>",
        "Subject: Name",
        f"Date: {DATE}",
        "",
        "Hi",
        "",
    ),
    from_name="Björk Guðmundsdóttir",
    from_email="bjork@example.is",
)
case(
    "huge-references.eml",
    lines(
        *head(
            "Long thread",
            (
                f"References: {' '.join(f'<{i}@thread.example>' for i in range(5000))}",
                "In-Reply-To: <4999@thread.example>",
            ),
        ),
        "",
        "Reply",
        "",
    ),
    subject="Long thread",
)
case(
    "message-id-odd.eml",
    lines("From: carol@example.net", "Subject: Odd id", "Message-ID: no-brackets-here", "", "Hi", ""),
    subject="Odd id",
)

# --- Charsets ----------------------------------------------------------------------------

case(
    "charset-unknown.eml",
    lines(*head("Unknown charset"), "Content-Type: text/plain; charset=x-klingon", "", "plain ascii words", ""),
    text_contains="plain ascii words",
)
case(
    "charset-utf8-labelled-latin1.eml",
    lines(
        *head("Mislabelled UTF-8"),
        "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Straße, café, 日本語".encode(),
        "",
    ),
    text_contains="Straße, café, 日本語",
)
case(
    "charset-latin1-labelled-utf8.eml",
    lines(
        *head("Mislabelled Latin-1"),
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Ça coûte très cher, naïve garçon, déjà vu, à bientôt. Voilà l'été!".encode("latin-1"),
        "",
    ),
    text_contains="coûte",
)
case(
    "charset-missing-8bit.eml",
    lines(*head("No charset"), "Content-Type: text/plain", "", "Ünïcödé wïthöüt lábel".encode(), ""),
    text_contains="Ünïcödé",
)
case(
    "charset-shift-jis.eml",
    lines(
        *head(ew("日本語", "shift_jis")),
        "Content-Type: text/plain; charset=shift_jis",
        "",
        "こんにちは、世界。".encode("shift_jis"),
        "",
    ),
    subject="日本語",
    text_contains="こんにちは",
)
case(
    "charset-iso-2022-jp.eml",
    lines(
        *head("JIS"), "Content-Type: text/plain; charset=iso-2022-jp", "", "メールの本文です。".encode("iso2022_jp"), ""
    ),
    text_contains="メールの本文",
)
case(
    "charset-koi8r.eml",
    lines(
        *head(ew("Привет", "koi8-r")),
        "Content-Type: text/plain; charset=koi8-r",
        "",
        "Привет, мир".encode("koi8-r"),
        "",
    ),
    subject="Привет",
    text_contains="Привет, мир",
)
case(
    "charset-gb2312.eml",
    lines(*head("GB"), "Content-Type: text/plain; charset=gb2312", "", "你好，世界".encode("gb2312"), ""),
    text_contains="你好",
)
case(
    "charset-big5.eml",
    lines(*head("Big5"), "Content-Type: text/plain; charset=big5", "", "繁體中文".encode("big5"), ""),
    text_contains="繁體中文",
)
case(
    "charset-utf16.eml",
    lines(
        *head("UTF-16"),
        "Content-Type: text/plain; charset=utf-16",
        "Content-Transfer-Encoding: base64",
        "",
        b64("wide text".encode("utf-16")),
        "",
    ),
    text_contains="wide text",
)
case(
    "charset-windows-1251-undeclared.eml",
    lines(
        *head("Detect me"),
        "Content-Type: text/plain",
        "",
        ("Съешь же ещё этих мягких французских булок, да выпей чаю. " * 4).encode("cp1251"),
        "",
    ),
    text_contains="французских",
)
case(
    "charset-utf7.eml",
    lines(*head("UTF-7"), "Content-Type: text/plain; charset=utf-7", "", b"Hi Mom -+Jjo--!", ""),
    text_contains="Hi Mom",
)

# --- Transfer encodings --------------------------------------------------------------------

PAYLOAD = blob(3000)
case(
    "base64-missing-padding.eml",
    multipart(
        "mixed",
        "b1",
        [
            text_part("see file"),
            lines(
                "Content-Type: application/octet-stream; name=nopad.bin",
                "Content-Transfer-Encoding: base64",
                "",
                b64(PAYLOAD[:2999]).replace(b"=", b""),
            ),
        ],
        head("No padding"),
    ),
    attachments=[att("nopad.bin", PAYLOAD[:2999])],
)
case(
    "base64-garbage.eml",
    multipart(
        "mixed",
        "b2",
        [
            text_part("see file"),
            lines(
                "Content-Type: application/octet-stream; name=garbage.bin",
                "Content-Transfer-Encoding: base64",
                "",
                b"!!".join(b64(PAYLOAD[:999])[i : i + 7] for i in range(0, len(b64(PAYLOAD[:999])), 7)),
            ),
        ],
        head("Junk in base64"),
    ),
    attachments=[att("garbage.bin", PAYLOAD[:999])],
)
_TRUNC = b64(PAYLOAD[:1500]).replace(CRLF, b"")[:1002]
case(
    "base64-truncated.eml",
    multipart(
        "mixed",
        "b3",
        [
            text_part("see file"),
            lines("Content-Type: application/pdf; name=cut.pdf", "Content-Transfer-Encoding: base64", "", _TRUNC),
        ],
        head("Truncated base64"),
    ),
    attachments=[att("cut.pdf", base64.b64decode(_TRUNC[:1000]) + base64.b64decode(_TRUNC[1000:] + b"=="))],
)
case(
    "base64-concatenated.eml",
    multipart(
        "mixed",
        "b4",
        [
            text_part("see file"),
            lines(
                "Content-Type: image/png; name=two.png",
                "Content-Transfer-Encoding: base64",
                "",
                b64(PAYLOAD[:10]),
                b64(PAYLOAD[10:20]),
            ),
        ],
        head("Two base64 runs"),
    ),
    attachments=[att("two.png", PAYLOAD[:20])],
)
case(
    "base64-body-text.eml",
    lines(
        *head("Base64 text"),
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: BASE64  ",
        "",
        b64("Text in base64, ünïcode.".encode()),
        "",
    ),
    text_contains="Text in base64, ünïcode.",
)
case(
    "qp-broken.eml",
    lines(
        *head("Broken QP"),
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Caf=C3=A9 =ZZ not hex, soft=",
        "break and trailing =",
        "",
    ),
    text_contains="Café =ZZ not hex, softbreak",
)
case(
    "qp-bare-lf.eml",
    (
        lines(
            *head("QP with LF"),
            "Content-Type: text/plain; charset=iso-8859-1",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            "Gr=FC=DFe=",
            "n aus Wien",
            "",
        ).replace(CRLF, b"\n")
    ),
    text_contains="Grüßen aus Wien",
)
case(
    "cte-unknown.eml",
    lines(*head("Unknown CTE"), "Content-Transfer-Encoding: x-fancy", "", "Plain despite label", ""),
    text_contains="Plain despite label",
)
UU = b"uuencoded attachment bytes\x00\x01\x02" * 10
case(
    "uuencode.eml",
    multipart(
        "mixed",
        "u1",
        [
            text_part("uu file below"),
            lines(
                "Content-Type: application/octet-stream; name=old.bin",
                "Content-Transfer-Encoding: x-uuencode",
                "",
                b"begin 644 old.bin",
                *[binascii.b2a_uu(UU[i : i + 45]).rstrip(b"\n") for i in range(0, len(UU), 45)],
                b"`",
                b"end",
            ),
        ],
        head("uuencode"),
    ),
    attachments=[att("old.bin", UU)],
)

# --- MIME structure ------------------------------------------------------------------------

ATT1 = blob(2048)
case(
    "boundary-missing.eml",
    lines(
        *head("Multipart without boundary"),
        "Content-Type: multipart/mixed",
        "",
        "--whatever",
        "Content-Type: text/plain",
        "",
        "text",
        "--whatever--",
        "",
    ),
    subject="Multipart without boundary",
)
case(
    "boundary-wrong.eml",
    multipart(
        "mixed",
        "real-boundary",
        [text_part("recovered body"), file_part('filename="found.bin"', ATT1)],
        head("Wrong boundary"),
    ).replace(b'boundary="real-boundary"', b'boundary="declared-but-absent"'),
    text_contains="recovered body",
    attachments=[att("found.bin", ATT1)],
)
case(
    "boundary-no-close.eml",
    multipart("mixed", "nc", [text_part("first"), file_part('filename="last.bin"', ATT1)], head("No closing")).replace(
        b"--nc--\r\n", b""
    ),
    text_contains="first",
    attachments=[att("last.bin", ATT1)],
)
case(
    "boundary-prefix.eml",
    multipart(
        "mixed",
        "ab",
        [
            multipart("alternative", "abc", [text_part("inner plain"), text_part("<p>inner</p>", "text/html")], []),
            file_part('filename="p.bin"', ATT1[:100]),
        ],
        head("Prefix boundaries"),
    ),
    text_contains="inner plain",
    attachments=[att("p.bin", ATT1[:100])],
)
case(
    "boundary-odd-chars.eml",
    multipart(
        "mixed",
        "'()+_,-./:=?",
        [text_part("odd boundary body"), file_part('filename="odd.bin"', ATT1[:10])],
        head("Odd boundary"),
    ),
    text_contains="odd boundary body",
    attachments=[att("odd.bin", ATT1[:10])],
)
case(
    "preamble-epilogue.eml",
    multipart("mixed", "pe", [text_part("middle")], head("Preamble")).replace(
        b"This is MIME.", b"--pe-not-a-boundary\r\njunk"
    )
    + b"epilogue junk\r\n--pe\r\nnot a part\r\n",
    text_contains="middle",
)
case(
    "content-type-garbage.eml",
    lines(*head("Garbage type"), "Content-Type: ;;;=;; charset", "", "still text", ""),
    text_contains="still text",
)
case(
    "content-type-no-subtype.eml",
    lines(*head("Type without subtype"), "Content-Type: text", "", "text anyway", ""),
    text_contains="text anyway",
)
case("empty-multipart.eml", multipart("mixed", "e", [], head("Empty multipart")), subject="Empty multipart")
case(
    "zero-length-attachment.eml",
    multipart(
        "mixed",
        "z",
        [
            text_part("empty file"),
            lines("Content-Type: text/plain", 'Content-Disposition: attachment; filename="empty.txt"', "", ""),
        ],
        head("Empty file"),
    ),
    attachments=[att("empty.txt", b"")],
)

_deep = file_part('filename="deep.bin"', b"bottom")
for level in range(30):
    _deep = multipart("mixed", f"d{level}", [text_part(f"level {level}"), _deep], [])
case(
    "multipart-30-deep.eml",
    lines(*head("Thirty levels"), "").rstrip(CRLF) + CRLF + _deep,
    notice=True,
    subject="Thirty levels",
)

_inner = lines(*head("Level 0", sender="deep@example.net"), "", "The innermost message.", "")
for level in range(1, 51):
    _outer_parts = [text_part(f"Wrapper {level}"), lines("Content-Type: message/rfc822", "", _inner)]
    _inner_top = _inner
    _inner = multipart("mixed", f"r{level}", _outer_parts, head(f"Level {level}"))
case(
    "rfc822-50-deep.eml",
    _inner,
    subject="Level 50",
    text_contains="Wrapper 50",
    attachments=[att("Level 49.eml", _inner_top)],
)
FWD = lines(
    *head("Forwarded original", sender="orig@example.net"),
    "Content-Type: text/plain; charset=utf-8",
    "",
    "Original text",
    "",
)
case(
    "rfc822-attached.eml",
    multipart(
        "mixed",
        "f",
        [text_part("See below"), lines("Content-Type: message/rfc822", "Content-Disposition: inline", "", FWD)],
        head("Fwd: Forwarded original"),
    ),
    attachments=[att("Forwarded original.eml", FWD)],
)
case(
    "rfc822-base64.eml",
    multipart(
        "mixed",
        "fb",
        [
            text_part("Encoded forward"),
            lines("Content-Type: message/rfc822", "Content-Transfer-Encoding: base64", "", b64(FWD)),
        ],
        head("Base64 forward"),
    ),
    attachments=[att("Forwarded original.eml", FWD)],
)

_many = [
    lines("Content-Type: text/plain", f'Content-Disposition: attachment; filename="f{i:04d}.txt"', "", f"file {i}")
    for i in range(5000)
]
case(
    "five-thousand-parts.eml",
    multipart("mixed", "many", _many, head("5,000 parts")),
    notice=True,
    subject="5,000 parts",
    attachments_prefix=[att(f"f{i:04d}.txt", f"file {i}".encode()) for i in range(3)],
    attachment_count=999,
)

IMG = b"\x89PNG\r\n\x1a\n" + blob(500)
case(
    "related-inline-image.eml",
    multipart(
        "related",
        "rel",
        [
            text_part('<p>Logo: <img src="cid:logo@x"></p>', "text/html"),
            lines("Content-Type: image/png", "Content-ID: <logo@x>", "Content-Transfer-Encoding: base64", "", b64(IMG)),
        ],
        head("Inline image"),
        params='; type="text/html"',
    ),
    text_contains="Logo:",
    attachments=[att("attachment-1.png", IMG)],
)
case(
    "alternative-html.eml",
    multipart(
        "alternative",
        "alt",
        [text_part("Plain version"), text_part("<p>HTML <b>version</b></p>", "text/html")],
        head("Alternative"),
    ),
    text_contains="Plain version",
    html_contains="<b>version</b>",
)
case(
    "html-only-junk.eml",
    lines(
        *head("HTML only"),
        "Content-Type: text/html; charset=utf-8",
        "",
        "<html><head><title>T</title><style>p{color:red}</style><script>alert(1)</script></head>"
        "<body><!-- hidden --><p>Visible&nbsp;text &amp; more</p><script>unclosed",
        "",
    ),
    snippet="Visible text & more",
)
case(
    "apple-alternative-mixed.eml",
    multipart(
        "alternative",
        "ap",
        [
            text_part("Plain with file"),
            multipart(
                "mixed",
                "apm",
                [
                    text_part("<p>Before</p>", "text/html"),
                    file_part('filename="doc.pdf"', ATT1[:300], "application/pdf"),
                    text_part("<p>After</p>", "text/html"),
                ],
                [],
            ),
        ],
        head("Apple Mail"),
    ),
    text_contains="Plain with file",
    attachments=[att("doc.pdf", ATT1[:300])],
    html_contains="After",
)
SECOND = lines(*head("Second in digest"), "", "Two", "")
case(
    "digest.eml",
    multipart("digest", "dg", [lines("", FWD), lines("", SECOND)], head("A digest")),
    attachments=[att("Forwarded original.eml", FWD), att("Second in digest.eml", SECOND)],
)
DSN_HEADERS = lines("From: alice@example.org", "Subject: Lost mail", "")
case(
    "delivery-report.eml",
    multipart(
        "report",
        "dsn",
        [
            text_part("Delivery failed."),
            lines(
                "Content-Type: message/delivery-status",
                "",
                "Reporting-MTA: dns; mx.example.org",
                "",
                "Final-Recipient: rfc822; x@example.com",
                "Status: 5.1.1",
            ),
            lines("Content-Type: text/rfc822-headers", "", DSN_HEADERS),
        ],
        head("Undelivered Mail", sender="MAILER-DAEMON <>"),
        params="; report-type=delivery-status",
    ),
    text_contains="Delivery failed.",
    from_name="MAILER-DAEMON",
)
case(
    "format-flowed.eml",
    lines(
        *head("Flowed"),
        "Content-Type: text/plain; charset=utf-8; format=flowed",
        "",
        "This paragraph is ",
        "flowed across ",
        "lines.",
        "",
        "> quoted ",
        "> flowed",
        "",
    ),
    text_contains="This paragraph is flowed across lines.",
)

# --- File names ---------------------------------------------------------------------------------

NAMES = {
    "rfc2231-chinese.eml": "季度报告 2026.pdf",
    "rfc2231-arabic.eml": "تقرير المبيعات.xlsx",
    "rfc2231-hebrew.eml": "דוח שנתי.docx",
    "rfc2231-japanese.eml": "見積書（最終版）.pdf",
    "rfc2231-greek.eml": "Έκθεση.txt",
    "rfc2231-emoji.eml": "party 🎉 plan.odt",
    "rfc2231-thai.eml": "รายงาน.pdf",
}
for file, name in NAMES.items():
    data = blob(700)
    case(
        file,
        multipart("mixed", "n", [text_part("file attached"), file_part(rfc2231(name), data)], head("Name test")),
        attachments=[att(name, data)],
    )
CYR = "Отчёт о продажах за третий квартал 2026 года.pdf"
DATA = blob(900)
case(
    "rfc2231-continuations.eml",
    multipart(
        "mixed", "c", [text_part("continued name"), file_part(rfc2231_continued(CYR, 4), DATA)], head("Continuations")
    ),
    attachments=[att(CYR, DATA)],
)
case(
    "rfc2231-latin1.eml",
    multipart(
        "mixed",
        "l",
        [text_part("latin-1 name"), file_part("filename*=iso-8859-1'de'%FCbersicht.txt", DATA[:50])],
        head("Latin-1 name"),
    ),
    attachments=[att("übersicht.txt", DATA[:50])],
)
case(
    "rfc2047-filename.eml",
    multipart(
        "mixed",
        "q",
        [text_part("outlook style"), file_part(f'filename="{ew("élève.docx")}"', DATA[:60])],
        head("Encoded-word name"),
    ),
    attachments=[att("élève.docx", DATA[:60])],
)
case(
    "raw-utf8-filename.eml",
    multipart(
        "mixed",
        "r",
        [text_part("raw utf-8 name"), file_part('filename="Ünïcode naïve.txt"', DATA[:70])],
        head("Raw UTF-8 name"),
    ),
    attachments=[att("Ünïcode naïve.txt", DATA[:70])],
)
case(
    "name-in-content-type.eml",
    multipart(
        "mixed",
        "ct",
        [
            text_part("name param only"),
            lines(
                'Content-Type: application/zip; name="archive.zip"',
                "Content-Transfer-Encoding: base64",
                "",
                b64(DATA[:80]),
            ),
        ],
        head("Name in Content-Type"),
    ),
    attachments=[att("archive.zip", DATA[:80])],
)
case(
    "path-traversal-names.eml",
    multipart(
        "mixed",
        "pt",
        [
            text_part("evil names"),
            file_part('filename="../../etc/passwd"', DATA[:10]),
            file_part('filename="C:\\\\Windows\\\\evil.exe"', DATA[10:20]),
        ],
        head("Traversal"),
    ),
    attachments=[att("passwd", DATA[:10]), att("evil.exe", DATA[10:20])],
)
case(
    "no-filename.eml",
    multipart(
        "mixed",
        "nf",
        [
            text_part("unnamed"),
            lines(
                "Content-Type: application/pdf",
                "Content-Disposition: attachment",
                "Content-Transfer-Encoding: base64",
                "",
                b64(DATA[:90]),
            ),
        ],
        head("No name"),
    ),
    attachments=[att("attachment-1.pdf", DATA[:90])],
)


# --- Formats inside mail: TNEF, S/MIME, PGP, calendars ------------------------------------


def tnef(files: list[tuple[str, str, bytes]]) -> bytes:
    """A TNEF stream as Outlook writes it (MS-OXTNEF): message attributes, then per file
    attAttachRendData, attAttachTitle (8.3 name), attAttachData and attAttachment (MAPI
    properties with the long file name)."""

    def attribute(level: int, attr_id: int, payload: bytes) -> bytes:
        return struct.pack("<BII", level, attr_id, len(payload)) + payload + struct.pack("<H", sum(payload) & 0xFFFF)

    def unicode_prop(prop_id: int, text: str) -> bytes:
        value = text.encode("utf-16-le") + b"\0\0"
        return struct.pack("<HHII", 0x001F, prop_id, 1, len(value)) + value + b"\0" * (-len(value) % 4)

    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += attribute(1, 0x00089006, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += attribute(1, 0x00069007, struct.pack("<II", 1252, 0))  # attOemCodepage
    out += attribute(1, 0x00078008, b"IPM.Microsoft Mail.Note\0")  # attMessageClass
    for long_name, short_name, data in files:
        out += attribute(2, 0x00069002, struct.pack("<HIIHHI", 1, 0xFFFFFFFF, 0, 0, 0, 0)[:14])
        out += attribute(2, 0x00018010, short_name.encode("cp1252") + b"\0")
        out += attribute(2, 0x0006800F, data)
        props = struct.pack("<I", 2) + unicode_prop(0x3707, long_name)
        props += struct.pack("<HHI", 0x0003, 0x0E21, 7)  # PR_ATTACH_NUM, a fixed-size property
        out += attribute(2, 0x00069005, props)
    return out


T1, T2 = blob(1200), b"plain text inside winmail.dat\r\n"
case(
    "tnef-winmail.eml",
    multipart(
        "mixed",
        "tn",
        [
            text_part("Outlook sent this"),
            lines(
                'Content-Type: application/ms-tnef; name="winmail.dat"',
                'Content-Disposition: attachment; filename="winmail.dat"',
                "Content-Transfer-Encoding: base64",
                "",
                b64(tnef([("Übersicht Q3.xlsx", "UBERSI~1.XLS", T1), ("notes.txt", "NOTES.TXT", T2)])),
            ),
        ],
        head("TNEF"),
    ),
    attachments=[att("Übersicht Q3.xlsx", T1), att("notes.txt", T2)],
)
BROKEN_TNEF = tnef([("lost.doc", "LOST.DOC", T1)])[:300]
case(
    "tnef-truncated.eml",
    multipart(
        "mixed",
        "tt",
        [
            text_part("Broken TNEF"),
            lines(
                'Content-Type: application/vnd.ms-tnef; name="winmail.dat"',
                "Content-Transfer-Encoding: base64",
                "",
                b64(BROKEN_TNEF),
            ),
        ],
        head("Truncated TNEF"),
    ),
    attachments=[att("winmail.dat", BROKEN_TNEF)],
)
SIG = blob(1500)
case(
    "smime-signed.eml",
    multipart(
        "signed",
        "sig",
        [
            text_part("Signed text"),
            lines(
                'Content-Type: application/pkcs7-signature; name="smime.p7s"',
                "Content-Transfer-Encoding: base64",
                'Content-Disposition: attachment; filename="smime.p7s"',
                "",
                b64(SIG),
            ),
        ],
        head("S/MIME signed"),
        params='; protocol="application/pkcs7-signature"; micalg=sha-256',
    ),
    text_contains="Signed text",
    attachments=[att("smime.p7s", SIG)],
)
ENV = blob(2500)
case(
    "smime-encrypted.eml",
    lines(
        *head("S/MIME encrypted"),
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        "Content-Transfer-Encoding: base64",
        "",
        b64(ENV),
        "",
    ),
    attachments=[att("smime.p7m", ENV)],
)
PGP = b"-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA5ZKw1\r\n-----END PGP MESSAGE-----\r\n"
case(
    "pgp-encrypted.eml",
    multipart(
        "encrypted",
        "pgp",
        [
            lines("Content-Type: application/pgp-encrypted", "", "Version: 1"),
            lines("Content-Type: application/octet-stream", "", PGP.rstrip(CRLF)),
        ],
        head("PGP encrypted"),
        params='; protocol="application/pgp-encrypted"',
    ),
    attachments=[att("pgp-version.txt", b"Version: 1"), att("encrypted.asc", PGP.rstrip(CRLF))],
)
PGPSIG = b"-----BEGIN PGP SIGNATURE-----\r\n\r\niQEzBAEBCAAdFiEE\r\n-----END PGP SIGNATURE-----"
case(
    "pgp-signed.eml",
    multipart(
        "signed",
        "ps",
        [text_part("PGP signed text"), lines("Content-Type: application/pgp-signature", "", PGPSIG)],
        head("PGP signed"),
        params='; protocol="application/pgp-signature"; micalg=pgp-sha256',
    ),
    text_contains="PGP signed text",
    attachments=[att("signature.asc", PGPSIG)],
)
ICS = lines(
    "BEGIN:VCALENDAR",
    "METHOD:REQUEST",
    "PRODID:-//corpus//EN",
    "VERSION:2.0",
    "BEGIN:VEVENT",
    "SUMMARY:Quarterly review\\, Q3",
    "DTSTART;TZID=Europe/Paris:20261201T100000",
    "DTEND;TZID=Europe/Paris:20261201T113000",
    "LOCATION:Room 4",
    "ORGANIZER;CN=Bob Boss:mailto:bob@example.org",
    "END:VEVENT",
    "END:VCALENDAR",
    "",
)
case(
    "calendar-invite.eml",
    multipart(
        "alternative",
        "cal",
        [
            text_part("You are invited"),
            text_part("<p>You are invited</p>", "text/html"),
            lines("Content-Type: text/calendar; charset=utf-8; method=REQUEST", "", ICS.rstrip(CRLF)),
        ],
        head("Invitation: Quarterly review"),
    ),
    text_contains="Invitation: Quarterly review, Q3",
    attachments=[att("invite.ics", ICS.rstrip(CRLF))],
)
case(
    "calendar-only.eml",
    lines(
        *head("Calendar only"),
        "Content-Type: text/calendar; method=CANCEL",
        "",
        ICS.replace(b"METHOD:REQUEST", b"METHOD:CANCEL"),
    ),
    text_contains="Cancelled: Quarterly review",
    attachments=[att("invite.ics", ICS.replace(b"METHOD:REQUEST", b"METHOD:CANCEL"))],
)
case(
    "image-only.eml",
    lines(*head("Just a picture"), "Content-Type: image/png", "Content-Transfer-Encoding: base64", "", b64(IMG), ""),
    attachments=[att("attachment-1.png", IMG)],
)
BIN8 = bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"")
case(
    "binary-8bit-attachment.eml",
    multipart(
        "mixed",
        "bin",
        [
            text_part("raw 8bit file"),
            lines(
                "Content-Type: application/octet-stream; name=raw.bin", "Content-Transfer-Encoding: binary", "", BIN8
            ),
        ],
        head("8bit binary"),
    ),
    attachments=[att("raw.bin", BIN8)],
)


def main() -> None:
    manifest = {}
    for old in HERE.glob("*.eml"):
        old.unlink()
    for name, (raw, expect) in sorted(CASES.items()):
        (HERE / name).write_bytes(raw)
        manifest[name] = expect
    (HERE / "expected.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(manifest)} messages")


if __name__ == "__main__":
    main()
