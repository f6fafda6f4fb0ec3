"""Our POP3 client against a real Dovecot: TLS, verification, every login method, RETR."""

from __future__ import annotations

import hashlib
import io
import socket
import ssl

import pytest

from mailbox.pop3 import (
    Pop3AuthError,
    Pop3Client,
    Pop3ConnectError,
    Pop3InsecureError,
    Pop3PrivateAddressError,
    Pop3TLSError,
)
from tests.dovecot import DovecotServer
from tests.factories import build_message
from tests.pop3_drivers import pop3_driver  # noqa: F401 (every test runs with each driver)
from webpop.lib.tls import ResumingContext, make_tls_context

pytestmark = pytest.mark.dovecot

MECHANISMS = ["USER", "APOP", "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"]


@pytest.fixture(scope="module")
def other_servers(tmp_path_factory):
    servers = {
        kind: DovecotServer(tmp_path_factory.mktemp(f"dovecot-{kind}"), cert=kind)
        for kind in ("untrusted", "wrong-host")
    }
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


def client(dovecot, security="ssl", host="localhost", **kwargs) -> Pop3Client:
    port = dovecot.pop3s_port if security == "ssl" else dovecot.pop3_port
    kwargs.setdefault("ca_file", str(dovecot.ca_file))
    return Pop3Client(host, port, security, timeout=10, allow_private=True, **kwargs)


def deliver(pop_user, count: int) -> list[bytes]:
    messages = [
        build_message(f"n{i}", f"line\r\n.dot line {i}\r\n..two dots\r\n", message_id=f"<p{i}@x>") for i in range(count)
    ]
    for raw in messages:
        pop_user.deliver(raw)
    return messages


def test_implicit_tls_verifies_and_reads_capabilities(dovecot, pop_user):
    with client(dovecot) as pop:
        assert pop.encrypted
        caps = pop.capabilities
        assert caps.uidl and caps.top and caps.pipelining and caps.resp_codes and caps.auth_resp_code
        assert not caps.stls  # already on TLS
        assert {"PLAIN", "SCRAM-SHA-256"} <= set(caps.sasl)
        assert pop.apop_timestamp and pop.apop_timestamp.startswith("<")


def test_starttls_upgrades_then_requeries_capabilities(dovecot, pop_user):
    with client(dovecot, security="starttls") as pop:
        assert pop.encrypted
        assert "STLS" not in pop.capabilities  # CAPA was asked again over TLS
        pop.login(pop_user.name, pop_user.password)
        assert pop.stat() == (0, 0)


def test_clear_text_login_is_refused_unless_allowed(dovecot, pop_user):
    with client(dovecot, security="none") as pop:
        with pytest.raises(Pop3InsecureError):
            pop.login(pop_user.name, pop_user.password)
        pop.login(pop_user.name, pop_user.password, allow_plaintext=True, mechanism="USER")
        assert pop.stat() == (0, 0)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_login_method_works_against_dovecot(dovecot, pop_user, mechanism):
    deliver(pop_user, 1)
    with client(dovecot) as pop:
        assert pop.login(pop_user.name, pop_user.password, mechanism=mechanism) == mechanism
        assert pop.stat()[0] == 1
        pop.quit()


@pytest.mark.parametrize("mechanism", ["USER", "SCRAM-SHA-256", "CRAM-MD5"])
def test_wrong_password_is_an_auth_error(dovecot, pop_user, mechanism):
    with client(dovecot) as pop, pytest.raises(Pop3AuthError):
        pop.login(pop_user.name, "not-the-password", mechanism=mechanism)


def test_strongest_offered_mechanism_is_chosen(dovecot, pop_user):
    with client(dovecot) as pop:
        assert pop.login(pop_user.name, pop_user.password) == "SCRAM-SHA-256"


def test_unknown_ca_is_refused(other_servers):
    server = other_servers["untrusted"]
    with pytest.raises(Pop3TLSError, match="could not be verified"):
        client(server).connect()


