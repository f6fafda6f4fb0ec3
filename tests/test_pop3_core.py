"""The POP3 protocol core without a server or a socket: parsing, dot-stuffing, SASL, the session's steps.

The session logic (mailbox/pop3/session.py) is driven here by hand: what it
yields to send is collected, and scripted server bytes are fed in whenever it
asks for more, in chunks of any size.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbox.pop3 import (
    Capabilities,
    Pop3AuthError,
    Pop3ProtocolError,
    Pop3ServerError,
    Pop3TemporaryError,
    RetrResult,
    ScramCache,
    ServerProfile,
)
from mailbox.pop3.core import MAX_STATUS_LINE, NEED_DATA, START_TLS, BodyState, Emit, ResponseReader, encode_command
from mailbox.pop3.sasl import CramMd5, Login, OAuth, Plain, Scram
from mailbox.pop3.session import Session

CAPA_PIPELINING = b"+OK\r\nUIDL\r\nTOP\r\nUSER\r\nPIPELINING\r\nSASL PLAIN SCRAM-SHA-256\r\n.\r\n"
CAPA_LOCKSTEP = b"+OK\r\nUIDL\r\nUSER\r\nSASL PLAIN\r\n.\r\n"


def stuffed(message: bytes, eol: bytes = b"\r\n") -> bytes:
    """What a server sends for ``message`` after its +OK line: dot-stuffed, terminated."""
    if message and not message.endswith(b"\n"):
        message += eol
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\n.", b"\n..") + b"." + eol


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


class Sink:
    """A file that keeps what is written (as a driver's temp file would)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk) -> int:
        self.data += chunk
        return len(chunk)


# --- The reader -------------------------------------------------------------------


crlf_lines = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=30)
dot_heavy = st.lists(st.sampled_from([b"", b".", b"..", b". x", b".hidden", b"x.", b"a\r", b"text"]), max_size=30)


@settings(max_examples=300)
@given(
    lines=st.one_of(crlf_lines, dot_heavy),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
    eol=st.sampled_from([b"\r\n", b"\n"]),
)
def test_a_body_is_unstuffed_byte_exact_however_it_arrives(lines, cuts, eol):
    message = b"".join(line + eol for line in lines)
    wire = stuffed(message, eol) + b"+OK next\r\n"
    reader, sink = ResponseReader("pop.example"), Sink()
    state = BodyState(sink.write)
    result = None
    for piece in chunked(wire, cuts):
        reader.feed(piece)
        if result is None:
            result = reader.body(state)
    assert result == RetrResult(size=len(message), sha256=hashlib.sha256(message).hexdigest())
    assert bytes(sink.data) == message
    assert reader.status() == "+OK next"  # the next response starts right after the terminator


@settings(max_examples=200)
@given(
    lines=st.lists(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"), max_size=30), max_size=20
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=500), max_size=8),
)
def test_a_listing_is_unstuffed_however_it_arrives(lines, cuts):
    wire = b"".join((b"." + e if e.startswith(b".") else e) + b"\r\n" for e in (x.encode() for x in lines)) + b".\r\n"
    reader = ResponseReader()
    result = None
    for piece in chunked(wire, cuts):
        reader.feed(piece)
        if result is None:
            result = reader.listing()
    assert result == lines


def test_an_unfinished_response_asks_for_more_and_keeps_what_it_has():
    reader = ResponseReader()
    reader.feed(b"+OK 2 mess")
    assert reader.status() is None
    reader.feed(b"ages\r\n1 a\r\n")
    assert reader.status() == "+OK 2 messages"
    assert reader.listing() is None
    reader.feed(b"2 b\r\n.\r\n")
    assert reader.listing() == ["1 a", "2 b"]
    assert reader.buffered == 0


def test_status_lines_map_to_results_and_errors():
    reader = ResponseReader("pop.example")
    reader.feed(b"-ERR [IN-USE] locked\r\n-ERR nope\r\nhello\r\n")
    with pytest.raises(Pop3TemporaryError):
        reader.status()
    with pytest.raises(Pop3ServerError):
        reader.status()
    with pytest.raises(Pop3ProtocolError, match="unexpected reply"):
        reader.status()


def test_a_status_line_is_bounded_even_before_its_end_arrives():
    reader = ResponseReader()
    reader.feed(b"+OK " + b"x" * MAX_STATUS_LINE)
    with pytest.raises(Pop3ProtocolError, match="overlong"):
        reader.status()


@given(st.text(max_size=20), st.sampled_from(["\r", "\n", "\0"]), st.text(max_size=20))
def test_a_command_cannot_carry_a_second_one(before, bad, after):
    with pytest.raises(ValueError):
        encode_command(f"USER {before}{bad}{after}")


