"""Property tests: parsing never raises, and attachments come back byte-exact."""

from __future__ import annotations

import base64
import binascii
import email.policy
import os
from email.message import EmailMessage
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbox import mime

CORPUS = sorted((Path(__file__).resolve().parent / "corpus").glob("*.eml"))
SMALL_CORPUS = [p.read_bytes() for p in CORPUS if p.stat().st_size < 20_000]

# File names as people write them: letters of any script, digits, punctuation,
# single spaces; no path separators, nothing a download could not carry.
_NAME_CHARS = st.characters(
    whitelist_categories=("Lu", "Ll", "Lo", "Nd", "Pd", "Po", "Ps", "Pe", "So"), blacklist_characters="/\\\"'%*;"
)
filenames = (
    st.lists(st.text(_NAME_CHARS, min_size=1, max_size=12), min_size=1, max_size=4)
    .map(" ".join)
    .filter(lambda name: name.strip(".") == name and name not in (".", ".."))
)
content_types = st.sampled_from(
    ["application/pdf", "application/octet-stream", "image/png", "image/jpeg", "application/zip", "audio/mpeg"]
)
attachments = st.lists(st.tuples(filenames, content_types, st.binary(max_size=3000)), max_size=4)
bodies = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=300)

PROFILE = settings(
    max_examples=int(os.environ.get("WEBPOP_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROFILE
@given(st.binary(max_size=4000))
def test_parsing_arbitrary_bytes_never_raises(data):
    parsed = mime.parse_bytes(data)
    assert isinstance(parsed.subject, str)


@PROFILE
@given(
    st.sampled_from(SMALL_CORPUS),
    st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=0, max_size=8), st.integers(0, 8)), max_size=8),
)
def test_parsing_damaged_real_messages_never_raises(raw, edits):
    data = bytearray(raw)
    for position, insert, delete in edits:  # splice random bytes in and out, like a broken relay would
        at = position % (len(data) + 1)
        data[at : at + delete] = insert
    parsed = mime.parse_bytes(bytes(data))
    for attachment in parsed.attachments:
        assert attachment.filename and "/" not in attachment.filename


@PROFILE
@given(
    bodies,
    attachments,
    st.booleans(),
    st.sampled_from([email.policy.SMTP, email.policy.default, email.policy.SMTPUTF8]),
)
def test_attachments_round_trip_byte_exact(body, files, with_html, policy):
    msg = EmailMessage()
    msg["From"] = "Carol <carol@example.net>"
    msg["Subject"] = "Round trip"
    msg.set_content(body or "-")
    if with_html:
        msg.add_alternative(f"<p>{body}</p>", subtype="html")
    for name, content_type, data in files:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    parsed = mime.parse_bytes(msg.as_bytes(policy=policy))
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == files
    assert parsed.text_body.rstrip("\n") == (body or "-").replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")


@PROFILE
@given(st.text(max_size=200), st.sampled_from(["utf-8", "iso-8859-1", "koi8-r", "shift_jis", "x-unknown", None]))
def test_decoding_text_never_raises_and_keeps_declared_utf8_exact(text, charset):
    decoded = mime.decode_text(text.encode("utf-8"), charset)
    assert isinstance(decoded, str)
    if charset == "utf-8":
        assert decoded == text


@PROFILE
@given(st.text(max_size=300))
def test_header_helpers_never_raise(text):
    mime.decode_words(text)
    mime.parse_addresses(text)
    mime.parse_date(text)
    mime.html_to_text(text)
    mime.clean_filename(text)
    mime.calendar_summary(text)


# Base64 as mail carries it, damaged the ways mail gets damaged: junk bytes, lost or extra characters, cut short.
_B64_JUNK_BYTES = st.sampled_from(list(b"\r\n \t-_.!*\x00\xff:="))


@st.composite
def damaged_base64(draw) -> bytes:
    text = bytearray(base64.encodebytes(draw(st.binary(max_size=120))).replace(b"\n", b"\r\n"))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        match draw(st.sampled_from(["junk", "drop", "cut"])):
            case "junk":
                text.insert(at, draw(_B64_JUNK_BYTES))
            case "drop" if at < len(text):
                del text[at]
            case "cut":
                del text[at:]
    return bytes(text)


@PROFILE
@given(damaged_base64())
def test_base64_decodes_as_the_standard_library_does_however_damaged(text):
    first = text.find(b"=")
    if first >= 0 and text[first:].strip(b"=\r\n\t "):
        expected = None  # text after padding: glued chunks, which binascii would cut off
    else:
        try:
            expected = binascii.a2b_base64(text)
        except binascii.Error:
            expected = None  # binascii gives up; the lenient repair decides
    decoded = mime._b64decode(text)
    if expected is not None:
        assert decoded == expected
