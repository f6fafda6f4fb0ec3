"""Incoming rules: matched at ingest in a few queries, runnable on existing mail, per user."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import MailAccount
from mailbox import folders, rules, sync
from mailbox.models import Message, Rule
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def rule(owner, **fields) -> Rule:
    defaults = {"field": "from", "contains": "x", "action": "move", "folder": ""}
    return Rule.objects.create(owner=owner, **{**defaults, **fields})


def stored(account, *messages) -> list[Message]:
    return [store_message(account, raw, f"r{i}") for i, raw in enumerate(messages)]


def test_rules_move_star_mark_read_and_mark_spam_at_ingest(alice):
    account = make_account(alice)
    receipts = folders.create(alice.id, "Receipts")
    rule(alice, field="from", contains="SHOP.example", action="move", folder=receipts.slug)
    rule(alice, field="subject", contains="urgent", action="star")
    rule(alice, field="to", contains="team@", action="read")
    rule(alice, field="subject", contains="viagra", action="spam")
    shop, urgent, team, spam, plain = stored(
        account,
        build_message("Your order", sender="Shop <orders@shop.example>"),
        build_message("URGENT: call me"),
        build_message("Standup", to="team@example.org"),
        build_message("Cheap Viagra"),
        build_message("Hello"),
    )
    rules.apply([shop, urgent, team, spam, plain])
    got = {m.id: (m.folder, m.flagged, m.seen) for m in Message.objects.all()}
    assert got[shop.id] == (receipts.slug, False, False)
    assert got[urgent.id] == ("inbox", True, False)
    assert got[team.id] == ("inbox", False, True)
    assert got[spam.id] == ("spam", False, False)
    assert got[plain.id] == ("inbox", False, False)


def test_the_first_filing_rule_wins_and_flags_add_up(alice):
    account = make_account(alice)
    first, second = folders.create(alice.id, "First"), folders.create(alice.id, "Second")
    rule(alice, contains="carol", folder=first.slug, position=1)
    rule(alice, contains="carol", folder=second.slug, position=2)
    rule(alice, contains="carol", action="star", position=3)
    rule(alice, contains="carol", action="read", position=4)
    (message,) = stored(account, build_message("Hi"))
    rules.apply([message])
    message.refresh_from_db()
    assert (message.folder, message.flagged, message.seen) == (first.slug, True, True)


def test_account_scoped_and_disabled_rules(alice):
    home, work = make_account(alice), make_account(alice, username="work")
    rule(alice, contains="carol", action="star", account=work)
    rule(alice, contains="carol", action="read", enabled=False)
    (from_home,) = stored(home, build_message("A"))
    from_work = store_message(work, build_message("B"), "w1")
    rules.apply([from_home, from_work])
    assert Message.objects.get(id=from_home.id).flagged is False
    assert Message.objects.get(id=from_work.id).flagged is True
    assert not Message.objects.filter(seen=True).exists()


def test_other_users_rules_never_apply(alice, bob):
    rule(bob, contains="carol", action="spam")
    (message,) = stored(make_account(alice), build_message("Hi"))
    rules.apply([message])
    assert Message.objects.get(id=message.id).folder == "inbox"


def test_apply_costs_a_few_queries_per_batch_not_per_message(alice, django_assert_max_num_queries):
    account = make_account(alice)
    folder = folders.create(alice.id, "Lists")
    rule(alice, contains="carol", folder=folder.slug)
    rule(alice, field="subject", contains="3", action="star")
    rule(alice, field="subject", contains="1", action="read")
    batch = stored(account, *[build_message(f"Message {i}", f"body {i}") for i in range(30)])
    with django_assert_max_num_queries(6):
        rules.apply(batch)
    assert Message.objects.filter(folder=folder.slug).count() == 30


def test_run_on_existing_changes_matching_mail_but_not_trash_or_spam(alice):
    account = make_account(alice)
    folder = folders.create(alice.id, "Carol")
    inbox, archived, trashed, other = stored(
        account,
        build_message("One"),
        build_message("Two"),
        build_message("Three"),
        build_message("Four", sender="dave@example.net"),
    )
    Message.objects.filter(id=archived.id).update(folder="archive")
    Message.objects.filter(id=trashed.id).update(folder="trash")
    carol = rule(alice, contains="CAROL@", folder=folder.slug)
    assert rules.run_on_existing(alice.id, carol) == 2
    folders_now = dict(Message.objects.values_list("id", "folder"))
    assert folders_now == {inbox.id: folder.slug, archived.id: folder.slug, trashed.id: "trash", other.id: "inbox"}
    star = rule(alice, field="subject", contains="four", action="star")
    assert rules.run_on_existing(alice.id, star) == 1
    assert rules.run_on_existing(alice.id, star) == 0  # already starred


def test_rules_page_adds_runs_and_deletes_rules(alice_client, alice):
    account = make_account(alice)
    folder = folders.create(alice.id, "Carol")
    (message,) = stored(account, build_message("Hi"))
    data = {"field": "from", "contains": "carol", "action": "move", "folder": folder.slug, "account": ""}
    assert alice_client.post(reverse("mailbox:rules"), data).status_code == 302
    saved = Rule.objects.get(owner=alice)
    page = alice_client.get(reverse("mailbox:rules")).content.decode()
    assert "From contains “carol” → Move to folder “Carol”" in page
    response = alice_client.post(reverse("mailbox:rule_run", args=[saved.id]), follow=True)
    assert "1 changed" in response.content.decode()
    assert Message.objects.get(id=message.id).folder == folder.slug
    alice_client.post(reverse("mailbox:rule_delete", args=[saved.id]))
    assert not Rule.objects.exists()


def test_a_move_rule_needs_one_of_the_users_folders(alice_client, alice, bob):
    bobs = folders.create(bob.id, "Bobs")
    data = {"field": "from", "contains": "carol", "action": "move", "folder": bobs.slug, "account": ""}
    assert alice_client.post(reverse("mailbox:rules"), data).status_code == 400
    bobs_account = make_account(bob)
    data = {"field": "from", "contains": "carol", "action": "star", "folder": "inbox", "account": bobs_account.id}
    assert alice_client.post(reverse("mailbox:rules"), data).status_code == 400
    with pytest.raises(rules.RuleError):
        rules.create(alice.id, field="from", contains="x", action="move", folder=bobs.slug)
    assert not Rule.objects.exists()


def test_bob_cannot_see_run_or_delete_alices_rules(alice, bob_client):
    alices = rule(alice, contains="carol", action="star")
    assert "carol" not in bob_client.get(reverse("mailbox:rules")).content.decode()
    assert bob_client.post(reverse("mailbox:rule_run", args=[alices.id])).status_code == 404
    assert bob_client.post(reverse("mailbox:rule_delete", args=[alices.id])).status_code == 404
    assert Rule.objects.filter(id=alices.id).exists()


def test_rule_changes_need_post_and_csrf(alice):
    alices = rule(alice, contains="carol", action="star")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(reverse("mailbox:rule_delete", args=[alices.id])).status_code == 405
    assert client.post(reverse("mailbox:rule_delete", args=[alices.id])).status_code == 403
    assert client.post(reverse("mailbox:rule_run", args=[alices.id])).status_code == 403
    assert Rule.objects.filter(id=alices.id).exists()


@pytest.mark.dovecot
def test_a_real_sync_delivers_to_the_accounts_folder_and_applies_rules(alice, pop_user, dovecot_account):
    lists = folders.create(alice.id, "Lists")
    account = dovecot_account()
    MailAccount.objects.filter(id=account.id).update(deliver_to="archive")
    rule(alice, field="subject", contains="[announce]", folder=lists.slug)
    rule(alice, field="from", contains="boss@", action="star")
    pop_user.deliver(build_message("[announce] Release 2.0", message_id="<a@x>"))
    pop_user.deliver(build_message("Meeting", sender="Boss <boss@corp.test>", message_id="<b@x>"))
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, 2)
    got = {m.subject: (m.folder, m.flagged) for m in Message.objects.filter(account=account)}
    assert got == {"[announce] Release 2.0": (lists.slug, False), "Meeting": ("archive", True)}


@pytest.mark.dovecot
def test_a_failing_rule_never_loses_the_synced_mail(alice, pop_user, dovecot_account, monkeypatch):
    def broken(messages):
        raise RuntimeError("rule engine exploded")

    monkeypatch.setattr(rules, "apply", broken)
    pop_user.deliver(build_message("Still here", message_id="<c@x>"))
    account = dovecot_account()
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, 1)
    assert Message.objects.get(account=account).folder == "inbox"