@given(
    st.dictionaries(
        st.from_regex(r"[A-Z][A-Z0-9-]{0,10}", fullmatch=True),
        st.lists(st.from_regex(r"[!-~]{1,8}", fullmatch=True), max_size=3),
    )
)
def test_capabilities_survive_a_round_trip_through_their_lines(raw):
    caps = Capabilities(raw)
    assert Capabilities.parse(caps.lines()) == caps


# --- What a session remembers ------------------------------------------------------------


def test_a_server_profile_survives_json_and_ages():
    profile = ServerProfile(("USER", "PIPELINING"), ("PIPELINING", "EXPIRE 30"), "PLAIN", 1_000.0)
    again = ServerProfile.from_json(profile.to_json())
    assert again == profile and again.post_login().expire == 30
    assert again.usable(now=1_000.0 + 3600) and not again.usable(now=1_000.0 + 2 * 86400)
    assert not again.usable(now=500.0)  # a clock that went backwards: ask again
    for garbage in (None, [], {"version": 99}, {"version": 1, "learned_at": "soon"}):
        assert not ServerProfile.from_json(garbage).usable()


def test_the_scram_cache_keeps_the_newest_few_entries():
    cache = ScramCache()
    for i in range(ScramCache.SIZE + 2):
        cache.put("sha256", f"salt{i}", 4096, bytes([i]) * 32)
    assert len(cache) == ScramCache.SIZE
    assert cache.get("sha256", "salt0", 4096) is None
    assert cache.get("sha256", f"salt{ScramCache.SIZE + 1}", 4096) == bytes([ScramCache.SIZE + 1]) * 32
    assert cache.get("sha1", f"salt{ScramCache.SIZE + 1}", 4096) is None  # keyed by hash and iterations too
    again = ScramCache.from_json(cache.to_json())
    assert again.to_json() == cache.to_json() and not again.changed
    again.forget("sha256", f"salt{ScramCache.SIZE + 1}", 4096)
    assert again.changed and len(again) == ScramCache.SIZE - 1


# --- SASL mechanisms -----------------------------------------------------------------


def test_plain_login_and_cram_md5_say_when_they_are_done():
    plain = Plain("alice", "secret")
    assert plain.initial() == b"\0alice\0secret" and plain.complete
    login = Login("alice", "secret")
    assert login.initial() is None
    assert login.respond(b"Username:") == b"alice" and not login.complete
    assert login.respond(b"Password:") == b"secret" and login.complete
    cram = CramMd5("alice", "secret")
    challenge = b"<1.2@example>"
    assert cram.respond(challenge) == b"alice " + hmac.new(b"secret", challenge, "md5").hexdigest().encode()
    assert cram.complete


def test_oauth_answers_an_error_challenge_as_each_mechanism_asks():
    xoauth = OAuth("XOAUTH2", "alice", "tok", "pop.example", 995)
    assert xoauth.initial() == b"user=alice\x01auth=Bearer tok\x01\x01"
    assert xoauth.respond(b'{"status":"401"}') == b""
    bearer = OAuth("OAUTHBEARER", "a,b", "tok", "pop.example", 995)
    assert bearer.respond(b"") == b"n,a=a=2Cb,\x01host=pop.example\x01port=995\x01auth=Bearer tok\x01\x01"
    assert bearer.respond(b'{"status":"invalid_token"}') == b"\x01"


class ScramServer:
    """The server side of SCRAM (RFC 5802), from stored keys as a server keeps them."""

    def __init__(self, hash_name: str, password: str, salt: bytes, iterations: int):
        self.hash_name, self.salt, self.iterations = hash_name, salt, iterations
        salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
        self.stored_key = hashlib.new(hash_name, hmac.new(salted, b"Client Key", hash_name).digest()).digest()
        self.server_key = hmac.new(salted, b"Server Key", hash_name).digest()

    def first(self, client_first: bytes) -> bytes:
        self.client_first_bare = client_first.decode().split(",", 2)[2]
        nonce = dict(f.split("=", 1) for f in self.client_first_bare.split(","))["r"] + "server-part"
        salt = base64.b64encode(self.salt).decode()
        self.server_first = f"r={nonce},s={salt},i={self.iterations}"
        return self.server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        without_proof, _, proof = client_final.decode().rpartition(",p=")
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = hmac.new(self.stored_key, auth_message, self.hash_name).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if hashlib.new(self.hash_name, client_key).digest() != self.stored_key:
            return b"e=invalid-proof"
        return b"v=" + base64.b64encode(hmac.new(self.server_key, auth_message, self.hash_name).digest())


