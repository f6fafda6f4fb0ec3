"""The no-change check (mailbox/sync/check.py): many accounts' "anything new?" at once, against real servers.

What a check settles it records in one UPDATE; whatever needs fetching or deleting goes to the
crash-safe sync, which fetches every message exactly once. A failing or hanging server is recorded
as a failed sync and costs the others nothing.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import MailAccount
from mailbox import sync, tasks
from mailbox.models import Message, ServerState, SyncRun
from mailbox.sync import check, schedule
from tests.factories import make_account, stored_maildrop
from tests.fault_server import make_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def synced(account: MailAccount, expect: int) -> MailAccount:
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, expect)
    account.refresh_from_db()
    return account


# --- Pure parts ------------------------------------------------------------------------------


def test_the_interval_stretches_while_no_mail_comes_and_snaps_back_when_some_does():
    interval = None
    seen = []
    for _ in range(6):
        interval = schedule.next_interval(interval, 300, 1800, got_mail=False)
        seen.append(interval)
    assert seen == [450, 675, 1012, 1518, 1800, 1800]
    assert schedule.next_interval(1800, 300, 1800, got_mail=True) == 300


def test_without_an_upper_bound_the_interval_is_the_one_chosen():
    assert schedule.next_interval(None, 300, None, got_mail=False) == 300
    assert schedule.next_interval(900, 300, 300, got_mail=False) == 300


def test_jitter_spreads_polls_within_ten_percent():
    values = {round(schedule.jittered(1000)) for _ in range(200)}
    assert min(values) >= 900 and max(values) <= 1100 and len(values) > 50


def test_a_digest_changes_with_the_listing_the_server_and_the_policy():
    class Account:
        host, port, username, policy = "pop.example.net", 995, "alice", "keep"

    account = Account()
    base = schedule.listing_digest(["a", "b"], identity=schedule.identity(account))
    assert base == schedule.listing_digest(["a", "b"], identity=schedule.identity(account))
    assert base != schedule.listing_digest(["a", "b", "c"], identity=schedule.identity(account))
    assert base != schedule.listing_digest(["ab"], identity=schedule.identity(account))
    account.policy = "delete"
    assert base != schedule.listing_digest(["a", "b"], identity=schedule.identity(account))


def test_duplicate_uidls_get_numbered_keys_so_no_message_is_lost():
    assert schedule.listing_keys([(1, "x"), (2, "x"), (3, "y")]) == {"x": 1, "x#2": 2, "y": 3}


# --- Against Dovecot ---------------------------------------------------------------------------


@pytest.mark.dovecot
def test_a_check_of_an_unchanged_mailbox_records_success_without_a_sync(dovecot_account, pop_user):
    pop_user.deliver(make_message(1))
    account = synced(dovecot_account(), 1)
    assert account.listing_digest
    runs = SyncRun.objects.count()
    before = timezone.now()

    outcome = check.check_accounts([account.id])

    assert (outcome.unchanged, outcome.to_sync, outcome.failed) == ([account.id], [], [])
    assert SyncRun.objects.count() == runs  # no sync ran
    account.refresh_from_db()
    assert account.last_success_at >= before and account.last_error == ""
    assert account.current_interval == account.poll_interval  # no upper bound chosen
    wait = (account.next_poll_at - account.last_success_at).total_seconds()
    assert 0.9 * account.poll_interval <= wait <= 1.1 * account.poll_interval


@pytest.mark.dovecot
def test_new_mail_goes_to_the_sync_and_arrives_exactly_once(dovecot_account, pop_user, enqueued):
    pop_user.deliver(make_message(1))
    account = synced(dovecot_account(), 1)
    pop_user.deliver(make_message(2))

    tasks.check_accounts([account.id])

    assert enqueued == [account.id]
    synced(account, 1)
    assert Message.objects.filter(account=account).count() == 2
    assert check.check_accounts([account.id]).unchanged == [account.id]


@pytest.mark.dovecot
def test_a_quiet_account_is_polled_less_often_up_to_its_bound_and_more_after_mail(dovecot_account, pop_user):
    pop_user.deliver(make_message(1))
    account = synced(dovecot_account(poll_interval=300), 1)
    MailAccount.objects.filter(id=account.id).update(poll_interval_max=900)
    intervals = []
    for _ in range(4):
        check.check_accounts([account.id])
        account.refresh_from_db()
        intervals.append(account.current_interval)
    assert intervals == [450, 675, 900, 900]
    pop_user.deliver(make_message(2))
    assert check.check_accounts([account.id]).to_sync == [account.id]
    account = synced(account, 1)
    assert account.current_interval == 300


@pytest.mark.dovecot
def test_what_a_check_cannot_settle_goes_to_the_sync(dovecot_account, pop_user, alice):
    pop_user.deliver(make_message(1))
    never_synced = dovecot_account()
    mirror = synced(dovecot_account(policy="mirror"), 1)
    Message.objects.filter(account=mirror).update(server_state=ServerState.DELETE_PENDING)
    days = synced(dovecot_account(policy="days:30"), 1)
    assert days.deletion_due_at is not None  # the message is due for deletion 30 days after it was received
    MailAccount.objects.filter(id=days.id).update(deletion_due_at=timezone.now() - dt.timedelta(minutes=1))
    undecryptable = synced(dovecot_account(), 1)
    MailAccount.objects.filter(id=undecryptable.id).update(password_encrypted="not a token")

    outcome = check.check_accounts([never_synced.id, mirror.id, days.id, undecryptable.id])

    assert sorted(outcome.to_sync) == sorted([never_synced.id, mirror.id, days.id, undecryptable.id])
    assert outcome.unchanged == [] and outcome.failed == []


@pytest.mark.dovecot
def test_changing_the_policy_makes_the_next_poll_a_full_sync(dovecot_account, pop_user):
    pop_user.deliver(make_message(1))
    account = synced(dovecot_account(), 1)
    MailAccount.objects.filter(id=account.id).update(policy="delete")
    assert check.check_accounts([account.id]).to_sync == [account.id]
    assert sync.sync_account(account.id).deleted_on_server == 1
    assert pop_user.messages() == []


@pytest.mark.dovecot
def test_a_no_change_sync_does_not_read_the_stored_uidls(dovecot_account, pop_user):
    for n in range(1, 6):
        pop_user.deliver(make_message(n))
    account = synced(dovecot_account(), 5)
    with CaptureQueriesContext(connection) as queries:
        result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, 0)
    read_uidls = [q["sql"] for q in queries if '"uidl"' in q["sql"] and q["sql"].startswith("SELECT")]
    assert read_uidls == []
    account.refresh_from_db()
    assert account.listing_digest  # still trusted


def uidl_reads(queries) -> list[str]:
    """SELECTs of stored UIDLs (those of the few failed fetches aside)."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith("SELECT")
        and ('"mailbox_message"."uidl"' in q["sql"] or '"mailbox_uidlalias"."uidl"' in q["sql"])
    ]


