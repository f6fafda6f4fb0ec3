"""The hostile corpus (tests/corpus/*.eml, expectations in expected.json) and CPython's own test messages."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest
from django.urls import reverse

from mailbox import mime, store, sync
from mailbox.models import Message
from tests.conftest import require
from tests.factories import make_account, store_message

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text())
RECEIVED = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_corpus_is_large_and_every_file_has_expectations():
    files = {p.name for p in CORPUS.glob("*.eml")}
    assert len(files) >= 60
    assert files == set(EXPECTED)


def _check(parsed: mime.ParsedMessage, expect: dict) -> None:
    if "subject" in expect:
        assert parsed.subject == expect["subject"]
    if "subject_prefix" in expect:
        assert parsed.subject.startswith(expect["subject_prefix"])
    for key in ("from_email", "from_name"):
        if key in expect:
            assert getattr(parsed, key) == expect[key]
    if "to_contains" in expect:
        assert expect["to_contains"] in parsed.to
    if "text_contains" in expect:
        shown = "\n".join([parsed.text_body, parsed.html_body, parsed.calendar_summary])
        assert expect["text_contains"] in shown
    if "html_contains" in expect:
        assert expect["html_contains"] in parsed.html_body
    if "snippet" in expect:
        assert parsed.snippet == expect["snippet"]
    if "date" in expect:
        assert parsed.date == dt.datetime.fromisoformat(expect["date"])
        assert parsed.date.utcoffset() == dt.datetime.fromisoformat(expect["date"]).utcoffset()
    if expect.get("date_fallback"):
        assert parsed.date is None
    if expect.get("notice"):
        assert parsed.parse_notice
    got = [
        {"name": a.filename, "sha256": hashlib.sha256(a.data).hexdigest(), "size": len(a.data)}
        for a in parsed.attachments
    ]
    if "attachments" in expect:
        assert got == expect["attachments"]
    if "attachments_prefix" in expect:
        assert got[: len(expect["attachments_prefix"])] == expect["attachments_prefix"]
    if "attachment_count" in expect:
        assert len(got) == expect["attachment_count"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_parses_as_expected(name):
    parsed = mime.parse_bytes((CORPUS / name).read_bytes(), received_at=RECEIVED)
    _check(parsed, EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_parses_the_same_from_a_mapped_file(name):
    with open(CORPUS / name, "rb") as fh:
        from_file = mime.parse_file(fh, received_at=RECEIVED)
    assert from_file == mime.parse_bytes((CORPUS / name).read_bytes(), received_at=RECEIVED)


@pytest.mark.django_db
def test_every_corpus_message_is_stored_byte_exact_with_subject_sender_and_date(alice):
    account = make_account(alice)
    for number, path in enumerate(sorted(CORPUS.glob("*.eml"))):
        raw = path.read_bytes()
        message = store_message(account, raw, uidl=f"u{number}")
        assert store.path_of(message.raw_path).read_bytes() == raw, path.name
        assert message.sha256 == hashlib.sha256(raw).hexdigest()
        assert str(message) and message.sender, path.name  # placeholders where the message has none
        assert message.date is not None
        for attachment in message.attachments.all():
            data = store.open_file(attachment.stored_path).read()
            assert hashlib.sha256(data).hexdigest() == attachment.sha256
    assert Message.objects.filter(account=account).count() == len(EXPECTED)


def _crlf_only(raw: bytes) -> bool:
    return raw.count(b"\r") == raw.count(b"\n") == raw.count(b"\r\n")


@pytest.mark.django_db
@pytest.mark.dovecot
def test_the_corpus_syncs_from_dovecot_byte_exact_and_every_message_page_renders(
    pop_user, dovecot_account, alice_client
):
    files = sorted(CORPUS.glob("*.eml"))
    for path in files:
        pop_user.deliver(path.read_bytes())
    account = dovecot_account()
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched, result.skipped) == (None, len(files), 0)
    messages = {m.sha256: m for m in Message.objects.filter(account=account)}
    # POP3 is CRLF on the wire: Dovecot rewrites bare CR / LF line endings, so only
    # files that are CRLF throughout must arrive exactly as written.
    crlf_files = [path for path in files if _crlf_only(path.read_bytes())]
    assert len(crlf_files) >= 60
    for path in crlf_files:
        raw = path.read_bytes()
        message = messages[hashlib.sha256(raw).hexdigest()]
        assert store.path_of(message.raw_path).read_bytes() == raw, path.name
    for message in messages.values():
        response = alice_client.get(reverse("mailbox:message", args=[message.id]))
        assert response.status_code == 200, message.subject


def _cpython_email_data() -> Path | None:
    try:
        import test  # the interpreter's own test package

        folder = Path(os.path.dirname(test.__file__)) / "test_email" / "data"
    except ImportError:
        folder = Path("/root/.pyenv/versions/3.11.7/lib/python3.11/test/test_email/data")
    return folder if folder.is_dir() else None


def test_every_message_in_cpythons_email_test_data_parses():
    folder = _cpython_email_data()
    require(
        folder is not None,
        "CPython's test/test_email/data",
        "install the interpreter's own tests (Debian's python3: package libpython3.11-testsuite)",
    )
    files = sorted(folder.glob("msg_*.txt"))
    assert len(files) >= 40
    for path in files:
        parsed = mime.parse_bytes(path.read_bytes())
        assert isinstance(parsed.subject, str), path.name
        for attachment in parsed.attachments:
            assert attachment.filename, path.name
