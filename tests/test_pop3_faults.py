"""Our POP3 client against a server that misbehaves on purpose (tests/fault_server.py).

Each test names one behaviour and checks an exact result: the bytes written,
or the exception class (and code) raised, plus what the server saw.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time

import pytest

from mailbox.pop3 import (
    Capabilities,
    Pop3AuthError,
    Pop3Client,
    Pop3InsecureError,
    Pop3ProtocolError,
    Pop3ServerError,
    Pop3TemporaryError,
    Pop3TimeoutError,
    Pop3TLSError,
    RetrResult,
)
from tests.fault_server import (
    OAUTHBEARER_ERROR,
    XOAUTH2_ERROR,
    FaultServer,
    ServerFactory,
    make_message,
    oauthbearer_payload,
    tls_materials,
    xoauth2_payload,
)
from tests.pop3_drivers import pop3_driver  # noqa: F401 (every test runs with each driver)

USER, PASSWORD, TOKEN = "alice", "secret", "ya29.test-token"
USERS = {USER: PASSWORD}


@pytest.fixture
def serve():
    with ServerFactory() as factory:
        yield factory
        for server in factory.servers:
            assert server.errors == [], "the fault server itself failed"


def client_for(server: FaultServer, **kwargs) -> Pop3Client:
    kwargs.setdefault("timeout", 2.0)
    security = "ssl" if server.ssl_context is not None else "none"
    if security == "ssl":
        kwargs.setdefault("tls_context", tls_materials().client_context())
    return Pop3Client(server.host, server.port, security, allow_private=True, **kwargs)


def login(client: Pop3Client, **kwargs) -> None:
    client.login(USER, PASSWORD, allow_plaintext=True, **kwargs)


def retr(client: Pop3Client, number: int) -> tuple[bytes, RetrResult]:
    out = io.BytesIO()
    result = client.retr_to(number, out)
    return out.getvalue(), result


def result_of(data: bytes) -> RetrResult:
    return RetrResult(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def sent_quit(server: FaultServer) -> bool:
    return any(line.upper() == "QUIT" for session in server.commands for line in session)


def client_lines(server: FaultServer) -> list[bytes]:
    return [raw for direction, raw in server.last.transcript if direction == "C"]


# --- Login errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("login_error", "code"),
    [
        ("[IN-USE] Mailbox locked", "IN-USE"),
        ("[LOGIN-DELAY] wait 15 minutes", "LOGIN-DELAY"),
        ("[SYS/TEMP] overloaded", "SYS/TEMP"),
    ],
)
def test_temporary_response_codes_at_login_are_temporary_errors(serve, login_error, code):
    server = serve([make_message(1)], USERS, login_error=login_error)
    with client_for(server) as client, pytest.raises(Pop3TemporaryError) as caught:
        login(client)
    assert caught.value.code == code
    assert caught.value.error_class == "temporary"


def test_in_use_at_login_is_a_temporary_error(serve):
    server = serve([make_message(1)], USERS, in_use=True)
    with client_for(server) as client, pytest.raises(Pop3TemporaryError) as caught:
        login(client)
    assert caught.value.code == "IN-USE"
    assert caught.value.error_class == "temporary"


def test_wrong_password_with_auth_code_is_an_auth_error(serve):
    server = serve([], USERS)
    with client_for(server) as client, pytest.raises(Pop3AuthError) as caught:
        client.login(USER, "wrong", allow_plaintext=True)
    assert caught.value.code == "AUTH"
    assert caught.value.error_class == "auth"


def test_wrong_password_with_plain_err_is_an_auth_error(serve):
    server = serve([], USERS, resp_codes=False)
    with client_for(server) as client, pytest.raises(Pop3AuthError) as caught:
        client.login(USER, "wrong", allow_plaintext=True)
    assert caught.value.error_class == "auth"
    assert server.last.commands == ["CAPA", "USER alice", "PASS wrong"]


def test_auth_code_on_good_password_is_an_auth_error(serve):
    server = serve([], USERS, login_error="[AUTH] bad")
    with client_for(server) as client, pytest.raises(Pop3AuthError) as caught:
        login(client)
    assert caught.value.code == "AUTH"


def test_sys_perm_at_login_is_permanent_not_auth(serve):
    server = serve([], USERS, login_error="[SYS/PERM] gone")
    with client_for(server) as client, pytest.raises(Pop3ServerError) as caught:
        login(client)
    assert not isinstance(caught.value, Pop3AuthError | Pop3TemporaryError)
    assert caught.value.error_class == "permanent"
    assert caught.value.code == "SYS/PERM"


def test_password_is_refused_over_clear_text_without_allow_plaintext(serve):
    server = serve([], USERS, sasl=["PLAIN", "LOGIN"])
    with client_for(server) as client, pytest.raises(Pop3InsecureError):
        client.login(USER, PASSWORD)
    server.wait_idle()
    assert not any(line.split(" ")[0].upper() in {"USER", "PASS", "AUTH", "APOP"} for line in server.last.commands)
    assert all(PASSWORD not in line for line in server.last.commands)


def test_oauth_token_is_refused_over_clear_text(serve):
    server = serve([], USERS, sasl=["XOAUTH2"], tokens={USER: TOKEN})
    with client_for(server) as client, pytest.raises(Pop3InsecureError):
        client.login_oauth(USER, TOKEN)
    server.wait_idle()
    assert server.last.commands == ["CAPA"]


# --- Errors during the session --------------------------------------------------


def test_sys_temp_mid_session_is_temporary_and_rolls_back(serve):
    server = serve([make_message(1), make_message(2)], USERS, sys_temp_after=2)
    with pytest.raises(Pop3TemporaryError) as caught, client_for(server) as client:
        login(client)
        client.dele(1)
        client.stat()
        client.uidl()
    assert caught.value.code == "SYS/TEMP"
    server.wait_idle()
    assert not sent_quit(server)
    assert server.messages_left() == 2


def test_error_inside_with_block_sends_no_quit_and_rolls_back(serve):
    server = serve([make_message(1), make_message(2)], USERS)
    with pytest.raises(RuntimeError), client_for(server) as client:
        login(client)
        client.dele(1)
        client.dele(2)
        raise RuntimeError("the caller failed")
    server.wait_idle()
    assert not sent_quit(server)
    assert server.last.rolled_back
    assert server.messages_left() == 2


def test_quit_commits_deletions(serve):
    server = serve([make_message(1), make_message(2)], USERS)
    with client_for(server) as client:
        login(client)
        client.dele(1)
        client.quit()
    assert server.remaining_messages() == [make_message(2)]


def test_rset_undoes_deletions_before_quit(serve):
    server = serve([make_message(1), make_message(2)], USERS)
    with client_for(server) as client:
        login(client)
        client.dele(1)
        client.rset()
        client.noop()
        client.quit()
    assert server.messages_left() == 2


def test_connection_dropped_mid_retr_is_a_protocol_error_and_no_result(serve):
    messages = [make_message(1), make_message(2, b"x" * 5000 + b"\r\n")]
    server = serve(messages, USERS, drop_during_retr=(2, 1000))
    result = None
    out = io.BytesIO()
    with pytest.raises(Pop3ProtocolError), client_for(server) as client:
        login(client)
        client.dele(1)
        result = client.retr_to(2, out)
    assert result is None
    assert out.getvalue() != messages[1]
    assert len(out.getvalue()) <= 1000
    server.wait_idle()
    assert not sent_quit(server)
    assert server.messages_left() == 2


def test_connection_dropped_after_quit_is_a_protocol_error_and_rolls_back(serve):
    server = serve([make_message(1)], USERS, drop_after_command="QUIT")
    with client_for(server) as client:
        login(client)
        client.dele(1)
        with pytest.raises(Pop3ProtocolError):
            client.quit()
    server.wait_idle()
    assert server.messages_left() == 1


def test_connection_dropped_after_dele_is_a_protocol_error_and_rolls_back(serve):
    server = serve([make_message(1), make_message(2)], USERS, drop_after_command="DELE")
    with pytest.raises(Pop3ProtocolError), client_for(server) as client:
        login(client)
        client.dele(1)
    server.wait_idle()
    assert server.messages_left() == 2


def test_slow_reply_is_a_timeout_within_the_timeout(serve):
    server = serve([make_message(1)], USERS, slow=30, slow_commands={"STAT"})
    with client_for(server, timeout=0.5) as client:
        login(client)
        started = time.monotonic()
        with pytest.raises(Pop3TimeoutError) as caught:
            client.stat()
    assert time.monotonic() - started < 0.5 + 1
    assert caught.value.error_class == "timeout"


def test_stalled_greeting_is_a_timeout_on_connect(serve):
    server = serve([], USERS, stall_greeting=float("inf"))
    client = client_for(server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Pop3TimeoutError):
        client.connect()
    assert time.monotonic() - started < 0.5 + 1


def test_trickling_server_is_cut_off_by_the_session_timeout(serve):
    message = make_message(1, b"y" * 2000 + b"\r\n")
    server = serve([message], USERS, trickle=(100, 0.1))  # about 2 s for the whole message
    client = client_for(server, timeout=1.0, session_timeout=0.8)
    started = time.monotonic()
    with pytest.raises(Pop3TimeoutError), client:
        login(client)
        retr(client, 1)
    assert time.monotonic() - started < 0.8 + 1


@pytest.mark.parametrize("where", ["GREETING", "STAT"])
def test_status_line_over_64_kib_is_a_protocol_error(serve, where):
    server = serve([make_message(1)], USERS, overlong_reply=where)
    with pytest.raises(Pop3ProtocolError), client_for(server) as client:
        login(client)
        client.stat()


# --- Capabilities ----------------------------------------------------------------


def test_capabilities_are_parsed(serve):
    server = serve([], USERS, sasl=["PLAIN", "CRAM-MD5"], expire="0", login_delay=900, utf8=True)
    with client_for(server) as client:
        caps = client.capabilities
        assert isinstance(caps, Capabilities)
        assert (caps.top, caps.uidl, caps.pipelining, caps.user, caps.stls) == (True, True, True, True, False)
        assert caps.sasl == ["PLAIN", "CRAM-MD5"]
        assert (caps.resp_codes, caps.auth_resp_code, caps.utf8) == (True, True, True)
        assert caps.login_delay == 900
        assert caps.expire == 0
        assert caps.expire_never is False
        assert caps.implementation == "FaultServer"
        assert client.apop_timestamp is None


def test_expire_never_is_reported(serve):
    server = serve([], USERS, expire="NEVER")
    with client_for(server) as client:
        assert client.capabilities.expire is None
        assert client.capabilities.expire_never is True


def test_without_capa_capabilities_are_empty_and_user_pass_still_works(serve):
    server = serve([make_message(1)], USERS, no_capa=True)
    with client_for(server) as client:
        caps = client.capabilities
        assert (caps.top, caps.uidl, caps.pipelining, caps.user, caps.stls) == (False, False, False, False, False)
        assert caps.sasl == []
        assert (caps.login_delay, caps.expire, caps.implementation) == (None, None, None)
        login(client)
        assert client.stat() == (1, len(make_message(1)))
        client.quit()
    assert [c for c in server.last.commands if c.split()[0] in {"USER", "PASS"}] == ["USER alice", "PASS secret"]


def test_utf8_command_is_sent_when_advertised(serve):
    server = serve([], USERS, utf8=True)
    with client_for(server) as client:
        client.utf8()
        login(client)
        client.quit()
    assert server.last.utf8
    assert server.last.commands[1] == "UTF8"


def test_without_uidl_uidl_raises_server_error(serve):
    server = serve([make_message(1)], USERS, no_uidl=True)
    with client_for(server) as client:
        assert client.capabilities.uidl is False
        login(client)
        with pytest.raises(Pop3ServerError) as caught:
            client.uidl()
        assert caught.value.error_class == "permanent"
        client.quit()


def test_without_top_top_raises_server_error(serve):
    server = serve([make_message(1)], USERS, no_top=True)
    with client_for(server) as client:
        assert client.capabilities.top is False
        login(client)
        with pytest.raises(Pop3ServerError):
            client.top(1, 0)
        client.quit()


def test_top_returns_headers_and_first_body_lines_byte_exact(serve):
    message = b"From: a@example.org\r\nSubject: t\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n"
    server = serve([message], USERS)
    with client_for(server) as client:
        login(client)
        assert client.top(1, 0) == b"From: a@example.org\r\nSubject: t\r\n\r\n"
        out = io.BytesIO()
        result = client.top_to(1, 2, out)
        expected = b"From: a@example.org\r\nSubject: t\r\n\r\nline 1\r\n.line 2\r\n"
        assert out.getvalue() == expected
        assert result == result_of(expected)
        client.quit()


def test_uidl_one_returns_the_unique_id(serve):
    server = serve([make_message(1), make_message(2)], USERS, uidls=["first", "second"])
    with client_for(server) as client:
        login(client)
        assert client.uidl_one(2) == "second"
        client.quit()


# --- Message content ---------------------------------------------------------------


def test_dot_lines_are_unstuffed_byte_exact(serve):
    message = b".starts with a dot\r\nSubject: dots\r\n\r\n.\r\n..\r\n...\r\n. x\r\n.hidden\r\nend\r\n.\r\n"
    server = serve([message], USERS)
    with client_for(server) as client:
        login(client)
        data, result = retr(client, 1)
        client.quit()
    assert data == message
    assert result == result_of(message)


def test_unstuffed_dot_line_loses_its_leading_dot(serve):
    message = b"Subject: bad stuffing\r\n\r\n.hidden\r\nvisible\r\n"
    server = serve([message], USERS, bad_stuffing=True)
    with client_for(server) as client:
        login(client)
        data, result = retr(client, 1)
        client.quit()
    expected = b"Subject: bad stuffing\r\n\r\nhidden\r\nvisible\r\n"  # RFC 1939: the client strips the dot
    assert data == expected
    assert result == result_of(expected)


def test_bare_lf_message_is_kept_byte_exact(serve):
    message = b"Subject: lf\r\n\r\n.dot\r\nline\r\n"
    server = serve([message, make_message(2)], USERS, bare_lf=True)
    with client_for(server) as client:
        login(client)
        data, result = retr(client, 1)
        second, _ = retr(client, 2)  # the session is still in step after an LF terminator
        client.quit()
    assert data == b"Subject: lf\n\n.dot\nline\n"
    assert result == result_of(data)
    assert second == make_message(2).replace(b"\r\n", b"\n")


def test_ten_megabyte_single_line_message_is_retrieved_byte_exact(serve):
    message = b"Subject: huge\r\n\r\n" + b"A" * (10 * 1024 * 1024) + b"\r\n"
    server = serve([message], USERS)
    with client_for(server, timeout=10.0) as client:
        login(client)
        data, result = retr(client, 1)
        client.quit()
    assert data == message
    assert result == result_of(message)


def test_list_size_mismatch_does_not_change_retrieved_size_and_hash(serve):
    messages = [make_message(1), make_message(2)]
    server = serve(messages, USERS, list_size_delta=7)
    with client_for(server) as client:
        login(client)
        assert client.list() == {1: len(messages[0]) + 7, 2: len(messages[1]) + 7}
        data, result = retr(client, 2)
        client.quit()
    assert data == messages[1]
    assert result == result_of(messages[1])


def test_duplicate_uidls_are_both_returned(serve):
    server = serve([make_message(i) for i in (1, 2, 3)], USERS, duplicate_uidls=True)
    with client_for(server) as client:
        login(client)
        assert client.uidl() == [(1, "uid-00001"), (2, "uid-00001"), (3, "uid-00003")]
        client.quit()


# --- Pipelining ----------------------------------------------------------------------


def fifty_messages() -> list[bytes]:
    body = b"line\r\n.dotted\r\n"
    return [make_message(i, body * i + (b"\r\n.\r\n" if i % 7 == 0 else b"")) for i in range(1, 51)]


def retr_many(client: Pop3Client, numbers) -> tuple[dict[int, bytes], dict[int, RetrResult | Pop3ServerError]]:
    outs: dict[int, io.BytesIO] = {}

    def open_out(number: int) -> io.BytesIO:
        outs[number] = io.BytesIO()
        return outs[number]

    results = dict(client.retr_many(numbers, open_out))
    return {n: out.getvalue() for n, out in outs.items()}, results


def test_pipelined_retr_many_matches_lock_step_retr_to(serve):
    messages = fifty_messages()
    server = serve(messages, USERS)
    with client_for(server, window=50) as client:
        login(client)
        data, results = retr_many(client, range(1, 51))
        client.quit()
    pipelined = server.last
    with client_for(server, window=50) as client:
        login(client)
        lock_step = {n: retr(client, n) for n in range(1, 51)}
        client.quit()
    assert data == {n: lock_step[n][0] for n in range(1, 51)} == dict(enumerate(messages, 1))
    assert results == {n: lock_step[n][1] for n in range(1, 51)}
    assert pipelined.max_in_flight > 1


def test_retr_many_without_pipelining_is_lock_step(serve):
    messages = fifty_messages()
    server = serve(messages, USERS, pipelining=False)
    with client_for(server, window=50) as client:
        assert client.capabilities.pipelining is False
        login(client)
        data, results = retr_many(client, range(1, 51))
        client.quit()
    assert data == dict(enumerate(messages, 1))
    assert results == {n: result_of(m) for n, m in enumerate(messages, 1)}
    assert server.last.max_in_flight == 1


@pytest.mark.parametrize("pipelining", [True, False])
def test_retr_many_yields_a_per_message_error_and_the_others_succeed(serve, pipelining):
    messages = [make_message(i) for i in range(1, 6)]
    server = serve(messages, USERS, pipelining=pipelining, retr_errors={3: "message 3 is unavailable"})
    with client_for(server, window=50) as client:
        login(client)
        data, results = retr_many(client, [1, 2, 3, 4, 5])
        assert client.stat() == (5, sum(len(m) for m in messages))  # still in step afterwards
        client.quit()
    assert isinstance(results[3], Pop3ServerError)
    assert results[3].response == "-ERR message 3 is unavailable"
    assert {n: r for n, r in results.items() if n != 3} == {n: result_of(messages[n - 1]) for n in (1, 2, 4, 5)}
    assert {n: d for n, d in data.items() if n != 3} == {n: messages[n - 1] for n in (1, 2, 4, 5)}


def test_dele_many_is_pipelined_and_reports_each_failure(serve):
    server = serve([make_message(i) for i in range(1, 5)], USERS)
    with client_for(server, window=50) as client:
        login(client)
        results = client.dele_many([1, 2, 9, 4])
        client.quit()
    assert [isinstance(r, Pop3ServerError) for r in results] == [False, False, True, False]
    assert server.remaining_messages() == [make_message(3)]
    assert server.last.max_in_flight > 1


def plain_login_then(client: Pop3Client, then) -> None:
    client.login(USER, PASSWORD, allow_plaintext=True, mechanism="PLAIN", then=then)


def test_commands_after_the_login_go_in_its_write_and_are_answered_from_there(serve):
    server = serve([make_message(1), make_message(2)], USERS, sasl=["PLAIN"])
    with client_for(server) as client:
        plain_login_then(client, ("STAT", "UIDL", "QUIT"))
        assert client.stat() == (2, len(make_message(1)) + len(make_message(2)))
        assert client.uidl() == [(1, "uid-00001"), (2, "uid-00002")]
        assert client.capabilities.pipelining  # asked again after the login, in the same write
        client.quit()
    server.wait_idle()
    assert [c.split()[0] for c in server.last.commands] == ["CAPA", "AUTH", "CAPA", "STAT", "UIDL", "QUIT"]
    assert server.last.max_in_flight == 5


def test_without_pipelining_the_commands_after_the_login_wait_their_turn(serve):
    server = serve([make_message(1)], USERS, sasl=["PLAIN"], pipelining=False)
    with client_for(server) as client:
        plain_login_then(client, ("UIDL",))
        assert client.uidl() == [(1, "uid-00001")]
        client.quit()
    assert [c.split()[0] for c in server.last.commands] == ["CAPA", "AUTH", "CAPA", "UIDL", "QUIT"]
    assert server.last.max_in_flight == 1


def test_a_client_told_not_to_pipeline_does_not(serve):
    server = serve([make_message(1), make_message(2)], USERS)
    with client_for(server, pipelining=False) as client:
        login(client, then=("UIDL",))
        retr_many(client, [1, 2])
        assert client.dele_many([1, 2]) == [None, None]
        client.quit()
    assert server.last.max_in_flight == 1 and server.messages_left() == 0


def test_a_refusal_answered_by_closing_stays_an_auth_error_with_commands_in_flight(serve):
    server = serve([make_message(1)], USERS, sasl=["PLAIN"], after_auth_failure="close")
    with client_for(server) as client, pytest.raises(Pop3AuthError) as caught:
        client.login(USER, "wrong", allow_plaintext=True, mechanism="PLAIN", then=("UIDL", "QUIT"))
    assert caught.value.code == "AUTH"
    server.wait_idle()
    assert server.last.user is None


def test_stat_and_uidl_asked_together_go_in_one_write(serve):
    server = serve([make_message(1)], USERS)
    with client_for(server) as client:
        login(client)
        client.ask("STAT", "UIDL")
        assert client.uidl() == [(1, "uid-00001")]
        assert client.stat() == (1, len(make_message(1)))
        assert client.stat() == (1, len(make_message(1)))  # asked again: a new round trip
        client.quit()
    assert server.last.commands[-5:] == ["CAPA", "STAT", "UIDL", "STAT", "QUIT"]
    assert server.last.max_in_flight == 2


def test_a_refused_follow_up_is_raised_by_the_call_that_asks_for_it(serve):
    server = serve([make_message(1)], USERS, no_uidl=True)
    with client_for(server) as client:
        login(client, then=("UIDL",))
        with pytest.raises(Pop3ServerError):
            client.uidl()
        assert client.list() == {1: len(make_message(1))}  # still in step
        client.quit()


# --- Authentication mechanisms -----------------------------------------------------------


def test_login_prefers_cram_md5_and_sends_the_right_digest(serve):
    server = serve([], USERS, sasl=["PLAIN", "LOGIN", "CRAM-MD5"], apop_timestamp=True)
    with client_for(server) as client:
        login(client)
        client.quit()
    assert server.last.mechanism == "CRAM-MD5"
    challenge_line = next(raw for d, raw in server.last.transcript if d == "S" and raw.startswith(b"+ "))
    challenge = base64.b64decode(challenge_line[2:])
    digest = hmac.new(PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
    assert server.last.sasl_responses == [f"{USER} {digest}".encode()]


def test_login_prefers_apop_over_plain_and_sends_the_right_digest(serve):
    server = serve([], USERS, sasl=["PLAIN", "LOGIN"], apop_timestamp=True)
    with client_for(server) as client:
        assert client.apop_timestamp == server.apop_timestamp
        login(client)
        client.quit()
    digest = hashlib.md5((server.apop_timestamp + PASSWORD).encode()).hexdigest()
    assert f"APOP {USER} {digest}" in server.last.commands
    assert server.last.mechanism == "APOP"


def test_login_prefers_plain_over_login(serve):
    server = serve([], USERS, sasl=["LOGIN", "PLAIN"])
    with client_for(server) as client:
        login(client)
        client.quit()
    assert server.last.mechanism == "PLAIN"
    assert server.last.sasl_responses == [b"\0alice\0secret"]


def test_login_mechanism_sends_user_then_password(serve):
    server = serve([], USERS, sasl=["LOGIN"])
    with client_for(server) as client:
        login(client)
        client.quit()
    assert server.last.mechanism == "LOGIN"
    assert server.last.sasl_responses == [b"alice", b"secret"]


def test_pinned_mechanism_is_used_even_when_a_stronger_one_is_offered(serve):
    server = serve([], USERS, sasl=["CRAM-MD5", "PLAIN"], apop_timestamp=True)
    with client_for(server) as client:
        login(client, mechanism="USER")
        client.quit()
    assert server.last.mechanism == "USER"
    assert server.last.commands[1:3] == ["USER alice", "PASS secret"]


def test_rfc_1939_apop_example_digest(serve):
    # The worked example of RFC 1939 section 7, byte for byte.
    server = serve([], {"mrose": "tanstaaf"}, apop_timestamp="<1896.697170952@dbc.mtview.ca.us>")
    with client_for(server) as client:
        client.login("mrose", "tanstaaf", allow_plaintext=True, mechanism="APOP")
        client.quit()
    assert server.last.commands[1] == "APOP mrose c4c9334bac560ecc979e58001b3e22fb"


# --- OAuth (over implicit TLS, as providers require) -------------------------------------------


@pytest.fixture
def oauth_server(serve):
    def make(**faults) -> FaultServer:
        return serve(
            [make_message(1)], USERS, tokens={USER: TOKEN}, ssl_context=tls_materials().server_context, **faults
        )

    return make


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_implicit_tls_connects_with_a_trusted_certificate(oauth_server):
    server = oauth_server()
    with client_for(server) as client:
        assert client.encrypted
        client.login(USER, PASSWORD)  # no allow_plaintext needed over TLS
        assert client.stat()[0] == 1
        client.quit()


def test_implicit_tls_with_an_unknown_issuer_is_a_tls_error(oauth_server):
    server = oauth_server()
    with pytest.raises(Pop3TLSError):
        Pop3Client(server.host, server.port, "ssl", timeout=2.0, allow_private=True).connect()


def test_xoauth2_one_step_sends_the_exact_initial_response(oauth_server):
    server = oauth_server(sasl=["XOAUTH2"])
    with client_for(server) as client:
        client.login_oauth(USER, TOKEN, mechanism="XOAUTH2")
        client.quit()
    payload = b"user=alice\x01auth=Bearer ya29.test-token\x01\x01"
    assert payload == xoauth2_payload(USER, TOKEN)
    auth = ("C", b"AUTH XOAUTH2 " + b64(payload) + b"\r\n")
    transcript = server.last.transcript
    assert transcript[transcript.index(auth) + 1] == ("S", b"+OK Logged in, 1 messages\r\n")
    assert [line for line in client_lines(server) if line.startswith(b"AUTH")] == [auth[1]]
    assert server.last.mechanism == "XOAUTH2"


def test_xoauth2_two_step_sends_the_command_then_the_response(oauth_server):
    server = oauth_server(sasl=["XOAUTH2"])
    with client_for(server) as client:
        client.login_oauth(USER, TOKEN, mechanism="XOAUTH2", two_step=True)
        client.quit()
    transcript = server.last.transcript
    start = transcript.index(("C", b"AUTH XOAUTH2\r\n"))
    assert transcript[start : start + 4] == [
        ("C", b"AUTH XOAUTH2\r\n"),
        ("S", b"+ \r\n"),
        ("C", b64(xoauth2_payload(USER, TOKEN)) + b"\r\n"),
        ("S", b"+OK Logged in, 1 messages\r\n"),
    ]


def test_failed_xoauth2_is_an_auth_error_after_an_empty_continuation(oauth_server):
    server = oauth_server(sasl=["XOAUTH2"])
    with client_for(server) as client, pytest.raises(Pop3AuthError):
        client.login_oauth(USER, "expired-token", mechanism="XOAUTH2")
    server.wait_idle()
    transcript = server.last.transcript
    start = transcript.index(("C", b"AUTH XOAUTH2 " + b64(xoauth2_payload(USER, "expired-token")) + b"\r\n"))
    assert transcript[start + 1 : start + 4] == [
        ("S", b"+ " + b64(json.dumps(XOAUTH2_ERROR).encode()) + b"\r\n"),
        ("C", b"\r\n"),
        ("S", b"-ERR [AUTH] Invalid credentials\r\n"),
    ]


def test_oauthbearer_sends_the_exact_gs2_payload(oauth_server):
    server = oauth_server(sasl=["OAUTHBEARER"])
    with client_for(server) as client:
        client.login_oauth(USER, TOKEN, mechanism="OAUTHBEARER")
        client.quit()
    payload = f"n,a=alice,\x01host=127.0.0.1\x01port={server.port}\x01auth=Bearer ya29.test-token\x01\x01".encode()
    assert payload == oauthbearer_payload(USER, TOKEN, server.host, server.port)
    assert client_lines(server)[1] == b"AUTH OAUTHBEARER " + b64(payload) + b"\r\n"
    assert server.last.mechanism == "OAUTHBEARER"


def test_failed_oauthbearer_is_an_auth_error_after_the_dummy_continuation(oauth_server):
    server = oauth_server(sasl=["OAUTHBEARER"])
    with client_for(server) as client, pytest.raises(Pop3AuthError):
        client.login_oauth(USER, "expired-token", mechanism="OAUTHBEARER")
    server.wait_idle()
    transcript = server.last.transcript
    assert transcript[-3:] == [
        ("S", b"+ " + b64(json.dumps(OAUTHBEARER_ERROR).encode()) + b"\r\n"),
        ("C", b"AQ==\r\n"),
        ("S", b"-ERR [AUTH] Invalid credentials\r\n"),
    ]