@pytest.mark.dovecot
def test_a_sync_after_new_mail_looks_up_only_the_new_uidls(dovecot_account, pop_user):
    for n in range(1, 6):
        pop_user.deliver(make_message(n))
    account = synced(dovecot_account(), 5)
    assert account.listing_length == 5
    pop_user.deliver(make_message(6))
    pop_user.deliver(make_message(7))

    with CaptureQueriesContext(connection) as queries:
        account = synced(account, 2)

    reads = uidl_reads(queries)
    assert reads and all(" IN (" in sql for sql in reads), "\n".join(reads)  # by UIDL, never the whole mailbox
    assert account.listing_digest and account.listing_length == 7
    assert Message.objects.filter(account=account).count() == 7
    assert check.check_accounts([account.id]).unchanged == [account.id]


def test_new_mail_costs_the_same_queries_in_a_big_mailbox_as_in_a_small_one(fault_server, fault_account):
    def new_mail_sync(size: int) -> int:
        server, account = stored_maildrop(fault_server, fault_account, size)
        synced(account, 0)  # compares the whole listing once, and settles it
        server.deliver(make_message(size + 1))  # a subject of its own: no thread with the other call's
        with CaptureQueriesContext(connection) as queries:
            synced(account, 1)
        assert all(" IN (" in sql for sql in uidl_reads(queries))
        return len(queries)

    assert new_mail_sync(10_000) == new_mail_sync(100)


@pytest.mark.dovecot
def test_mail_deleted_elsewhere_is_noticed_when_new_mail_arrives_too(dovecot_account, pop_user):
    for n in range(1, 4):
        pop_user.deliver(make_message(n))
    account = synced(dovecot_account(), 3)
    first = Message.objects.filter(account=account).order_by("id").first()
    pop_user.remove(make_message(1))
    pop_user.deliver(make_message(4))

    account = synced(account, 1)

    first.refresh_from_db()
    assert first.server_state == ServerState.GONE
    assert Message.objects.filter(account=account, server_state=ServerState.ON_SERVER).count() == 3
    assert account.listing_length == 3
    assert check.check_accounts([account.id]).unchanged == [account.id]


@pytest.mark.dovecot
def test_a_listing_that_settled_before_this_change_is_compared_whole_once(dovecot_account, pop_user):
    for n in range(1, 4):
        pop_user.deliver(make_message(n))
    account = synced(dovecot_account(), 3)
    MailAccount.objects.filter(id=account.id).update(listing_length=0)  # as the column's default leaves it
    pop_user.deliver(make_message(4))

    with CaptureQueriesContext(connection) as queries:
        account = synced(account, 1)

    assert any(" IN (" not in sql for sql in uidl_reads(queries))  # the whole listing
    assert account.listing_length == 4


