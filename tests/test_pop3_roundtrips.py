"""Round trips of a poll, counted by a relay between webpop and a real Dovecot (tests/relay.py).

A turn is the client sending after having received: each is a round trip a
real network makes the poll wait for. An implicit-TLS connection spends two on
its handshake. What is asserted is the exact count for each kind of poll, and
what the session remembered for the next one (the server profile, SCRAM keys).
"""

from __future__ import annotations

import asyncio

import pytest

from accounts import actions
from accounts.models import MailAccount
from mailbox import server_memory, sync
from mailbox.pop3 import Pop3Client, ServerProfile
from mailbox.pop3.aio import AsyncPop3Client
from mailbox.pop3_login import AsyncPasswordLogin, PasswordLogin
from mailbox.sync import outcome
from tests.factories import make_account
from tests.fault_server import make_message
from tests.relay import Relay

pytestmark = pytest.mark.django_db


@pytest.fixture
def relay():
    """Factory: ``relay(port, **options)`` starts a counting relay to 127.0.0.1:port for this test."""
    started: list[Relay] = []

    def make(port: int, **options) -> Relay:
        # A network's delay: a client's close reaches the relay before the answer to what it sent just
        # before it (on bare loopback that order would be a race), so an unawaited QUIT is no turn.
        options.setdefault("delay", 0.03)
        started.append(Relay(("127.0.0.1", port), **options).start())
        return started[-1]

    yield make
    for one in started:
        one.stop()


def turns(relay: Relay, poll) -> list[int]:
    """The turns of each connection ``poll()`` made."""
    relay.reset()
    poll()
    relay.wait_closed()
    return [c.turns for c in relay.conversations]


def no_change_sync(account: MailAccount) -> None:
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, 0)


def relayed_account(alice, pop_user, relay: Relay, security: str, **fields) -> MailAccount:
    return make_account(
        alice, host="localhost", port=relay.port, security=security, username=pop_user.name,
        password=pop_user.password, **fields,
    )  # fmt: skip


def forget_profile(account: MailAccount) -> None:
    MailAccount.objects.filter(id=account.id).update(server_profile={})


# --- Syncs against Dovecot -------------------------------------------------------------------


@pytest.mark.dovecot
@pytest.mark.parametrize(
    ("mechanism", "first", "again"),
    [
        # TLS handshake 2; CAPA 1; SCRAM 3 (its last, empty response carries CAPA and UIDL); the
        # listing matches the digest, so QUIT goes out unawaited. Again, with the profile: no CAPA.
        # Before the protocol core: 9 and 9.
        ("", 6, 5),
        # PLAIN: the AUTH line with its initial response carries CAPA and UIDL. Before: 7 and 7.
        ("PLAIN", 4, 3),
    ],
)
def test_a_no_change_sync_over_tls(alice, dovecot, pop_user, relay, mechanism, first, again):
    pop_user.deliver(make_message(1))
    through = relay(dovecot.pop3s_port)
    account = relayed_account(alice, pop_user, through, "ssl", auth_mechanism=mechanism)
    assert sync.sync_account(account.id).fetched == 1
    forget_profile(account)
    assert turns(through, lambda: no_change_sync(account)) == [first]
    account.refresh_from_db()
    profile = server_memory.server_profile(account)
    assert profile.mechanism == (mechanism or "SCRAM-SHA-256") and profile.usable()
    assert "PIPELINING" in profile.capabilities and "SASL" not in " ".join(profile.session_capabilities)
    assert turns(through, lambda: no_change_sync(account)) == [again]
    account.refresh_from_db()
    assert server_memory.server_profile(account) == profile  # nothing new learned: the row keeps it as it was


@pytest.mark.dovecot
@pytest.mark.parametrize(
    ("hide", "first", "again"),
    [
        # Lock-step: CAPA, AUTH, SCRAM final, its empty response, CAPA, UIDL, QUIT (a first sync
        # waits for it); again without the CAPAs, and QUIT unawaited as the listing is unchanged.
        (b"PIPELINING", 7, 4),
        # Pipelined: CAPA and UIDL go with SCRAM's last response; again without the CAPAs.
        (b"", 5, 3),
    ],
)
def test_a_no_change_sync_in_clear_text_with_and_without_pipelining(
    alice, dovecot, pop_user, relay, hide, first, again
):
    through = relay(dovecot.pop3_port, hide_capability=hide)
    account = relayed_account(alice, pop_user, through, "none")
    assert turns(through, lambda: no_change_sync(account)) == [first]
    account.refresh_from_db()
    assert server_memory.server_profile(account).post_login().pipelining == (not hide)
    assert turns(through, lambda: no_change_sync(account)) == [again]


