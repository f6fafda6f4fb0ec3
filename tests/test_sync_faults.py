"""Every misbehaviour of the fault server flows through a sync with the right outcome, losing nothing."""

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import MailAccount
from mailbox import actions, store, sync
from mailbox.models import FetchFailure, Message
from tests.factories import stored_maildrop
from tests.fault_server import make_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def messages(count: int, start: int = 1) -> list[bytes]:
    return [make_message(i) for i in range(start, start + count)]


def stored_bytes(account) -> dict[str, bytes]:
    return {m.uidl: store.path_of(m.raw_path).read_bytes() for m in Message.objects.filter(account=account)}


def retrs(server) -> int:
    return sum(1 for session in server.commands for line in session if line.upper().startswith("RETR"))


@pytest.mark.parametrize("login_error", ["[IN-USE] Mailbox locked", "[SYS/TEMP] Overloaded"])
def test_busy_server_is_retried_with_backoff(fault_server, fault_account, login_error):
    server = fault_server(messages(2), login_error=login_error)
    account = fault_account(server)
    result = sync.sync_account(account.id)
    assert result.error_class == "temporary"
    account.refresh_from_db()
    assert account.last_error_class == "temporary" and account.enabled
    wait = account.next_poll_at - timezone.now()
    assert dt.timedelta(seconds=200) < wait < dt.timedelta(seconds=400)  # 300 s interval, ±20% jitter
    MailAccount.objects.filter(id=account.id).update(next_poll_at=timezone.now())
    sync.sync_account(account.id)
    account.refresh_from_db()
    assert account.next_poll_at - timezone.now() > dt.timedelta(seconds=450)  # doubled


def test_login_delay_response_waits_at_least_fifteen_minutes(fault_server, fault_account):
    server = fault_server(messages(1), login_error="[LOGIN-DELAY] wait")
    account = fault_account(server)
    assert sync.sync_account(account.id).error_class == "temporary"
    account.refresh_from_db()
    assert account.next_poll_at - timezone.now() >= dt.timedelta(seconds=890)


def test_advertised_login_delay_sets_the_next_poll(fault_server, fault_account):
    server = fault_server(messages(1), login_delay=1800, expire=0)
    account = fault_account(server)
    assert sync.sync_account(account.id).error is None
    account.refresh_from_db()
    assert account.next_poll_at - timezone.now() >= dt.timedelta(seconds=1790)
    assert "1800 s" in account.sync_notes and "EXPIRE 0" in account.sync_notes


def test_sys_temp_mid_session_keeps_what_was_stored_and_deletes_nothing(fault_server, fault_account):
    server = fault_server(messages(6), sys_temp_after=5)  # UIDL, LIST, RETR 1..3 succeed
    account = fault_account(server, policy="delete")
    result = sync.sync_account(account.id)
    assert result.error_class == "temporary"
    assert result.fetched >= 1
    assert server.messages_left() == 6  # no QUIT was committed
    for uidl, raw in stored_bytes(account).items():
        assert raw == make_message(int(uidl.split("-")[1]))


def test_connection_dropped_mid_message_stores_no_partial_message(fault_server, fault_account):
    server = fault_server(messages(4), drop_during_retr=(3, 40))
    account = fault_account(server, policy="delete")
    result = sync.sync_account(account.id)
    assert result.error_class in {"protocol", "network"}
    stored = stored_bytes(account)
    assert set(stored) == {"uid-00001", "uid-00002"}
    assert all(raw == make_message(int(uidl[-5:])) for uidl, raw in stored.items())
    assert server.messages_left() == 4
    assert not list((store.root() / "tmp").glob("*"))  # the partial temp file is gone


def test_message_the_server_refuses_is_quarantined_after_three_tries(fault_server, fault_account):
    server = fault_server(messages(3), retr_errors={2: "Message corrupted"})  # keyed by message number
    account = fault_account(server, policy="keep")
    for attempt in range(1, 4):
        result = sync.sync_account(account.id)
        assert result.error is None
        failure = FetchFailure.objects.get(account=account, uidl="uid-00002")
        assert failure.attempts == attempt
    assert failure.is_quarantined and "Message corrupted" in failure.error
    assert set(stored_bytes(account)) == {"uid-00001", "uid-00003"}
    before = retrs(server)
    sync.sync_account(account.id)
    assert retrs(server) == before  # quarantined: not asked for again
    assert "uid-00002" in server.remaining_uidls()


def test_no_uidl_falls_back_to_fingerprints_and_fetches_once(fault_server, fault_account):
    server = fault_server(messages(3), no_uidl=True)
    account = fault_account(server)
    assert sync.sync_account(account.id).fetched == 3
    assert sync.sync_account(account.id).fetched == 0
    assert all(uidl.startswith("fp:") for uidl in stored_bytes(account))
    account.refresh_from_db()
    assert "no UIDL" in account.sync_notes