def test_a_sync_that_leaves_a_message_to_retry_keeps_no_digest(fault_server, fault_account):
    server = fault_server([make_message(1), make_message(2)], retr_errors={2: "try later"})
    account = fault_account(server)
    result = sync.sync_account(account.id)
    assert (result.fetched, result.skipped) == (1, 1)
    account.refresh_from_db()
    assert account.listing_digest == ""
    assert check.check_accounts([account.id]).to_sync == [account.id]
    server.faults.retr_errors = {}
    synced(account, 1)
    assert account.listing_digest and check.check_accounts([account.id]).unchanged == [account.id]


@pytest.mark.dovecot
def test_a_wrong_password_is_recorded_as_a_failed_sync_and_the_digest_is_dropped(dovecot_account, pop_user):
    pop_user.deliver(make_message(1))
    account = synced(dovecot_account(auth_mechanism="PLAIN"), 1)
    account.set_password("wrong")
    MailAccount.objects.filter(id=account.id).update(password_encrypted=account.password_encrypted)

    outcome = check.check_accounts([account.id])

    assert outcome.failed == [account.id]
    account.refresh_from_db()
    assert account.last_error_class == "auth" and account.consecutive_failures == 1
    assert account.listing_digest == ""
    assert account.next_poll_at > timezone.now() + dt.timedelta(minutes=30)  # auth failures back off from an hour


# --- Against the fault server: what healthy servers do not do --------------------------------


def test_a_hanging_server_costs_its_own_slot_not_the_batch(fault_server, fault_account, settings):
    settings.WEBPOP_CHECK_DEADLINE = 2
    healthy = fault_server([make_message(1)])
    hanging = fault_server([make_message(1)])
    accounts = [synced(fault_account(healthy), 1) for _ in range(3)]
    stalled = synced(fault_account(hanging), 1)
    hanging.faults.stall_greeting = math.inf

    outcome = check.check_accounts([a.id for a in accounts] + [stalled.id])

    assert sorted(outcome.unchanged) == sorted(a.id for a in accounts)
    assert outcome.failed == [stalled.id]
    stalled.refresh_from_db()
    assert stalled.last_error_class == "timeout" and stalled.listing_digest == ""


def test_no_more_than_the_per_host_limit_of_sessions_reach_one_server(fault_server, fault_account, settings):
    settings.WEBPOP_CHECK_PER_HOST = 2
    server = fault_server([make_message(1)])
    accounts = [synced(fault_account(server), 1) for _ in range(6)]
    server.faults.slow = 0.1
    server.max_open_sessions = 0

    outcome = check.check_accounts([a.id for a in accounts])

    assert sorted(outcome.unchanged) == sorted(a.id for a in accounts)
    assert server.max_open_sessions == 2


def test_login_delay_keeps_the_next_check_from_coming_sooner(fault_server, fault_account):
    server = fault_server([make_message(1)], login_delay=3600)
    account = synced(fault_account(server, poll_interval=300), 1)
    check.check_accounts([account.id])
    account.refresh_from_db()
    assert (account.next_poll_at - account.last_success_at).total_seconds() >= 3600


# --- Beat: claiming and batching ------------------------------------------------------------


def test_beat_claims_every_due_account_once_and_enqueues_checks_in_batches(alice, monkeypatch, settings):
    settings.WEBPOP_CHECK_BATCH = 3
    accounts = [make_account(alice, username=f"u{n}") for n in range(7)]
    batches: list[list[int]] = []
    monkeypatch.setattr(tasks.check_accounts, "delay", batches.append)

    assert tasks.poll_due_accounts() == 7
    assert [len(b) for b in batches] == [3, 3, 1]
    assert sorted(i for b in batches for i in b) == sorted(a.id for a in accounts)
    assert tasks.poll_due_accounts() == 0  # claimed: not due again until the check sets the next poll
    assert all(a.next_poll_at > timezone.now() for a in MailAccount.objects.all())


def test_an_account_whose_check_was_lost_is_claimed_again_when_the_claim_lapses(alice, settings):
    settings.WEBPOP_POLL_CLAIM_SECONDS = 40
    account = make_account(alice)
    now = timezone.now()

    assert sync.claim_due_accounts(now=now) == [account.id]  # its check task is then lost with the broker
    assert sync.claim_due_accounts(now=now + dt.timedelta(seconds=39)) == []
    assert sync.claim_due_accounts(now=now + dt.timedelta(seconds=40)) == [account.id]
