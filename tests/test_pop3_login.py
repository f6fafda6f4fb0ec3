"""Choosing the login method: ranking, fallback when an offered method is refused, remembering what worked.

Servers that put an APOP timestamp in every greeting but accept APOP only from
users given an APOP secret, or list SCRAM/CRAM-MD5 for users whose password
they store hashed, answer such a login like a wrong password. Against our fault
server (which counts login commands) and a real Dovecot.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import MailAccount
from mailbox import sync
from mailbox.models import Message
from mailbox.pop3 import Pop3AuthError, Pop3Client
from tests.dovecot import DovecotServer
from tests.fault_server import make_message, tls_materials

pytestmark = pytest.mark.django_db

NORMAL_AUTH_ERROR = "auth: The server rejected the user name or password"


def sessions_mechanisms(server) -> list[str | None]:
    """Per connection: the login commands sent (their first word, AUTH with its mechanism)."""
    tried = []
    for session in server.session_log:
        for line in session.commands:
            words = line.split()
            if words and words[0].upper() in {"APOP", "PASS"}:
                tried.append("APOP" if words[0].upper() == "APOP" else "USER")
            elif words and words[0].upper() == "AUTH":
                tried.append(words[1].upper())
    return tried


@pytest.fixture
def tls_fault_server(fault_server, settings, tmp_path):
    """Factory: a fault server on implicit TLS whose certificate webpop verifies."""
    ca = tmp_path / "fault-ca.pem"
    ca.write_text(tls_materials().ca_pem)
    settings.WEBPOP_POP3_CA_FILE = str(ca)

    def make(messages=None, users=None, **faults):
        return fault_server(messages, users, ssl_context=tls_materials().server_context, **faults)

    return make


# --- Ranking ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        ({"sasl": ["CRAM-MD5", "LOGIN", "PLAIN"], "apop_timestamp": True}, "PLAIN"),
        ({"sasl": ["CRAM-MD5", "LOGIN"], "apop_timestamp": True}, "LOGIN"),
        ({"sasl": ["CRAM-MD5"], "apop_timestamp": True}, "USER"),
        ({"sasl": ["CRAM-MD5"], "apop_timestamp": True, "no_user": True}, "CRAM-MD5"),
        ({"apop_timestamp": True, "no_user": True}, "APOP"),
    ],
)
def test_inside_tls_password_methods_rank_above_cram_md5_and_apop(tls_fault_server, settings, offer, expected):
    server = tls_fault_server([], {"alice": "secret"}, **offer)
    with Pop3Client("localhost", server.port, "ssl", ca_file=settings.WEBPOP_POP3_CA_FILE, allow_private=True) as c:
        assert c.login("alice", "secret") == expected
        c.quit()
    assert server.last.mechanism == expected and server.login_attempts == 1


def test_over_a_clear_connection_challenge_response_ranks_first(fault_server):
    server = fault_server([], {"alice": "secret"}, sasl=["PLAIN", "LOGIN", "CRAM-MD5"], apop_timestamp=True)
    with Pop3Client(server.host, server.port, "none", allow_private=True) as c:
        assert c.offered_mechanisms() == ["CRAM-MD5", "APOP", "PLAIN", "LOGIN", "USER"]


# --- Fallback in a sync --------------------------------------------------------------


@pytest.mark.parametrize("after_failure", ["continue", "close", "refuse"])
def test_refused_apop_falls_back_to_user_pass_on_a_new_connection(fault_server, fault_account, after_failure):
    server = fault_server([make_message(1), make_message(2)], apop_only_for=[], after_auth_failure=after_failure)
    account = fault_account(server)
    result = sync.sync_account(account.id)
    assert result.error is None and result.fetched == 2
    assert sessions_mechanisms(server) == ["APOP", "USER"]
    assert [s.login_attempts for s in server.session_log] == [1, 1]  # one try per connection
    account.refresh_from_db()
    assert account.working_auth_mechanism == "USER" and account.last_error == ""


def test_the_method_that_worked_is_tried_first_next_time(fault_server, fault_account):
    server = fault_server([make_message(1)], apop_only_for=[])
    account = fault_account(server)
    sync.sync_account(account.id)
    before = server.login_attempts
    result = sync.sync_account(account.id)
    assert result.error is None
    assert server.login_attempts - before == 1
    assert sessions_mechanisms(server)[-1] == "USER"


@pytest.mark.parametrize("transport", ["refused", "failing"])
def test_sasl_method_listed_but_refused_falls_back_to_plain_inside_tls(tls_fault_server, fault_account, transport):
    # SCRAM-SHA-256 first, refused; SCRAM-SHA-1 needs the same kind of secret, so PLAIN comes next.
    server = tls_fault_server(
        [make_message(1)],
        {"alice": "secret"},
        sasl=["PLAIN", "CRAM-MD5"],
        apop_timestamp=True,
        **{f"sasl_{transport}": ["SCRAM-SHA-256", "SCRAM-SHA-1"]},
    )
    account = fault_account(server, host="localhost", security="ssl")
    result = sync.sync_account(account.id)
    assert result.error is None and result.fetched == 1
    assert sessions_mechanisms(server) == ["SCRAM-SHA-256", "PLAIN"]
    account.refresh_from_db()
    assert account.working_auth_mechanism == "PLAIN"


def test_never_more_than_two_logins_per_sync(fault_server, fault_account):
    # Over a clear connection CRAM-MD5 ranks first: refused; PLAIN next: fails too. USER would have
    # worked, but a third try could trip a lockout after failed logins.
    server = fault_server([make_message(1)], sasl_refused=["CRAM-MD5"], sasl_failing=["PLAIN"], apop_only_for=[])
    account = fault_account(server)
    result = sync.sync_account(account.id)
    assert result.error_class == "auth"
    assert server.login_attempts == 2 and sessions_mechanisms(server) == ["CRAM-MD5", "PLAIN"]
    assert result.error.startswith(NORMAL_AUTH_ERROR)  # a password method was refused: the password is wrong


def test_wrong_password_is_the_normal_auth_error_after_at_most_two_tries(fault_server, fault_account):
    server = fault_server([make_message(1)], sasl=["PLAIN", "LOGIN", "CRAM-MD5"], apop_timestamp=True)
    account = fault_account(server, password="not-the-password")
    result = sync.sync_account(account.id)
    assert result.error_class == "auth"
    assert result.error.startswith(NORMAL_AUTH_ERROR)
    assert server.login_attempts == 2 and sessions_mechanisms(server) == ["CRAM-MD5", "PLAIN"]
    account.refresh_from_db()
    assert account.last_error_class == "auth" and "Check the user name and password" in account.last_error
    assert account.working_auth_mechanism == ""
    assert Message.objects.count() == 0


def test_a_remembered_method_that_stops_working_is_replaced(fault_server, fault_account):
    server = fault_server([make_message(1)], sasl=["PLAIN"], apop_only_for=[])  # APOP no longer allowed
    account = fault_account(server, working_auth_mechanism="APOP")
    result = sync.sync_account(account.id)
    assert result.error is None
    assert sessions_mechanisms(server) == ["APOP", "PLAIN"]
    account.refresh_from_db()
    assert account.working_auth_mechanism == "PLAIN"


def test_a_remembered_method_no_longer_offered_costs_no_login(fault_server, fault_account):
    server = fault_server([make_message(1)])
    account = fault_account(server, working_auth_mechanism="CRAM-MD5")
    assert sync.sync_account(account.id).error is None
    assert sessions_mechanisms(server) == ["USER"] and server.sessions == 1
    account.refresh_from_db()
    assert account.working_auth_mechanism == "USER"


def test_a_remembered_method_that_fails_with_the_fallback_is_forgotten(fault_server, fault_account):
    server = fault_server([make_message(1)], sasl=["PLAIN"], apop_timestamp=True)
    account = fault_account(server, working_auth_mechanism="PLAIN", password="changed-elsewhere")
    result = sync.sync_account(account.id)
    assert result.error.startswith(NORMAL_AUTH_ERROR)
    assert server.login_attempts == 2 and sessions_mechanisms(server) == ["PLAIN", "APOP"]
    account.refresh_from_db()
    assert account.working_auth_mechanism == ""


# --- Wording, and a method the user chose ------------------------------------------------


def test_apop_refused_when_nothing_else_is_offered_says_so(fault_server, fault_account):
    server = fault_server([make_message(1)], apop_only_for=[], no_user=True)
    account = fault_account(server)
    result = sync.sync_account(account.id)
    assert result.error_class == "auth"
    assert result.error.startswith("auth: The server refused APOP for this user")
    assert server.login_attempts == 1
    account.refresh_from_db()
    assert account.last_error_class == "auth"
    assert "ask the provider to allow this login method" in account.last_error
    assert "Check the user name and password" not in account.last_error


def test_a_chosen_method_is_not_replaced_by_another(fault_server, fault_account):
    server = fault_server([make_message(1)], sasl=["PLAIN"], apop_only_for=[])
    account = fault_account(server, auth_mechanism="APOP")
    result = sync.sync_account(account.id)
    assert result.error.startswith("auth: The server refused APOP for this user")
    assert server.login_attempts == 1 and sessions_mechanisms(server) == ["APOP"]
    account.refresh_from_db()
    assert "set the login method to Automatic" in account.last_error
    assert account.working_auth_mechanism == ""


# --- The account form's connection test ------------------------------------------------------


def form_data(server, **overrides) -> dict:
    data = {
        "label": "",
        "host": server.host,
        "security": "none",
        "port": server.port,
        "username": "alice",
        "password": server.users["alice"],
        "policy": "keep",
        "days": "",
        "poll_interval": "300",
        "action": "save",
    }
    data.update(overrides)
    return data


def test_connection_test_falls_back_and_the_saved_account_starts_with_what_worked(alice_client, fault_server):
    server = fault_server([make_message(1)], apop_only_for=[], after_auth_failure="close")
    response = alice_client.post(reverse("accounts:add"), form_data(server))
    assert response.status_code == 302
    assert sessions_mechanisms(server) == ["APOP", "USER"]
    account = MailAccount.objects.get()
    assert account.working_auth_mechanism == "USER"
    assert sync.sync_account(account.id).error is None
    assert sessions_mechanisms(server) == ["APOP", "USER", "USER"]


def test_connection_test_of_a_chosen_method_words_the_refusal(alice_client, fault_server):
    server = fault_server([], apop_only_for=[])
    response = alice_client.post(reverse("accounts:add"), form_data(server, auth_mechanism="APOP", action="test"))
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-error-class="auth"' in html and "The server refused APOP for this user" in html
    assert server.login_attempts == 1


def test_editing_tests_with_the_remembered_method_first(alice, alice_client, fault_server, fault_account):
    server = fault_server([], apop_only_for=[])
    account = fault_account(server, working_auth_mechanism="USER")
    data = form_data(server, password="", label="Renamed")
    response = alice_client.post(reverse("accounts:edit", args=[account.id]), data)
    assert response.status_code == 302
    assert sessions_mechanisms(server) == ["USER"]
    account.refresh_from_db()
    assert (account.label, account.working_auth_mechanism) == ("Renamed", "USER")


def test_changing_the_server_forgets_the_remembered_method(alice, fault_server, fault_account):
    from accounts import actions

    account = fault_account(fault_server([]), working_auth_mechanism="APOP")
    actions.update_account(account, port=account.port + 1)
    account.refresh_from_db()
    assert account.working_auth_mechanism == ""


# --- Real Dovecot ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot_apop_plain(dovecot, tmp_path_factory):
    """A Dovecot that offers APOP (timestamp in the greeting), PLAIN and LOGIN, nothing else."""
    server = DovecotServer(tmp_path_factory.mktemp("dovecot-apop"), auth_mechanisms="plain login apop")
    server.start()
    yield server
    server.stop()


@pytest.mark.dovecot
def test_dovecot_refuses_scram_for_a_hashed_password_and_plain_takes_over(dovecot, trust_dovecot, alice):
    from tests.factories import make_account

    dovecot.add_user("hashed1", "pw-hashed-1", hashed=True)
    dovecot.deliver("hashed1", make_message(1))
    account = make_account(
        alice, host="localhost", port=dovecot.pop3s_port, security="ssl", username="hashed1", password="pw-hashed-1"
    )
    result = sync.sync_account(account.id)
    assert result.error is None and result.fetched == 1
    account.refresh_from_db()
    assert account.working_auth_mechanism == "PLAIN"
    log = dovecot.log_file.read_text()
    assert "Requested SCRAM-SHA-256 scheme, but we have only SSHA256" in log
    assert len(re.findall(r"auth failed, 1 attempts in \d+ secs\): user=<hashed1>, method=SCRAM-SHA-256,", log)) == 1
    assert log.count("Login: user=<hashed1>, method=PLAIN,") == 1


@pytest.mark.dovecot
def test_dovecot_apop_in_the_greeting_refused_for_a_hashed_password(dovecot_apop_plain, settings, alice):
    from tests.factories import make_account

    settings.WEBPOP_POP3_CA_FILE = str(dovecot_apop_plain.ca_file)
    dovecot_apop_plain.add_user("hashed2", "pw-hashed-2", hashed=True)
    dovecot_apop_plain.deliver("hashed2", make_message(1))
    account = make_account(
        alice,
        host="localhost",
        port=dovecot_apop_plain.pop3_port,
        security="none",  # the case APOP ranks first in: a clear connection the owner chose
        username="hashed2",
        password="pw-hashed-2",
    )
    report = sync.test_connection("localhost", account.port, "none", "hashed2", "pw-hashed-2")
    assert report.ok and report.mechanism == "PLAIN"
    result = sync.sync_account(account.id)
    assert result.error is None and result.fetched == 1
    account.refresh_from_db()
    assert account.working_auth_mechanism == "PLAIN"
    log = dovecot_apop_plain.log_file.read_text()
    # Each of the two logins (the test, then the sync): APOP refused in its own connection, then PLAIN.
    assert len(re.findall(r"auth failed, 1 attempts in \d+ secs\): user=<hashed2>, method=APOP,", log)) == 2
    assert log.count("Login: user=<hashed2>, method=PLAIN,") == 2


@pytest.mark.dovecot
def test_dovecot_wrong_password_is_the_normal_auth_error(dovecot_apop_plain, settings):
    dovecot_apop_plain.add_user("hashed3", "pw-hashed-3", hashed=True)
    report = sync.test_connection("localhost", dovecot_apop_plain.pop3_port, "none", "hashed3", "wrong")
    assert not report.ok and report.error_class == "auth"
    assert report.message.startswith("The server rejected the user name or password")


@pytest.mark.dovecot
def test_dovecot_apop_chosen_for_a_hashed_password_is_worded_as_refused(dovecot_apop_plain):
    dovecot_apop_plain.add_user("hashed4", "pw-hashed-4", hashed=True)
    port = dovecot_apop_plain.pop3_port
    with (
        Pop3Client("localhost", port, "none", allow_private=True, timeout=10) as pop,
        pytest.raises(Pop3AuthError) as exc,
    ):
        pop.login("hashed4", "pw-hashed-4", allow_plaintext=True, mechanism="APOP")
    assert str(exc.value) == "The server refused APOP for this user ([AUTH] Authentication failed.)."
    assert exc.value.mechanism == "APOP"
