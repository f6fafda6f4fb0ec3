"""Sanity checks of the fault-injecting POP3 server itself (raw sockets and poplib)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import poplib
import socket
import time

import pytest

from tests.fault_server import Faults, FaultServer, ServerFactory, make_message, tls_materials, xoauth2_payload


@pytest.fixture(autouse=True)
def _close_raw_connections():
    yield
    while Raw.opened:
        Raw.opened.pop().close()


DOTS = b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n"


@pytest.fixture
def serve():
    with ServerFactory() as factory:
        yield factory
        for server in factory.servers:
            assert server.errors == [], "the fault server itself failed"


class Raw:
    """A byte-exact POP3 conversation over a plain socket."""

    opened: list[Raw] = []

    def __init__(self, server: FaultServer):
        Raw.opened.append(self)
        self.sock = socket.create_connection((server.host, server.port), timeout=5)
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self) -> bytes:
        return self.file.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str) -> bytes:
        self.send(line.encode() + b"\r\n")
        return self.line()

    def body(self) -> bytes:
        """Everything up to and including the terminator line, as sent."""
        data = b""
        while True:
            line = self.line()
            assert line, "connection closed inside a multi-line answer"
            data += line
            if line in (b".\r\n", b".\n"):
                return data

    def login(self, user: str = "alice", password: str = "secret") -> None:
        assert self.cmd(f"USER {user}").startswith(b"+OK")
        assert self.cmd(f"PASS {password}").startswith(b"+OK")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_greeting_and_capabilities_of_a_healthy_server(serve):
    server = serve([make_message(1)], sasl=["PLAIN"], expire="0", login_delay=900, utf8=True)
    raw = Raw(server)
    assert raw.greeting == b"+OK FaultServer ready\r\n"
    assert raw.cmd("CAPA") == b"+OK Capability list follows\r\n"
    assert raw.body() == (
        b"TOP\r\nUIDL\r\nUSER\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nSASL PLAIN\r\n"
        b"EXPIRE 0\r\nLOGIN-DELAY 900\r\nUTF8\r\nIMPLEMENTATION FaultServer\r\n.\r\n"
    )
    raw.close()


def test_retr_dot_stuffs_lines_that_start_with_a_dot(serve):
    server = serve([DOTS])
    raw = Raw(server)
    raw.login()
    assert raw.cmd("RETR 1") == f"+OK {len(DOTS)} octets\r\n".encode()
    assert raw.body() == b"Subject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend\r\n.\r\n"
    raw.close()


def test_poplib_reads_back_the_original_lines(serve):
    server = serve([DOTS, make_message(2)])
    pop = poplib.POP3(server.host, server.port, timeout=5)
    pop.user("alice")
    pop.pass_("secret")
    assert pop.retr(1)[1] == [b"Subject: dots", b"", b".", b"..", b".hidden", b"end"]
    assert pop.uidl()[1] == [b"1 uid-00001", b"2 uid-00002"]
    pop.quit()


def test_bare_lf_and_bad_stuffing_change_only_the_wire(serve):
    server = serve([b"Subject: d\r\n\r\n..x\r\n.hidden\r\nend\r\n"], bare_lf=True, bad_stuffing=True)
    raw = Raw(server)
    raw.login()
    raw.cmd("RETR 1")
    assert raw.body() == b"Subject: d\n\n..x\n.hidden\nend\n.\n"
    raw.close()


def test_message_without_final_line_break_gets_one_before_the_terminator(serve):
    server = serve([b"Subject: x\r\n\r\nno newline"])
    raw = Raw(server)
    raw.login()
    raw.cmd("RETR 1")
    assert raw.body() == b"Subject: x\r\n\r\nno newline\r\n.\r\n"
    raw.close()


def test_top_sends_headers_blank_line_and_first_body_lines(serve):
    server = serve([b"A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n"])
    raw = Raw(server)
    raw.login()
    assert raw.cmd("TOP 1 2").startswith(b"+OK")
    assert raw.body() == b"A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"
    raw.close()


def test_dele_then_quit_commits(serve):
    server = serve([make_message(i) for i in range(1, 4)])
    raw = Raw(server)
    raw.login()
    assert raw.cmd("DELE 2") == b"+OK Message 2 deleted\r\n"
    assert raw.cmd("RETR 2") == b"-ERR Message already deleted\r\n"
    assert raw.cmd("STAT") == f"+OK 2 {len(make_message(1)) + len(make_message(3))}\r\n".encode()
    assert server.messages_left() == 3  # not before QUIT
    assert raw.cmd("QUIT").startswith(b"+OK")
    assert raw.line() == b""  # the server closed
    assert server.messages_left() == 2
    assert server.remaining_uidls() == ["uid-00001", "uid-00003"]
    assert server.last.committed and not server.last.rolled_back


def test_rset_unmarks(serve):
    server = serve([make_message(1)])
    raw = Raw(server)
    raw.login()
    raw.cmd("DELE 1")
    assert raw.cmd("RSET").startswith(b"+OK")
    raw.cmd("QUIT")
    assert server.messages_left() == 1


def test_a_connection_closed_without_quit_rolls_back(serve):
    server = serve([make_message(1), make_message(2)])
    raw = Raw(server)
    raw.login()
    raw.cmd("DELE 1")
    raw.close()
    server.wait_idle()
    assert server.messages_left() == 2
    assert server.last.rolled_back


def test_message_numbers_stay_those_of_the_session_start(serve):
    server = serve([make_message(i) for i in range(1, 4)])
    first = Raw(server)
    first.login()
    first.cmd("DELE 1")
    first.cmd("QUIT")
    second = Raw(server)
    second.login()
    assert second.cmd("UIDL 1") == b"+OK 1 uid-00002\r\n"
    second.close()


def test_several_commands_in_one_write_are_all_answered_in_order(serve):
    server = serve([make_message(1)])
    raw = Raw(server)
    raw.login()
    raw.send(b"NOOP\r\nSTAT\r\nUIDL 1\r\nLIST 1\r\n")
    assert [raw.line() for _ in range(4)] == [
        b"+OK\r\n",
        f"+OK 1 {len(make_message(1))}\r\n".encode(),
        b"+OK 1 uid-00001\r\n",
        f"+OK 1 {len(make_message(1))}\r\n".encode(),
    ]
    raw.close()
    server.wait_idle()
    assert server.last.max_in_flight == 4


def test_lock_step_client_has_one_command_in_flight(serve):
    server = serve([make_message(1)])
    raw = Raw(server)
    raw.login()
    raw.cmd("STAT")
    raw.cmd("NOOP")
    raw.close()
    server.wait_idle()
    assert server.last.max_in_flight == 1


def test_list_size_delta_and_duplicate_uidls(serve):
    server = serve([make_message(1), make_message(2)], list_size_delta=-3, duplicate_uidls=True)
    raw = Raw(server)
    raw.login()
    raw.cmd("LIST")
    assert raw.body() == f"1 {len(make_message(1)) - 3}\r\n2 {len(make_message(2)) - 3}\r\n.\r\n".encode()
    raw.cmd("UIDL")
    assert raw.body() == b"1 uid-00001\r\n2 uid-00001\r\n.\r\n"
    raw.close()


def test_drop_during_retr_sends_exactly_the_given_bytes_then_closes(serve):
    server = serve([make_message(1), make_message(2)], drop_during_retr=(2, 10))
    raw = Raw(server)
    raw.login()
    raw.cmd("DELE 1")
    assert raw.cmd("RETR 2").startswith(b"+OK")
    assert raw.file.read() == make_message(2)[:10]
    server.wait_idle()
    assert server.last.dropped and server.last.rolled_back
    assert server.messages_left() == 2


def test_drop_after_quit_closes_without_answer_or_commit(serve):
    server = serve([make_message(1)], drop_after_command="QUIT")
    raw = Raw(server)
    raw.login()
    raw.cmd("DELE 1")
    assert raw.cmd("QUIT") == b""
    server.wait_idle()
    assert server.messages_left() == 1


def test_sys_temp_after_n_commands(serve):
    server = serve([make_message(1)], sys_temp_after=1)
    raw = Raw(server)
    raw.login()
    assert raw.cmd("CAPA").startswith(b"+OK")  # not counted
    raw.body()
    assert raw.cmd("STAT").startswith(b"+OK")
    assert raw.cmd("NOOP") == b"-ERR [SYS/TEMP] try later\r\n"
    assert raw.cmd("CAPA") == b"-ERR [SYS/TEMP] try later\r\n"
    raw.close()


@pytest.mark.parametrize(
    ("faults", "reply"),
    [
        ({"in_use": True}, b"-ERR [IN-USE] Mailbox locked\r\n"),
        ({"login_error": "[LOGIN-DELAY] wait"}, b"-ERR [LOGIN-DELAY] wait\r\n"),
    ],
)
def test_login_error_answers_pass(serve, faults, reply):
    server = serve([], **faults)
    raw = Raw(server)
    raw.cmd("USER alice")
    assert raw.cmd("PASS secret") == reply
    raw.close()


def test_wrong_password_with_and_without_resp_codes(serve):
    raw = Raw(serve([]))
    raw.cmd("USER alice")
    assert raw.cmd("PASS nope") == b"-ERR [AUTH] Authentication failed\r\n"
    raw.close()
    raw = Raw(serve([], resp_codes=False))
    raw.cmd("USER alice")
    assert raw.cmd("PASS nope") == b"-ERR Authentication failed\r\n"
    raw.close()


def test_apop_with_poplib(serve):
    server = serve([make_message(1)], apop_timestamp=True)
    pop = poplib.POP3(server.host, server.port, timeout=5)
    assert server.apop_timestamp is not None
    assert pop.getwelcome().endswith(server.apop_timestamp.encode())
    pop.apop("alice", "secret")
    assert pop.stat()[0] == 1
    pop.quit()
    assert server.last.mechanism == "APOP"


def test_apop_offered_but_only_for_users_with_an_apop_secret(serve):
    server = serve([], {"alice": "secret", "bob": "pw"}, apop_only_for=["bob"])
    raw = Raw(server)
    assert server.apop_timestamp and raw.greeting.endswith(server.apop_timestamp.encode() + b"\r\n")
    digest = hashlib.md5((server.apop_timestamp + "secret").encode()).hexdigest()
    assert raw.cmd(f"APOP alice {digest}") == b"-ERR [AUTH] Authentication failed\r\n"  # right password
    raw.login()  # USER/PASS still works in the same session ("continue")
    raw.close()
    raw = Raw(server)
    digest = hashlib.md5((server.apop_timestamp + "pw").encode()).hexdigest()
    assert raw.cmd(f"APOP bob {digest}").startswith(b"+OK")
    raw.close()
    server.wait_idle()
    assert [s.login_attempts for s in server.session_log] == [2, 1] and server.login_attempts == 3
    assert [s.mechanism for s in server.session_log] == ["USER", "APOP"]


def test_after_a_refused_login_the_server_can_close_or_refuse_further_logins(serve):
    closing = serve([], apop_only_for=[], after_auth_failure="close")
    raw = Raw(closing)
    assert raw.cmd("APOP alice 0123").startswith(b"-ERR [AUTH]")
    assert raw.line() == b""  # closed
    raw.close()
    refusing = serve([], apop_only_for=[], after_auth_failure="refuse")
    raw = Raw(refusing)
    assert raw.cmd("APOP alice 0123").startswith(b"-ERR [AUTH]")
    assert raw.cmd("USER alice").startswith(b"-ERR [AUTH] Too many")
    assert raw.cmd("PASS secret").startswith(b"-ERR [AUTH] Too many")
    raw.close()
    refusing.wait_idle()
    assert refusing.last.user is None and refusing.login_attempts == 2


def test_sasl_mechanisms_listed_but_refused_or_failing(serve):
    server = serve([], sasl=["PLAIN"], sasl_refused=["SCRAM-SHA-256"], sasl_failing=["cram-md5"])
    raw = Raw(server)
    raw.cmd("CAPA")
    assert b"SASL PLAIN SCRAM-SHA-256 CRAM-MD5\r\n" in raw.body()
    assert raw.cmd("AUTH SCRAM-SHA-256 " + base64.b64encode(b"n,,n=alice,r=abc").decode()) == (
        b"-ERR [AUTH] Authentication failed\r\n"
    )
    assert raw.cmd("AUTH CRAM-MD5") == b"+ \r\n"  # the exchange starts...
    assert raw.cmd(base64.b64encode(b"alice 0123").decode()) == b"-ERR [AUTH] Authentication failed\r\n"
    assert raw.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0secret").decode()).startswith(b"+OK")
    raw.close()
    server.wait_idle()
    assert server.last.login_attempts == 3 and server.last.mechanism == "PLAIN"
    with pytest.raises(ValueError):
        Faults(sasl=["PLAIN"], sasl_refused=["PLAIN"])


def test_cram_md5_exchange(serve):
    server = serve([], sasl=["CRAM-MD5"])
    raw = Raw(server)
    line = raw.cmd("AUTH CRAM-MD5")
    assert line.startswith(b"+ ")
    challenge = base64.b64decode(line[2:])
    digest = hmac.new(b"secret", challenge, hashlib.md5).hexdigest()
    assert raw.cmd(base64.b64encode(f"alice {digest}".encode()).decode()).startswith(b"+OK")
    raw.close()
    server.wait_idle()
    assert server.last.mechanism == "CRAM-MD5"


def test_xoauth2_two_step_and_failure_transcript(serve):
    server = serve([], sasl=["XOAUTH2"], tokens={"alice": "tok"})
    raw = Raw(server)
    assert raw.cmd("AUTH XOAUTH2") == b"+ \r\n"
    assert raw.cmd(base64.b64encode(xoauth2_payload("alice", "bad")).decode()).startswith(b"+ ")
    assert raw.cmd("") == b"-ERR [AUTH] Invalid credentials\r\n"
    assert raw.cmd("AUTH XOAUTH2 " + base64.b64encode(xoauth2_payload("alice", "tok")).decode()).startswith(b"+OK")
    raw.close()
    server.wait_idle()
    assert server.last.sasl_responses[-1] == b"user=alice\x01auth=Bearer tok\x01\x01"
    assert [d for d, _ in server.last.transcript] == ["S", "C", "S", "C", "S", "C", "S", "C", "S"]


def test_auth_is_cancelled_by_a_star(serve):
    server = serve([], sasl=["LOGIN"])
    raw = Raw(server)
    assert raw.cmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6\r\n"
    assert raw.cmd("*") == b"-ERR Authentication cancelled\r\n"
    raw.close()


def test_transaction_commands_need_a_login(serve):
    raw = Raw(serve([make_message(1)]))
    assert raw.cmd("STAT") == b"-ERR Command not valid in this state\r\n"
    raw.close()


def test_overlong_status_reply(serve):
    raw = Raw(serve([], overlong_reply="NOOP"))
    raw.login()
    assert len(raw.cmd("NOOP")) > 64 * 1024
    raw.close()


def test_implicit_tls_with_poplib(serve):
    tls = tls_materials()
    server = serve([make_message(1)], ssl_context=tls.server_context)
    pop = poplib.POP3_SSL(server.host, server.port, context=tls.client_context(), timeout=5)
    pop.user("alice")
    pop.pass_("secret")
    assert pop.stat()[0] == 1
    pop.quit()


def test_stop_is_quick_even_with_a_stalled_session():
    server = FaultServer([], faults=Faults(stall_greeting=float("inf"))).start()
    sock = socket.create_connection((server.host, server.port), timeout=5)
    deadline = time.monotonic() + 2
    while server.sessions == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    sock.settimeout(2)
    assert sock.recv(100) == b""
    sock.close()
    assert server.errors == []


def test_unknown_fault_names_are_rejected():
    with pytest.raises(TypeError, match="unknown faults"):
        FaultServer([], no_such_fault=True)