def test_wrong_host_name_is_refused(other_servers):
    server = other_servers["wrong-host"]
    with pytest.raises(Pop3TLSError, match="could not be verified"):
        client(server).connect()


def test_starttls_verification_failure_is_refused(other_servers):
    with pytest.raises(Pop3TLSError):
        client(other_servers["untrusted"], security="starttls").connect()


def peer_fingerprint(server: DovecotServer) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", server.pop3s_port)) as raw, context.wrap_socket(raw) as tls:
        return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def test_pinned_fingerprint_accepts_a_self_signed_server(other_servers):
    server = other_servers["untrusted"]
    pin = ":".join(f"{b:02X}" for b in bytes.fromhex(peer_fingerprint(server)))
    with client(server, ca_file=None, fingerprint_sha256=pin) as pop:
        assert pop.encrypted


def test_pinned_fingerprint_mismatch_is_refused(other_servers):
    with pytest.raises(Pop3TLSError, match="pinned fingerprint"):
        client(other_servers["untrusted"], fingerprint_sha256="00" * 32).connect()


# Dovecot's login processes each make their own session-ticket key, and by default each connection
# gets a new process: resumption needs its high-performance mode, here with one login process (a
# provider with many front ends shares the key between them).
ONE_LOGIN_PROCESS = """
service pop3-login {
  service_count = 0
  process_min_avail = 1
}
"""


@pytest.fixture(scope="module")
def resuming(tmp_path_factory):
    server = DovecotServer(tmp_path_factory.mktemp("dovecot-resuming"), extra_config=ONE_LOGIN_PROCESS)
    server.start()
    server.add_user("resumer", "pw-resumer")
    yield server
    server.close()


def resuming_context(ca_file=None) -> ResumingContext:
    """A context of the test's own, so no other test's session is offered."""
    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=str(ca_file))
    return context


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_the_next_session_resumes_the_tls_session_and_sees_the_same_certificate(resuming, security):
    context = resuming_context(resuming.ca_file)
    with client(resuming, security, tls_context=context) as pop:
        assert not pop.tls_resumed
        pop.login("resumer", "pw-resumer")
        first = pop.peer_fingerprint
        pop.quit()
    for _ in range(2):
        with client(resuming, security, tls_context=context) as pop:
            assert pop.tls_resumed
            assert pop.peer_fingerprint == first == peer_fingerprint(resuming)
            pop.login("resumer", "pw-resumer")
            assert pop.stat() == (0, 0)
            pop.quit()


def test_the_clients_own_context_resumes(resuming):
    make_tls_context(str(resuming.ca_file), pinned=False, resume=True).forget("localhost")
    for expected in (False, True):
        with client(resuming) as pop:
            assert pop.tls_resumed is expected


def test_a_resumed_session_is_still_held_to_the_pinned_fingerprint(resuming):
    context = resuming_context()
    right = peer_fingerprint(resuming)
    with client(resuming, ca_file=None, tls_context=context, fingerprint_sha256=right) as pop:
        assert not pop.tls_resumed
    with client(resuming, ca_file=None, tls_context=context, fingerprint_sha256=right) as pop:
        assert pop.tls_resumed and pop.peer_fingerprint == right
    with pytest.raises(Pop3TLSError, match="pinned fingerprint"):
        client(resuming, ca_file=None, tls_context=context, fingerprint_sha256="00" * 32).connect()