# --- A check: log in, UIDL, QUIT in one round trip, with either driver --------------------------


def check_blocking(dovecot, port: int, pop_user, profile: ServerProfile | None) -> tuple[list, ServerProfile]:
    def new_client(profile):
        return Pop3Client("localhost", port, "ssl", ca_file=str(dovecot.ca_file), allow_private=True, profile=profile)

    login = PasswordLogin(
        new_client, pop_user.name, pop_user.password, allow_plaintext=False, chosen="PLAIN", profile=profile,
        then=("UIDL", "QUIT"),
    )  # fmt: skip
    client = login.open()
    listing = client.uidl()
    client.quit()
    return listing, client.profile


def check_asyncio(dovecot, port: int, pop_user, profile: ServerProfile | None) -> tuple[list, ServerProfile]:
    def new_client(profile):
        return AsyncPop3Client(
            "localhost", port, "ssl", ca_file=str(dovecot.ca_file), allow_private=True, profile=profile
        )

    async def check():
        login = AsyncPasswordLogin(
            new_client, pop_user.name, pop_user.password, allow_plaintext=False, chosen="PLAIN", profile=profile,
            then=("UIDL", "QUIT"),
        )  # fmt: skip
        client = await login.open()
        listing = await client.uidl()
        await client.quit()
        return listing, client.profile

    return asyncio.run(check())


@pytest.mark.dovecot
@pytest.mark.parametrize("check", [check_blocking, check_asyncio], ids=["blocking", "asyncio"])
def test_a_check_with_a_profile_is_one_round_trip_after_the_handshake(dovecot, pop_user, relay, check):
    pop_user.deliver(make_message(1))
    pop_user.deliver(make_message(2))
    through = relay(dovecot.pop3s_port)
    result = {}

    def poll(profile):
        result["listing"], result["profile"] = check(dovecot, through.port, pop_user, profile)

    assert turns(through, lambda: poll(None)) == [2 + 1 + 1]  # the handshake, CAPA, the rest
    learned = result["profile"]
    assert learned.mechanism == "PLAIN"
    assert turns(through, lambda: poll(learned)) == [2 + 1]  # AUTH PLAIN, UIDL and QUIT in one write
    assert [number for number, _uidl in result["listing"]] == [1, 2]
    assert result["profile"] == learned


# --- SCRAM keys --------------------------------------------------------------------------------


@pytest.mark.dovecot
def test_scram_keys_are_kept_encrypted_and_used_by_the_next_sync(alice, dovecot, trust_dovecot):
    dovecot.add_user("scram-keys", "pw-scram-keys", scram=True)
    dovecot.deliver("scram-keys", make_message(1))
    account = make_account(
        alice, host="localhost", port=dovecot.pop3s_port, security="ssl", username="scram-keys",
        password="pw-scram-keys",
    )  # fmt: skip
    assert sync.sync_account(account.id).fetched == 1
    account.refresh_from_db()
    stored = account.scram_cache_encrypted
    assert stored and "pw-scram-keys" not in stored
    assert len(server_memory.scram_cache(account)) == 1
    assert account.working_auth_mechanism == "SCRAM-SHA-256"
    assert sync.sync_account(account.id).error is None
    account.refresh_from_db()
    assert account.scram_cache_encrypted == stored  # the same salt again: used, not recomputed or rewritten
    log = dovecot.log_file.read_text()
    assert log.count("Login: user=<scram-keys>, method=SCRAM-SHA-256,") == 2