@settings(max_examples=25, deadline=None)
@given(
    hash_name=st.sampled_from(["sha1", "sha256"]),
    user=st.text(min_size=1, max_size=12),
    password=st.text(min_size=1, max_size=16),
    salt=st.binary(min_size=4, max_size=24),
    iterations=st.integers(min_value=1, max_value=64),
)
def test_scram_proves_itself_to_a_server_and_checks_the_server(hash_name, user, password, salt, iterations):
    server = ScramServer(hash_name, Scram(hash_name, user, password).password.decode(), salt, iterations)
    cache = ScramCache()
    for round_ in ("computes", "from the cache"):
        client = Scram(hash_name, user, password, cache=cache)
        server_final = server.final(client.respond(server.first(client.initial())))
        assert server_final.startswith(b"v="), round_
        assert client.salted_from_cache == (round_ == "from the cache")
        assert client.respond(server_final) == b"" and client.verified and client.complete
    assert len(cache) == 1
    impostor = Scram(hash_name, user, password)
    impostor.respond(server.first(impostor.initial()))
    with pytest.raises(Pop3AuthError, match="signature is wrong"):
        impostor.respond(b"v=" + base64.b64encode(b"\0" * 20))
    assert not impostor.verified


def test_a_cached_key_the_server_refuses_is_forgotten():
    server = ScramServer("sha256", "new password", b"same salt", 16)
    cache = ScramCache()
    old = Scram("sha256", "alice", "old password", cache=cache)
    assert server.final(old.respond(server.first(old.initial()))) == b"e=invalid-proof"
    assert len(cache) == 1  # the server has not said -ERR yet
    again = Scram("sha256", "alice", "new password", cache=cache)
    again.respond(server.first(again.initial()))
    assert again.salted_from_cache
    again.refused()
    assert len(cache) == 0 and cache.changed


# --- The session's steps ------------------------------------------------------------------


class Wire:
    """Runs a session's steps: collects what it sends (one entry per write), feeds scripted replies."""

    def __init__(self, session: Session, replies: bytes, chunk: int = 7):
        self.session = session
        self.replies = replies
        self.chunk = chunk
        self.sent: list[bytes] = []
        self.turns = 0  # writes that follow a read, as tests/relay.py counts them
        self.emitted: list = []
        self._read_since_write = True

    def run(self, steps):
        try:
            op = next(steps)
            while True:
                if op is NEED_DATA:
                    if not self.replies:
                        raise AssertionError(f"the session waits for more; it sent {self.sent}")
                    piece, self.replies = self.replies[: self.chunk], self.replies[self.chunk :]
                    self.session.reader.feed(piece)
                    self._read_since_write = True
                elif op is START_TLS:
                    self.session.tls_started()
                elif isinstance(op, Emit):
                    self.emitted.append(op.value)
                else:
                    self.turns += self._read_since_write
                    self._read_since_write = False
                    self.sent.append(op)
                op = next(steps)
        except StopIteration as done:
            return done.value


def opened(capa: bytes, security: str = "none", profile: ServerProfile | None = None, **kwargs) -> Session:
    session = Session("pop.example", 110, profile=profile, **kwargs)
    replies = b"+OK ready\r\n" + (capa if profile is None else b"")
    Wire(session, replies).run(session.open(security))
    session.encrypted = True
    return session


def test_with_pipelining_the_follow_ups_leave_with_the_password():
    session = opened(CAPA_PIPELINING)
    wire = Wire(session, b"+OK\r\n+OK in\r\n" + CAPA_PIPELINING + b"+OK\r\n1 a\r\n.\r\n+OK bye\r\n")
    assert wire.run(session.login("alice", "pw", mechanism="USER", then=("UIDL", "QUIT"))) == "USER"
    assert wire.sent == [b"USER alice\r\nPASS pw\r\nCAPA\r\nUIDL\r\nQUIT\r\n"]
    assert wire.turns == 1
    assert Wire(session, b"").run(session.uidl()) == [(1, "a")]
    assert Wire(session, b"").run(session.quit()) is None and session.finished


def test_without_pipelining_each_command_waits_for_its_answer():
    session = opened(CAPA_LOCKSTEP)
    wire = Wire(session, b"+OK\r\n+OK in\r\n" + CAPA_LOCKSTEP + b"+OK\r\n1 a\r\n.\r\n")
    wire.run(session.login("alice", "pw", mechanism="PLAIN", then=("UIDL",)))
    assert wire.sent == [b"AUTH PLAIN AGFsaWNlAHB3\r\n", b"CAPA\r\n", b"UIDL\r\n"]
    assert wire.turns == 3
    assert Wire(session, b"").run(session.uidl()) == [(1, "a")]


