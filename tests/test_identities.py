"""Sending identities: which address a reply goes out from, signatures above or below the quote, the editor."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from outgoing import actions as outgoing_actions
from outgoing import identities, send
from outgoing.models import Identity, OutgoingMessage, SmtpSettings
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def sending_account(owner, address="alice@example.org", signature="Alice Main", **extra):
    account = make_account(owner, username=address)
    outgoing_actions.save(
        account,
        {"host": "smtp.example.org", "port": 587, "security": "starttls", "auth": "same", "from_email": address,
         "from_name": "Alice", "signature": signature, **extra},
    )  # fmt: skip
    return account


def alias(owner, account, address="Sales@Example.org", signature="Alice for Sales", placement="above"):
    data = {"address": address, "name": "Alice (Sales)", "signature": signature, "signature_placement": placement}
    return identities.save(owner, account, None, data)


def received(account, uidl="u1", cc="", **headers):
    defaults = {"sender": "Carol <carol@example.net>", "to": "alice@example.org", "message_id": f"<{uidl}@example.net>"}
    raw = build_message("Plans", "Shall we meet?\n", **{**defaults, **headers})
    if cc:
        raw = raw.replace(b"Subject:", f"Cc: {cc}\r\nSubject:".encode(), 1)
    return store_message(account, raw, uidl)


def test_reply_goes_out_from_the_alias_it_was_sent_to_whatever_its_case(alice):
    account = sending_account(alice)
    sales = alias(alice, account)
    message = received(account, to="SALES@example.ORG")
    reply = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY)
    assert reply.identity_id == sales.id
    assert "Alice for Sales" in reply.body and "Alice Main" not in reply.body
    draft = send.draft_of(reply, SmtpSettings.objects.get(account=account))
    assert (draft.from_name, draft.from_email) == ("Alice (Sales)", "Sales@Example.org")


def test_reply_finds_the_alias_in_cc_and_delivered_to(alice):
    account = sending_account(alice)
    sales = alias(alice, account)
    in_cc = received(account, "u1", to="team@example.net", cc="sales@example.org")
    assert send.start_reply(alice, in_cc, OutgoingMessage.Kind.REPLY).identity_id == sales.id
    raw = build_message("List", "x", sender="carol@example.net", to="list@example.net", message_id="<l@example.net>")
    raw = raw.replace(b"Subject:", b"Delivered-To: sales@example.org\r\nSubject:", 1)
    via_list = store_message(account, raw, "u2")
    assert send.start_reply(alice, via_list, OutgoingMessage.Kind.REPLY).identity_id == sales.id


def test_reply_to_mail_for_no_identity_uses_the_account_main_identity(alice):
    account = sending_account(alice)
    alias(alice, account)
    message = received(account, to="someone-else@example.net")
    reply = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY)
    assert reply.identity == Identity.objects.get(account=account, is_default=True)
    assert "Alice Main" in reply.body and "Alice for Sales" not in reply.body
    assert send.draft_of(reply, SmtpSettings.objects.get(account=account)).from_email == "alice@example.org"


def test_reply_from_another_account_whose_identity_the_mail_was_sent_to(alice):
    receiving = sending_account(alice)
    other = sending_account(alice, address="alice@work.example", signature="Alice at Work")
    message = received(receiving, to="ALICE@work.example")
    reply = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY)
    assert reply.account_id == other.id and "Alice at Work" in reply.body


def test_reply_all_leaves_out_every_identity_address(alice):
    account = sending_account(alice)
    alias(alice, account)
    alias(alice, account, address="info@example.org")
    message = received(account, to="Sales@example.org, dan@example.net", cc="INFO@example.org, alice@example.org")
    reply = send.start_reply(alice, message, OutgoingMessage.Kind.REPLY_ALL)
    assert reply.to == "Carol <carol@example.net>"
    assert reply.cc == "dan@example.net"


def test_signature_below_the_quote_when_the_identity_says_so(alice):
    account = sending_account(alice)
    alias(alice, account, signature="-- \nBelow Sig", placement="below")
    reply = send.start_reply(alice, received(account, to="sales@example.org"), OutgoingMessage.Kind.REPLY)
    quote_at, signature_at = reply.body.index("> Shall we meet?"), reply.body.index("-- \nBelow Sig")
    assert quote_at < signature_at
    assert reply.body.count("-- \n") == 1  # the signature's own "-- " line is not doubled
    assert reply.body.endswith("-- \nBelow Sig\n")


def test_signature_above_the_quote_by_default(alice):
    account = sending_account(alice)
    reply = send.start_reply(alice, received(account), OutgoingMessage.Kind.FORWARD)
    assert reply.body.index("-- \nAlice Main") < reply.body.index("Shall we meet?")


def test_migration_gives_each_sending_account_its_main_identity(alice):
    account = make_account(alice)
    SmtpSettings.objects.create(
        account=account, host="smtp.example.org", port=587, from_email="Old@Example.org", from_name="Old", signature="S"
    )
    migration = importlib.import_module("outgoing.migrations.0005_identities")
    migration.default_identities(apps, None)
    identity = Identity.objects.get(account=account)
    assert (identity.address, identity.name, identity.signature, identity.is_default) == (
        "Old@Example.org",
        "Old",
        "S",
        True,
    )
    assert identity.signature_placement == "above"


def test_saving_sending_settings_keeps_the_main_identity_equal(alice):
    account = sending_account(alice)
    sending_account_data = {"host": "smtp.example.org", "port": 587, "security": "starttls", "auth": "same"}
    outgoing_actions.save(account, {**sending_account_data, "from_email": "new@example.org", "signature": "New"})
    main = Identity.objects.get(account=account)
    assert (main.address, main.signature) == ("new@example.org", "New")


def test_editing_the_main_identity_updates_the_sending_settings(alice, alice_client):
    account = sending_account(alice)
    main = Identity.objects.get(account=account, is_default=True)
    response = alice_client.post(
        reverse("outgoing:identity", args=[account.id, main.id]),
        {"address": "me@example.org", "name": "Me", "signature": "Hi", "signature_placement": "below"},
    )
    assert response.status_code == 302
    smtp = SmtpSettings.objects.get(account=account)
    assert (smtp.from_email, smtp.from_name, smtp.signature) == ("me@example.org", "Me", "Hi")


def test_editor_adds_lists_and_deletes_an_alias_but_not_the_main_one(alice, alice_client):
    account = sending_account(alice)
    add = reverse("outgoing:identity_add", args=[account.id])
    data = {"address": "sales@example.org", "name": "Sales", "signature": "", "signature_placement": "above"}
    assert alice_client.post(add, data).status_code == 302
    duplicate = alice_client.post(add, {**data, "address": "SALES@example.org"})
    assert duplicate.status_code == 400 and "already sends as" in duplicate.content.decode()
    page = alice_client.get(reverse("outgoing:settings", args=[account.id])).content.decode()
    assert "Sales &lt;sales@example.org&gt;" in page
    sales = Identity.objects.get(account=account, is_default=False)
    main = Identity.objects.get(account=account, is_default=True)
    alice_client.post(reverse("outgoing:identity_delete", args=[main.id]))
    alice_client.post(reverse("outgoing:identity_delete", args=[sales.id]))
    assert list(Identity.objects.filter(account=account)) == [main]


def test_compose_lists_every_identity_and_sends_as_the_chosen_one(alice, alice_client):
    account = sending_account(alice)
    sales = alias(alice, account)
    page = alice_client.get(reverse("outgoing:compose")).content.decode()
    assert "Alice (Sales) &lt;Sales@Example.org&gt;" in page and "Alice &lt;alice@example.org&gt;" in page
    response = alice_client.post(
        reverse("outgoing:compose"),
        {"identity": sales.id, "to": "bob@example.net", "subject": "Hi", "body": "Hello", "action": "save"},
    )
    assert response.status_code == 302
    row = OutgoingMessage.objects.get()
    assert (row.account_id, row.identity_id) == (account.id, sales.id)


def test_another_users_identity_is_refused(alice, bob, alice_client):
    bobs = alias(bob, sending_account(bob, address="bob@example.net"), address="bob-sales@example.net")
    sending_account(alice)
    response = alice_client.post(
        reverse("outgoing:compose"), {"identity": bobs.id, "to": "x@example.net", "action": "save"}
    )
    assert response.status_code == 400 and not OutgoingMessage.objects.exists()