def test_no_uidl_and_no_top_is_a_clear_error(fault_server, fault_account):
    server = fault_server(messages(1), no_uidl=True, no_top=True)
    result = sync.sync_account(fault_account(server).id)
    assert result.error_class == "permanent"
    assert "neither UIDL nor TOP" in result.error


def test_duplicate_uidls_lose_no_message(fault_server, fault_account):
    server = fault_server(messages(3), duplicate_uidls=True)
    account = fault_account(server, policy="delete")
    assert sync.sync_account(account.id).fetched == 3
    assert sorted(stored_bytes(account)) == ["uid-00001", "uid-00001#2", "uid-00003"]
    assert server.messages_left() == 0


def test_bare_lf_and_dot_lines_are_stored_exactly_as_sent(fault_server, fault_account):
    raw = make_message(1, b".leading dot\r\n..two dots\r\n.\tdot tab\r\n")
    server = fault_server([raw], bare_lf=True)
    account = fault_account(server)
    sync.sync_account(account.id)
    (stored,) = stored_bytes(account).values()
    assert stored == raw.replace(b"\r\n", b"\n")


def test_list_size_mismatch_still_stores_the_true_bytes(fault_server, fault_account):
    server = fault_server(messages(2), list_size_delta=100)
    account = fault_account(server)
    sync.sync_account(account.id)
    for message in Message.objects.filter(account=account):
        raw = store.path_of(message.raw_path).read_bytes()
        assert (message.size, message.sha256) == (len(raw), hashlib.sha256(raw).hexdigest())


def test_slow_server_times_out(fault_server, fault_account, settings):
    settings.WEBPOP_POP3_TIMEOUT = 1
    server = fault_server(messages(1), slow=2.0)
    result = sync.sync_account(fault_account(server).id)
    assert result.error_class == "timeout"


def test_reused_uidl_after_deletion_is_a_new_message(fault_server, fault_account):
    first = fault_server([make_message(1)], uidls=["7"])
    account = fault_account(first, policy="delete")
    assert sync.sync_account(account.id).deleted_on_server == 1
    second = fault_server([make_message(2)], uidls=["7"])  # the same UIDL, new content
    MailAccount.objects.filter(id=account.id).update(port=second.port)
    assert sync.sync_account(account.id).fetched == 1
    assert Message.objects.filter(account=account, uidl="7").count() == 2


def test_mirror_deletes_what_the_user_deleted_on_the_fault_server(fault_server, fault_account, alice):
    server = fault_server(messages(5))
    account = fault_account(server, policy="mirror")
    sync.sync_account(account.id)
    doomed = Message.objects.get(account=account, uidl="uid-00004")
    actions.move(alice.id, [doomed.id], "trash")
    actions.empty_trash(alice.id)
    assert sync.sync_account(account.id).deleted_on_server == 1
    assert server.remaining_uidls() == ["uid-00001", "uid-00002", "uid-00003", "uid-00005"]


def no_change_poll(fault_server, fault_account, size: int) -> tuple[int, list[str]]:
    """Queries and POP3 commands of a poll that finds ``size`` messages, all already stored."""
    server, account = stored_maildrop(fault_server, fault_account, size)
    with CaptureQueriesContext(connection) as queries:
        result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, 0)
    return len(queries), [line.split()[0].upper() for line in server.commands[-1]]


def test_no_change_poll_is_one_listing_and_constant_queries(fault_server, fault_account):
    small_queries, _ = no_change_poll(fault_server, fault_account, 100)
    big_queries, commands = no_change_poll(fault_server, fault_account, 10_000)
    assert commands.count("UIDL") == 1
    assert "RETR" not in commands and "LIST" not in commands and "TOP" not in commands
    assert big_queries == small_queries <= 16


def test_quit_that_fails_assumes_nothing_deleted_and_next_sync_reconciles(fault_server, fault_account):
    server = fault_server(messages(3), drop_after_command="QUIT")
    account = fault_account(server, policy="delete")
    result = sync.sync_account(account.id)
    assert result.error_class in {"protocol", "network"}
    assert result.fetched == 3
    assert server.messages_left() == 3  # the server rolled back
    assert set(Message.objects.filter(account=account).values_list("server_state", flat=True)) == {"on_server"}
    healthy = fault_server(messages(3))
    MailAccount.objects.filter(id=account.id).update(port=healthy.port)
    again = sync.sync_account(account.id)
    assert (again.error, again.fetched, again.deleted_on_server) == (None, 0, 3)
    assert healthy.messages_left() == 0