def test_leaving_sends_quit_without_waiting_and_is_refused_once_a_dele_was_sent():
    session = opened(CAPA_LOCKSTEP)
    Wire(session, b"+OK\r\n+OK in\r\n" + CAPA_LOCKSTEP).run(session.login("alice", "pw", mechanism="PLAIN"))
    wire = Wire(session, b"")  # no answer to read: leaving must not ask for one
    assert wire.run(session.leave()) is None
    assert wire.sent == [b"QUIT\r\n"] and session.finished

    deleting = opened(CAPA_LOCKSTEP)
    Wire(deleting, b"+OK\r\n+OK in\r\n" + CAPA_LOCKSTEP).run(deleting.login("alice", "pw", mechanism="PLAIN"))
    assert Wire(deleting, b"+OK marked\r\n").run(deleting.dele_many([1])) == [None]
    with pytest.raises(Pop3ProtocolError, match="DELE was sent"):
        Wire(deleting, b"").run(deleting.leave())
    assert not deleting.finished


def test_a_profile_saves_both_capa_round_trips():
    profile = ServerProfile(
        tuple(Capabilities.parse(["PIPELINING", "SASL PLAIN", "STLS"]).lines()),
        ("PIPELINING", "EXPIRE 0"),
        "PLAIN",
        1.0,
    )
    session = Session("pop.example", 110, profile=profile)
    wire = Wire(session, b"+OK ready\r\n+OK begin TLS\r\n")
    wire.run(session.open("starttls"))
    assert wire.sent == [b"STLS\r\n"] and session.encrypted
    wire = Wire(session, b"+OK in\r\n+OK 3 99\r\n")
    wire.run(session.login("alice", "pw", then=("STAT",)))
    assert wire.sent == [b"AUTH PLAIN AGFsaWNlAHB3\r\nSTAT\r\n"]
    assert session.capabilities.expire == 0  # as after login, from the profile
    assert session.learned_profile(now=2.0) == profile  # learned when it was learned


def test_data_after_stls_before_the_handshake_is_refused():
    session = Session("pop.example", 110)
    wire = Wire(session, b"+OK ready\r\n+OK\r\nSTLS\r\n.\r\n+OK go ahead\r\n+OK injected\r\n", chunk=1000)
    with pytest.raises(Pop3ProtocolError, match="after STLS"):
        wire.run(session.open("starttls"))


def test_a_refused_login_with_follow_ups_in_flight_leaves_the_session_unusable():
    session = opened(CAPA_PIPELINING)
    wire = Wire(session, b"-ERR [AUTH] no\r\n")
    with pytest.raises(Pop3AuthError) as caught:
        wire.run(session.login("alice", "pw", mechanism="PLAIN", then=("UIDL",)))
    assert caught.value.mechanism == "PLAIN"
    assert session.broken  # CAPA and UIDL are answered by nobody's reader
    with pytest.raises(Pop3ProtocolError, match="abandoned"):
        Wire(session, b"").run(session.quit())


def test_scram_sends_the_follow_ups_only_after_checking_the_server():
    server = ScramServer("sha256", "pw", b"salt", 8)
    session = opened(CAPA_PIPELINING)
    steps = session.login("alice", "pw", mechanism="SCRAM-SHA-256", then=("UIDL",))
    sent = []
    op = next(steps)
    try:
        while True:
            if isinstance(op, bytes):
                sent.append(op)
                first = op.split(b"\r\n")[0]
                if first.startswith(b"AUTH "):
                    reply = b"+ " + base64.b64encode(server.first(base64.b64decode(first.split()[2]))) + b"\r\n"
                elif len(sent) == 2:
                    reply = b"+ " + base64.b64encode(server.final(base64.b64decode(first))) + b"\r\n"
                else:
                    reply = b"+OK in\r\n" + CAPA_PIPELINING + b"+OK\r\n1 a\r\n.\r\n"
                session.reader.feed(reply)
            op = next(steps)
    except StopIteration as done:
        assert done.value == "SCRAM-SHA-256"
    assert [s.count(b"\r\n") for s in sent] == [1, 1, 3]  # the empty last response, CAPA and UIDL together
    assert sent[2].startswith(b"\r\nCAPA\r\nUIDL")
    assert Wire(session, b"").run(session.uidl()) == [(1, "a")]


def test_pipelined_retrieval_emits_each_message_and_refusals_in_order():
    session = opened(CAPA_PIPELINING, window=2)
    session.capabilities = Capabilities.parse(["PIPELINING"])
    outs: dict[int, io.BytesIO] = {}
    replies = b"+OK\r\none\r\n.\r\n-ERR gone\r\n+OK\r\n..three\r\n.\r\n"
    wire = Wire(session, replies)
    wire.run(session.pipeline("RETR {}", [1, 2, 3], lambda n: outs.setdefault(n, io.BytesIO())))
    assert wire.sent == [b"RETR 1\r\nRETR 2\r\n", b"RETR 3\r\n"]
    assert [n for n, _ in wire.emitted] == [1, 2, 3]
    assert isinstance(wire.emitted[1][1], Pop3ServerError)
    assert outs[1].getvalue() == b"one\r\n" and outs[3].getvalue() == b".three\r\n"
