"""outgoing/smtp.py and webpop/lib/netguard.py against a real SMTP server (aiosmtpd): TLS, AUTH, error classes."""

from __future__ import annotations

import socket

import pytest

from outgoing.smtp import (
    Credentials,
    SmtpAddressError,
    SmtpAuthError,
    SmtpClient,
    SmtpPermanentError,
    SmtpTemporaryError,
    SmtpTLSError,
)
from webpop.lib import netguard

MESSAGE = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n.a line starting with a dot\r\nend\r\n"


def client(server, security="starttls", *, ca=True, allow_private=True, port=None) -> SmtpClient:
    if port is None:
        port = server.ssl_port if security == "ssl" else server.starttls_port
    return SmtpClient(
        "localhost",
        port,
        security,
        ca_file=str(server.ca_file) if ca else None,
        allow_private=allow_private,
        timeout=10,
    )


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_sends_over_verified_tls_with_plain_login_and_server_gets_exact_bytes(smtp_server, security):
    smtp_server.add_user("alice", "pässwörd")  # UTF-8 password: smtplib's own AUTH would refuse it
    with client(smtp_server, security) as c:
        assert c.encrypted
        assert c.login(Credentials("alice", "pässwörd")) == "PLAIN"
        result = c.send("a@example.org", ["b@example.net", "c@example.net"], MESSAGE)
    assert result.refused == {}
    [got] = smtp_server.received
    assert got.data == MESSAGE  # dot-stuffing undone by the server: the same bytes arrive
    assert got.mail_from == "a@example.org"
    assert got.rcpt_tos == ["b@example.net", "c@example.net"]
    assert (got.login, got.mechanism, got.tls) == ("alice", "PLAIN", True)


def test_xoauth2_login_with_an_access_token(smtp_server):
    smtp_server.add_token("alice@example.org", "ya29.token")
    with client(smtp_server) as c:
        assert c.login(Credentials("alice@example.org", oauth_token="ya29.token")) == "XOAUTH2"
        c.send("alice@example.org", ["b@example.net"], MESSAGE)
    assert smtp_server.received[0].login == "alice@example.org"
    assert smtp_server.received[0].mechanism == "XOAUTH2"


def test_xoauth2_with_a_wrong_token_is_an_auth_error(smtp_server):
    smtp_server.add_token("alice@example.org", "right")
    with pytest.raises(SmtpAuthError, match="535"), client(smtp_server) as c:
        c.login(Credentials("alice@example.org", oauth_token="wrong"))


def test_wrong_password_is_a_permanent_auth_error_with_the_server_answer(smtp_server):
    smtp_server.add_user("alice", "right")
    with pytest.raises(SmtpAuthError) as caught, client(smtp_server) as c:
        c.login(Credentials("alice", "wrong"))
    assert caught.value.code == 535
    assert not caught.value.temporary
    assert "535" in caught.value.response


def test_untrusted_certificate_is_refused(smtp_server):
    with pytest.raises(SmtpTLSError, match="could not be verified"):
        client(smtp_server, "starttls", ca=False).connect()
    with pytest.raises(SmtpTLSError, match="could not be verified"):
        client(smtp_server, "ssl", ca=False).connect()
    assert smtp_server.received == []


def test_starttls_is_required_when_chosen_never_downgraded(smtp_server):
    with pytest.raises(SmtpTLSError, match="does not offer STARTTLS"):
        client(smtp_server, "starttls", port=smtp_server.plain_port).connect()


def test_unencrypted_session_is_possible_only_when_chosen_and_offers_no_login(smtp_server):
    smtp_server.add_user("alice", "secret")
    with client(smtp_server, "none") as c:
        assert not c.encrypted
        # The server only offers AUTH after STARTTLS: the password is never sent in the clear here.
        with pytest.raises(SmtpAuthError, match="does not offer authentication"):
            c.login(Credentials("alice", "secret"))


def test_private_addresses_are_refused_unless_allowed(smtp_server):
    with pytest.raises(SmtpAddressError, match="private, loopback"):
        client(smtp_server, allow_private=False).connect()


def test_temporary_rcpt_failure_is_temporary_with_the_server_answer(smtp_server):
    smtp_server.add_user("alice", "pw")
    smtp_server.fail("rcpt", 451, "4.3.0 Mailbox busy, try later")
    with pytest.raises(SmtpTemporaryError) as caught, client(smtp_server) as c:
        c.login(Credentials("alice", "pw"))
        c.send("a@example.org", ["b@example.net"], MESSAGE)
    assert caught.value.code == 451
    assert "451 4.3.0 Mailbox busy, try later" in str(caught.value)
    assert smtp_server.received == []


def test_permanent_data_failure_is_permanent(smtp_server):
    smtp_server.add_user("alice", "pw")
    smtp_server.fail("data", 554, "5.7.1 Message rejected as spam")
    with pytest.raises(SmtpPermanentError) as caught, client(smtp_server) as c:
        c.login(Credentials("alice", "pw"))
        c.send("a@example.org", ["b@example.net"], MESSAGE)
    assert caught.value.code == 554
    assert not caught.value.temporary
    assert "5.7.1 Message rejected as spam" in caught.value.response


