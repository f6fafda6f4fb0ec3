"""mbox export (streamed, mboxrd) and splitting mbox files back into messages."""

import io
import re

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbox import mbox, mboxsplit
from tests.factories import build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def test_export_round_trips_every_message_byte_exact(alice_client, alice):
    account = make_account(alice)
    raws = [
        build_message("one", "From here on\nFrom the start\n>From quoted\n"),
        build_message("two", "plain body", attachments=[("a.bin", "application/octet-stream", bytes(range(256)))]),
    ]
    for i, raw in enumerate(raws):
        store_message(account, raw, f"u{i}")
    response = alice_client.get(reverse("mailbox:export") + "?folder=inbox")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="webpop-inbox-')
    body = b"".join(response.streaming_content)
    assert body.startswith(b"From carol@example.net ")
    assert b"\n>From here on\n" in body and b"\n>>From quoted\n" in body
    assert sorted(mbox.split_mbox(io.BytesIO(body))) == sorted(raws)


def test_export_of_a_search_only_has_matches(alice_client, alice):
    account = make_account(alice)
    store_message(account, build_message("invoice 42", "pay"), "1")
    store_message(account, build_message("lunch", "eat"), "2")
    body = b"".join(alice_client.get(reverse("mailbox:export") + "?q=subject:invoice").streaming_content)
    assert [m.split(b"Subject: ")[1].split(b"\r\n")[0] for m in mbox.split_mbox(io.BytesIO(body))] == [b"invoice 42"]


def test_export_is_only_ever_your_own_mail(bob_client, alice):
    store_message(make_account(alice), build_message("alice only"), "1")
    assert b"".join(bob_client.get(reverse("mailbox:export") + "?folder=inbox").streaming_content) == b""


def test_export_needs_a_folder_or_query(alice_client):
    assert alice_client.get(reverse("mailbox:export")).status_code == 404
    assert alice_client.get(reverse("mailbox:export") + "?folder=nope").status_code == 404


def test_split_mbox_handles_mboxo_and_text_before_the_first_message():
    data = (
        b"junk\nFrom a@b Thu Nov 26 00:00:00 2026\nSubject: 1\n\nbody\n\n"
        b"From c@d Thu Nov 26 00:00:00 2026\nSubject: 2\n\nx"
    )
    assert list(mbox.split_mbox(io.BytesIO(data))) == [b"Subject: 1\r\n\r\nbody\r\n", b"Subject: 2\r\n\r\nx\r\n"]


# --- The streaming splitter against the plain line-by-line reading it replaced ---------------
# Tiny pieces and chunks put piece and chunk boundaries everywhere: inside "From ", inside a
# run of ">", between a CR and its LF.

_FROM_LINE = re.compile(rb"^>*From ")
_LINE_END = re.compile(rb"\r?\n")


def reference_split(data: bytes) -> list[bytes]:
    messages, current = [], None
    for line in io.BytesIO(data):
        if line.startswith(b"From ") and (current is None or not current or current[-1] in (b"\n", b"\r\n")):
            if current:
                messages.append(current)
            current = []
            continue
        if current is None:
            continue
        if _FROM_LINE.match(line) and line.startswith(b">"):
            line = line[1:]
        current.append(line)
    if current:
        messages.append(current)
    out = []
    for lines in messages:
        if lines and lines[-1] in (b"\n", b"\r\n"):
            lines = lines[:-1]
        out.append(b"".join(line[:-2] + b"\r\n" if line.endswith(b"\r\n") else line.rstrip(b"\n") + b"\r\n"
                            for line in lines))  # fmt: skip
    return out


def reference_escape(raw: bytes) -> bytes:
    out = []
    for line in io.BytesIO(raw):
        if line.endswith(b"\r\n"):
            line = line[:-2] + b"\n"
        if _FROM_LINE.match(line):
            line = b">" + line
        out.append(line)
    if out and not out[-1].endswith(b"\n"):
        out.append(b"\n")
    return b"".join(out)


_BITS = [b"From a@b Thu Nov 26", b"From ", b">From x", b">>>>From y", b">>>", b">Fro", b"Subject: s", b"", b"\r",
         b"body", b"From", b"x\ry", b"\n", b"\r\n", b"\n\n", b"From z\n", b">" * 9]  # fmt: skip
mbox_text = st.lists(st.sampled_from(_BITS), max_size=40).map(b"".join)


def _small_pieces(monkeypatch, piece: int, chunk: int) -> None:
    monkeypatch.setattr(mboxsplit, "PIECE", piece)
    monkeypatch.setattr(mboxsplit, "CHUNK", chunk)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mbox_text, piece=st.integers(5, 12), chunk=st.integers(1, 17))
def test_streaming_split_gives_what_line_by_line_reading_gives(monkeypatch, data, piece, chunk):
    _small_pieces(monkeypatch, piece, chunk)
    assert list(mbox.split_mbox(io.BytesIO(data))) == reference_split(data)
    spans = list(mboxsplit.split_mbox(io.BytesIO(data), lambda _start: io.BytesIO()))
    contents = [span.sink.getvalue() if span.sink else b"" for span in spans]
    assert contents == reference_split(data)
    for number, span in enumerate(spans):
        assert data[span.start : span.start + 5] == b"From " and span.start < span.end
        # Resuming where a message ends gives the messages after it, and their places.
        fh = io.BytesIO(data)
        fh.seek(span.end)
        rest = list(mboxsplit.split_mbox(fh, lambda _start: io.BytesIO(), start=span.end))
        assert [s.sink.getvalue() if s.sink else b"" for s in rest] == contents[number + 1 :]
        assert [(s.start, s.end) for s in rest] == [(s.start, s.end) for s in spans[number + 1 :]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mbox_text, piece=st.integers(5, 12), chunk=st.integers(1, 17))
def test_streaming_eml_and_export_give_what_line_by_line_reading_gives(monkeypatch, data, piece, chunk):
    _small_pieces(monkeypatch, piece, chunk)
    span = mboxsplit.read_eml(io.BytesIO(data), lambda _start: io.BytesIO())
    assert (span.sink.getvalue() if span.sink else b"") == _LINE_END.sub(b"\r\n", data)
    assert (span.start, span.end) == (0, len(data))
    assert b"".join(mbox.escaped(io.BytesIO(data))) == reference_escape(data)


def test_a_long_line_streams_in_bounded_pieces():
    # A 5 MB line: the reader never holds more than a piece of it, and the output comes in pieces too.
    line = b">" * (3 * 1024 * 1024) + b"From the long line " + b"x" * (2 * 1024 * 1024)
    data = b"From a@b\nSubject: long\n\n" + line + b"\nend\n"
    pieces = mboxsplit.Pieces(io.BytesIO(data))
    sizes = []
    while piece := pieces.next():
        sizes.append(len(piece))
    assert sum(sizes) == len(data) and max(sizes) <= mboxsplit.PIECE

    class Sizes(list):
        write = list.append

    sink = Sizes()
    [span] = mboxsplit.split_mbox(io.BytesIO(data), lambda _start: sink)
    assert span.sink is sink and max(map(len, sink)) <= mboxsplit.FLUSH + mboxsplit.PIECE
    assert b"".join(sink) == b"Subject: long\r\n\r\n" + line[1:] + b"\r\nend\r\n"  # one ">" less (mboxrd)
    exported = list(mbox.escaped(io.BytesIO(b"".join(sink))))
    assert max(map(len, exported)) <= 64 * 1024 + mboxsplit.PIECE
    assert b"".join(exported) == b"Subject: long\n\n" + line + b"\nend\n"