def test_a_session_is_offered_only_to_its_host_name_and_another_server_does_a_full_handshake(resuming, other_servers):
    context = resuming_context()
    pin = peer_fingerprint(resuming)
    with client(resuming, ca_file=None, tls_context=context, fingerprint_sha256=pin):
        pass
    with client(resuming, host="127.0.0.1", ca_file=None, tls_context=context, fingerprint_sha256=pin) as pop:
        assert not pop.tls_resumed  # another name: no session offered
    # Another server under the same name is offered the session and cannot take it: a full
    # handshake, with its own certificate checked.
    untrusted = other_servers["untrusted"]
    with client(untrusted, ca_file=None, tls_context=context, fingerprint_sha256=peer_fingerprint(untrusted)) as pop:
        assert not pop.tls_resumed
    verified = resuming_context(resuming.ca_file)
    with client(resuming, tls_context=verified):
        pass
    with pytest.raises(Pop3TLSError, match="could not be verified"):
        client(untrusted, tls_context=verified).connect()


def test_a_failed_handshake_forgets_the_hosts_session(resuming, other_servers):
    context = resuming_context(resuming.ca_file)
    with client(resuming, tls_context=context):
        pass
    assert context.session_for("localhost") is not None
    with pytest.raises(Pop3TLSError, match="could not be verified"):
        client(other_servers["untrusted"], tls_context=context).connect()
    assert context.session_for("localhost") is None


def test_loopback_is_refused_without_the_override(dovecot):
    pop = Pop3Client("localhost", dovecot.pop3s_port, "ssl", ca_file=str(dovecot.ca_file))
    with pytest.raises(Pop3PrivateAddressError):
        pop.connect()


def test_refused_port_is_a_connect_error(dovecot):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Pop3ConnectError) as info:
        Pop3Client("127.0.0.1", port, "ssl", allow_private=True).connect()
    assert info.value.error_class == "refused"


def test_pipelined_and_lockstep_retr_give_identical_bytes(dovecot, pop_user):
    delivered = deliver(pop_user, 60)
    big = build_message("big", "x" * 100, attachments=[("a.bin", "application/octet-stream", bytes(range(256)) * 1200)])
    pop_user.deliver(big)
    delivered.append(big)

    with client(dovecot) as pop:
        pop.login(pop_user.name, pop_user.password)
        numbers = [n for n, _ in pop.uidl()]
        lockstep = {}
        for n in numbers:
            out = io.BytesIO()
            result = pop.retr_to(n, out)
            assert (result.size, result.sha256) == (len(out.getvalue()), hashlib.sha256(out.getvalue()).hexdigest())
            lockstep[n] = out.getvalue()
        outs: dict[int, io.BytesIO] = {}
        pipelined = {}
        for n, result in pop.retr_many(numbers, lambda n: outs.setdefault(n, io.BytesIO())):
            pipelined[n] = outs[n].getvalue()
            assert result.sha256 == hashlib.sha256(pipelined[n]).hexdigest()
        pop.quit()
    assert pipelined == lockstep
    assert [lockstep[n] for n in numbers] == delivered


def test_top_many_returns_headers_only(dovecot, pop_user):
    delivered = deliver(pop_user, 3)
    with client(dovecot) as pop:
        pop.login(pop_user.name, pop_user.password)
        outs: dict[int, io.BytesIO] = {}
        results = list(pop.top_many([1, 2, 3], 0, lambda n: outs.setdefault(n, io.BytesIO())))
        assert [n for n, _ in results] == [1, 2, 3]
        for n, raw in enumerate(delivered, start=1):
            assert outs[n].getvalue() == raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        assert pop.top(1, 0) == outs[1].getvalue()


def test_dele_many_then_quit_removes_them_and_no_quit_rolls_back(dovecot, pop_user):
    deliver(pop_user, 5)
    with client(dovecot) as pop:
        pop.login(pop_user.name, pop_user.password)
        assert pop.dele_many([1, 2]) == [None, None]
        # Leaving without QUIT: Dovecot must roll back.
    assert len(pop_user.messages()) == 5
    with client(dovecot) as pop:
        pop.login(pop_user.name, pop_user.password)
        results = pop.dele_many([1, 2, 99])
        assert results[:2] == [None, None] and results[2] is not None
        pop.quit()
    assert len(pop_user.messages()) == 3