@pytest.mark.dovecot
def test_a_wrong_cached_scram_key_is_dropped_and_the_password_logs_in(alice, dovecot, trust_dovecot):
    dovecot.add_user("stale-keys", "pw-stale-keys", scram=True)
    account = make_account(
        alice, host="localhost", port=dovecot.pop3s_port, security="ssl", username="stale-keys",
        password="pw-stale-keys",
    )  # fmt: skip
    assert sync.sync_account(account.id).error is None
    account.refresh_from_db()
    cache = server_memory.scram_cache(account)
    (key,) = cache.to_json()
    hash_name, iterations, salt = key.split(":", 2)
    cache.put(hash_name, salt, int(iterations), b"\0" * 32)  # as if from an earlier password
    MailAccount.objects.filter(id=account.id).update(scram_cache_encrypted=server_memory.encrypt_scram_cache(cache))
    result = sync.sync_account(account.id)
    assert result.error is None
    account.refresh_from_db()
    assert account.working_auth_mechanism == "PLAIN"  # SCRAM refused with the stale key, PLAIN took over
    assert len(server_memory.scram_cache(account)) == 0


# --- What invalidates a profile ----------------------------------------------------------------


@pytest.mark.sqlite  # a JSON column in a conditional UPDATE
def test_later_syncs_send_no_capa_and_a_failed_one_forgets_the_profile(fault_server, fault_account):
    server = fault_server([make_message(1)])
    account = fault_account(server)
    assert sync.sync_account(account.id).fetched == 1
    assert server.commands[-1][:4] == ["CAPA", "USER alice", "PASS secret", "CAPA"]
    assert sync.sync_account(account.id).error is None
    server.wait_idle()  # the sync left without waiting for QUIT's answer: let the server read it
    assert server.commands[-1] == ["USER alice", "PASS secret", "UIDL", "QUIT"]
    assert server.last.max_in_flight == 3  # USER, PASS and UIDL in one write
    server.faults.drop_after_command = "UIDL"
    assert sync.sync_account(account.id).error_class == "protocol"
    account.refresh_from_db()
    assert account.server_profile == {}
    server.faults.drop_after_command = None
    assert sync.sync_account(account.id).error is None
    assert server.commands[-1][0] == "CAPA"


def test_new_server_settings_or_a_new_password_forget_what_was_learned(fault_server, fault_account):
    account = fault_account(fault_server([make_message(1)]))
    for change in ({"password": "new-secret"}, {"port": account.port + 1}):
        assert sync.sync_account(account.id).error is None or change.get("port")
        account.refresh_from_db()
        MailAccount.objects.filter(id=account.id).update(scram_cache_encrypted="stored-token")
        account.refresh_from_db()
        actions.update_account(account, **change)
        account.refresh_from_db()
        assert (account.server_profile, account.scram_cache_encrypted, account.working_auth_mechanism) == ({}, "", "")


@pytest.mark.sqlite  # a JSON column in a conditional UPDATE
def test_what_a_sync_learned_is_not_kept_when_the_settings_changed_meanwhile(fault_server, fault_account):
    server = fault_server([make_message(1)])
    account = fault_account(server)
    stale = MailAccount.objects.get(id=account.id)
    actions.update_account(account, label="renamed")  # not a server setting: what is learned stays valid
    assert sync.sync_account(account.id).error is None
    learned = MailAccount.objects.get(id=account.id).server_profile
    assert learned
    MailAccount.objects.filter(id=account.id).update(server_profile={}, host="127.0.0.2")
    result = sync.SyncResult(account=account.id, server_profile=ServerProfile.from_json(learned))
    outcome.record_outcome(stale, result, None)  # the sync began with the old host
    assert MailAccount.objects.get(id=account.id).server_profile == {}
    MailAccount.objects.filter(id=account.id).update(host=stale.host)
    outcome.record_outcome(stale, result, None)
    assert MailAccount.objects.get(id=account.id).server_profile == learned


def test_server_settings_changed_in_the_admin_forget_what_was_learned(fault_server, fault_account, django_user_model):
    from django.test import Client
    from django.urls import reverse

    from tests.test_page_cache import _FormValues

    account = fault_account(fault_server([make_message(1)]))
    assert sync.sync_account(account.id).error is None
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", "root@example.org", None))
    url = reverse("admin:accounts_mailaccount_change", args=[account.id])
    form = _FormValues()
    form.feed(admin.get(url).content.decode())
    assert admin.post(url, {**form.values, "label": "Renamed"}).status_code == 302
    account.refresh_from_db()
    assert account.server_profile and account.working_auth_mechanism  # not a server setting
    assert admin.post(url, {**form.values, "port": str(account.port + 1)}).status_code == 302
    account.refresh_from_db()
    assert (account.server_profile, account.working_auth_mechanism) == ({}, "")