def test_one_refused_recipient_of_several_is_reported_and_the_rest_delivered(smtp_server):
    smtp_server.add_user("alice", "pw")
    smtp_server.refuse_recipient("nobody@example.net", 550, "5.1.1 No such user")
    with client(smtp_server) as c:
        c.login(Credentials("alice", "pw"))
        result = c.send("a@example.org", ["b@example.net", "nobody@example.net"], MESSAGE)
    assert result.refused == {"nobody@example.net": (550, "550 5.1.1 No such user")}
    assert smtp_server.received[0].rcpt_tos == ["b@example.net"]


def test_connection_refused_is_temporary():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening
        with pytest.raises(SmtpTemporaryError, match="refused"):
            SmtpClient("127.0.0.1", port, "ssl", allow_private=True, timeout=3).connect()


def test_netguard_refuses_loopback_and_private_and_connects_when_allowed(smtp_server):
    for host in ("127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]".strip("[]")):
        with pytest.raises(netguard.AddressNotAllowed):
            netguard.create_connection(host, smtp_server.starttls_port, timeout=3, allow_private=False)
    sock = netguard.create_connection("127.0.0.1", smtp_server.starttls_port, timeout=3, allow_private=True)
    try:
        assert sock.recv(3) == b"220"
    finally:
        sock.close()
    with pytest.raises(netguard.UnresolvableHost):
        netguard.create_connection("no-such-host.invalid", 25, timeout=3, allow_private=True)
    assert issubclass(netguard.AddressNotAllowed, OSError) and issubclass(netguard.UnresolvableHost, OSError)


def test_login_mechanism_is_used_when_plain_is_not_offered(smtp_server):
    smtp_server.add_user("alice", "pässwörd")
    with client(smtp_server) as c:
        c._smtp.esmtp_features["auth"] = "LOGIN CRAM-MD5"  # as a server offering only these would say
        assert c.login(Credentials("alice", "pässwörd")) == "LOGIN"
        c.send("a@example.org", ["b@example.net"], MESSAGE)
    assert smtp_server.received[0].mechanism == "LOGIN"
    with client(smtp_server) as c:
        c._smtp.esmtp_features["auth"] = "CRAM-MD5 GSSAPI"
        with pytest.raises(SmtpAuthError, match="offers no login method webpop supports"):
            c.login(Credentials("alice", "pässwörd"))


# --- Ending the session politely ------------------------------------------------------------
# A client that hangs up after a refusal leaves "lost connection after RSET" in the server's log,
# and some servers count that against the sender. Every session that still works ends with QUIT.

LOGGED_IN = ["EHLO", "STARTTLS", "EHLO", "AUTH"]


@pytest.mark.parametrize(
    "stage,code,error,commands",
    [
        ("mail", 550, SmtpPermanentError, ["MAIL", "RSET", "QUIT"]),
        ("mail", 451, SmtpTemporaryError, ["MAIL", "RSET", "QUIT"]),
        ("rcpt", 550, SmtpPermanentError, ["MAIL", "RCPT", "RSET", "QUIT"]),
        ("rcpt", 450, SmtpTemporaryError, ["MAIL", "RCPT", "RSET", "QUIT"]),
        # smtplib resets nothing after a refused DATA command: no transaction is left open.
        ("data_command", 554, SmtpPermanentError, ["MAIL", "RCPT", "DATA", "QUIT"]),
        ("data_command", 451, SmtpTemporaryError, ["MAIL", "RCPT", "DATA", "QUIT"]),
        ("data", 554, SmtpPermanentError, ["MAIL", "RCPT", "DATA", "RSET", "QUIT"]),
        ("data", 452, SmtpTemporaryError, ["MAIL", "RCPT", "DATA", "RSET", "QUIT"]),
    ],
)
def test_a_refused_transaction_is_reset_and_the_session_ended_with_quit(smtp_server, stage, code, error, commands):
    smtp_server.add_user("alice", "pw")
    smtp_server.fail(stage, code, "refused here")
    with pytest.raises(error) as caught, client(smtp_server) as c:
        c.login(Credentials("alice", "pw"))
        c.send("a@example.org", ["b@example.net"], MESSAGE)
    assert caught.value.code == code
    assert smtp_server.sessions == [LOGGED_IN + commands]
    assert smtp_server.received == []


def test_a_refused_login_ends_the_session_with_quit(smtp_server):
    smtp_server.add_user("alice", "right")
    with pytest.raises(SmtpAuthError), client(smtp_server) as c:
        c.login(Credentials("alice", "wrong"))
    assert smtp_server.sessions == [[*LOGGED_IN, "QUIT"]]


def test_an_error_of_the_caller_inside_the_session_still_ends_it_with_quit(smtp_server):
    smtp_server.add_user("alice", "pw")
    with pytest.raises(LookupError), client(smtp_server) as c:
        c.login(Credentials("alice", "pw"))
        raise LookupError("e.g. the message could not be read")
    assert smtp_server.sessions == [[*LOGGED_IN, "QUIT"]]


def test_a_server_without_starttls_is_left_with_quit(smtp_server):
    with pytest.raises(SmtpTLSError):
        client(smtp_server, "starttls", port=smtp_server.plain_port).connect()
    assert smtp_server.sessions == [["EHLO", "QUIT"]]


def test_sent_and_partly_refused_sessions_end_with_quit(smtp_server):
    smtp_server.add_user("alice", "pw")
    smtp_server.refuse_recipient("nobody@example.net", 550, "5.1.1 No such user")
    with client(smtp_server) as c:
        c.login(Credentials("alice", "pw"))
        c.send("a@example.org", ["b@example.net", "nobody@example.net"], MESSAGE)
    assert smtp_server.sessions == [[*LOGGED_IN, "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]]
