"""Spam filtering with a real rspamd (tests/rspamd.py): mail fetched from a real Dovecot, scanned after storage.

GTUBE goes to Spam, ordinary mail stays in the Inbox; "Spam" / "Not spam" train the user's own
Bayes, and the next similar message lands where the training says, for that user only; with
rspamd stopped every message still arrives and is scanned once it is back.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from contacts import actions as contacts_actions
from mailbox import actions, sync
from mailbox import tasks as mailbox_tasks
from mailbox.models import Folder, Message
from spam import health, learning, scanning
from spam.models import PendingLearn, PendingScan, SafeSender, ScanHour, SpamSettings
from tests.factories import build_message, make_account, store_message
from tests.rspamd import GTUBE

pytestmark = [pytest.mark.django_db, pytest.mark.dovecot, pytest.mark.sqlite]

SPAMMY = [
    "replica", "watches", "rolex", "discount", "luxury", "cheap", "offer", "limited", "shipping", "free", "order",
    "today", "bargain", "deal", "exclusive", "genuine", "swiss",
]  # fmt: skip
HAMMY = [
    "meeting", "notes", "project", "roadmap", "budget", "review", "hiring", "plan", "quarterly", "team", "agenda",
    "minutes", "schedule", "engineering", "design",
]  # fmt: skip


def _text(rng: random.Random, words: list[str], count: int = 40) -> str:
    return " ".join(rng.choice(words) for _ in range(count)).capitalize() + "."


def offer(rng: random.Random, n: int) -> bytes:
    return build_message(
        f"Exclusive deal {n}", _text(rng, SPAMMY), sender="Watch Shop <offers@watches.example>",
        message_id=f"<offer-{n}-{rng.random()}@watches.example>",
    )  # fmt: skip


def notes(rng: random.Random, n: int) -> bytes:
    return build_message(
        f"Project notes {n}", _text(rng, HAMMY), sender="Bob <bob@work.example>",
        message_id=f"<notes-{n}-{rng.random()}@work.example>",
    )  # fmt: skip


def gtube() -> bytes:
    return build_message("Test spam mail (GTUBE)", f"This is the GTUBE.\n\n{GTUBE}\n", sender="Spam <x@spam.example>")


def ordinary() -> bytes:
    return build_message("Lunch on Friday?", "Hi Alice,\n\nshall we have lunch on Friday?\n\nCarol")


def folders_by_subject(account) -> dict[str, str]:
    return dict(Message.objects.filter(account=account).values_list("subject", "folder"))


def later(minutes: int = 5) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_gtube_goes_to_spam_and_ordinary_mail_stays_in_the_inbox(rspamd, pop_user, dovecot_account, spam_enqueued):
    pop_user.deliver(gtube())
    pop_user.deliver(ordinary())
    account = dovecot_account()
    result = mailbox_tasks.sync_account(account.id)
    assert result["fetched"] == 2
    assert spam_enqueued == ["scan"]  # woken after the sync; the rows were written with the mail
    assert PendingScan.objects.count() == 2
    assert set(folders_by_subject(account).values()) == {Folder.INBOX}  # stored first, judged after

    report = scanning.scan_due()
    assert (report.judged, report.spam, report.failed) == (2, 1, 0)
    assert folders_by_subject(account) == {"Test spam mail (GTUBE)": Folder.SPAM, "Lunch on Friday?": Folder.INBOX}
    judged = Message.objects.get(account=account, folder=Folder.SPAM)
    assert (judged.spam_verdict, judged.spam_score) == ("spam", 15.0)
    assert not PendingScan.objects.exists()
    assert scanning.scan_due().judged == 0  # judged once
    hour = ScanHour.objects.get()
    assert (hour.scanned, hour.spam, hour.rspamd_scans) == (2, 1, 2)
    assert hour.request_seconds > 0
    assert health.rspamd_health().failing_since is None


def test_training_decides_the_next_similar_message_for_that_user_only(
    rspamd, alice, bob, spam_enqueued, django_capture_on_commit_callbacks
):
    rng = random.Random(7)
    home, bobs = make_account(alice), make_account(bob)
    offers = [store_message(home, offer(rng, n), f"o{n}") for n in range(5)]
    letters = [store_message(home, notes(rng, n), f"n{n}") for n in range(5)]
    assert scanning.scan_due().spam == 0  # nothing learned yet: all of it in the Inbox
    assert set(Message.objects.filter(owner=alice).values_list("folder", flat=True)) == {Folder.INBOX}

    with django_capture_on_commit_callbacks(execute=True):
        actions.move(alice.id, [m.id for m in offers + letters], Folder.SPAM)  # "Spam" on all of them…
    with django_capture_on_commit_callbacks(execute=True):
        actions.move(alice.id, [m.id for m in letters], Folder.INBOX)  # …then "Not spam" on the letters
    assert spam_enqueued.count("learn") == 2  # a worker is woken after each commit
    assert dict(PendingLearn.objects.values_list("message_id", "spam")) == {
        **{m.id: True for m in offers}, **{m.id: False for m in letters}
    }  # fmt: skip
    report = learning.learn_due()
    # Once it has enough of both, rspamd skips what its Bayes already files where the user did.
    assert (report.learned + report.known, report.failed) == (10, 0)
    assert report.learned >= 6
    assert not PendingLearn.objects.exists()

    next_offer = store_message(home, offer(rng, 99), "o99")
    next_letter = store_message(home, notes(rng, 99), "n99")
    bobs_offer = store_message(bobs, offer(rng, 99), "b-o99")
    scanning.scan_due()
    assert Message.objects.get(id=next_offer.id).folder == Folder.SPAM
    assert Message.objects.get(id=next_letter.id).folder == Folder.INBOX
    assert Message.objects.get(id=bobs_offer.id).folder == Folder.INBOX  # alice's training is hers


def test_rspamd_stopped_mid_run_loses_nothing_and_scans_when_back(rspamd, pop_user, dovecot_account):
    account = dovecot_account()
    pop_user.deliver(ordinary())
    sync.sync_account(account.id)
    assert scanning.scan_due().judged == 1

    rspamd.stop()
    pop_user.deliver(gtube())
    pop_user.deliver(build_message("Minutes", "The minutes of Tuesday.", sender="Dan <dan@example.net>"))
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, 2)  # ingest does not wait for rspamd
    report = scanning.scan_due()
    assert (report.judged, report.postponed, report.failed) == (0, 2, 0)
    assert "Connection refused" in report.unavailable
    assert set(folders_by_subject(account).values()) == {Folder.INBOX}
    assert health.rspamd_health().failing_since is not None
    assert list(PendingScan.objects.values_list("attempts", flat=True)) == [0, 0]  # not the messages' fault

    rspamd.start()
    assert scanning.scan_due().judged == 0  # put back until the next try
    report = scanning.scan_due(now=later())
    assert (report.judged, report.spam) == (2, 1)
    assert folders_by_subject(account) == {
        "Lunch on Friday?": Folder.INBOX, "Test spam mail (GTUBE)": Folder.SPAM, "Minutes": Folder.INBOX,
    }  # fmt: skip
    assert not PendingScan.objects.exists()
    assert health.rspamd_health().failing_since is None


def test_training_waits_while_rspamd_is_down(rspamd, alice):
    message = store_message(make_account(alice), gtube(), "g1")
    scanning.scan_due()
    actions.move(alice.id, [message.id], Folder.INBOX)  # "Not spam"
    rspamd.stop()
    report = learning.learn_due()
    assert (report.learned, report.postponed) == (0, 1)
    assert PendingLearn.objects.get().attempts == 0
    rspamd.start()
    assert learning.learn_due(now=later()).learned == 1
    assert not PendingLearn.objects.exists()


def test_mail_from_people_the_user_wrote_to_or_marked_not_spam_is_never_filed_as_spam(rspamd, alice):
    account = make_account(alice)
    contacts_actions.record(alice.id, [("Carol", "carol@example.net")], timezone.now())
    from_carol = store_message(account, build_message("GTUBE from Carol", GTUBE, sender="carol@example.net"), "c1")
    first = store_message(account, build_message("First", GTUBE, sender="Shop <news@shop.example>"), "s1")
    scanning.scan_due()
    assert Message.objects.get(id=from_carol.id).folder == Folder.INBOX
    assert Message.objects.get(id=first.id).folder == Folder.SPAM

    actions.move(alice.id, [first.id], Folder.INBOX)  # "Not spam"
    assert SafeSender.objects.filter(owner=alice, address="news@shop.example").exists()
    second = store_message(account, build_message("Second", GTUBE, sender="Shop <NEWS@shop.example>"), "s2")
    scanning.scan_due()
    assert Message.objects.get(id=second.id).folder == Folder.INBOX

    actions.move(alice.id, [second.id], Folder.SPAM)  # changed her mind: "Spam"
    assert not SafeSender.objects.filter(owner=alice).exists()
    third = store_message(account, build_message("Third", GTUBE, sender="news@shop.example"), "s3")
    scanning.scan_due()
    assert Message.objects.get(id=third.id).folder == Folder.SPAM


def test_a_users_thresholds_compare_rspamds_score(rspamd, alice):
    account = make_account(alice)
    SpamSettings.objects.create(user=alice, spam_score=100.0, probable_score=10.0)
    message = store_message(account, gtube(), "g1")  # 15 points: above her "probably", below her "Spam"
    scanning.scan_due()
    message.refresh_from_db()
    assert (message.folder, message.spam_verdict, message.spam_score) == (Folder.INBOX, "probable", 15.0)


def test_a_message_a_rule_or_the_user_filed_meanwhile_is_only_marked(rspamd, alice):
    account = make_account(alice)
    message = store_message(account, gtube(), "g1")
    actions.move(alice.id, [message.id], Folder.ARCHIVE)
    scanning.scan_due()
    message.refresh_from_db()
    assert (message.folder, message.spam_verdict) == (Folder.ARCHIVE, "probable")


def test_sent_and_imported_mail_is_not_judged(rspamd, alice):
    account = make_account(alice)
    sent = store_message(account, gtube(), "webpop sent 1")
    Message.objects.filter(id=sent.id).update(folder=Folder.SENT)
    report = scanning.scan_due()
    assert (report.judged, report.counts.scanned, report.counts.rspamd_scans) == (1, 0, 0)
    assert Message.objects.get(id=sent.id).folder == Folder.SENT
