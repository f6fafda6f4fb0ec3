"""A kept conversation page is replaced when an unsubscribe's progress or the sender trust line's look-alikes change.

The page shows how an unsubscribe from the message's list stands (unsubscribe/templatetags: the request's state,
or for one sent by e-mail its outgoing message's) and warns of a sender whose domain looks like one of the
user's contacts' or their own addresses' (spam/sender.py). Each case keeps alice's page (tests/
test_message_page_cache.py), makes one change through the function the app calls for it, and loads the page
again: a writer that forgets its ``pagecache.touch_message_pages`` leaves the old page, and its case fails.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contacts import actions as contacts_actions
from contacts.actions import Card
from contacts.models import Contact
from mailbox import store
from outgoing import actions as outgoing_actions
from outgoing import identities, send
from outgoing import tasks as outgoing_tasks
from outgoing.models import OutgoingMessage, OutgoingState, SmtpSettings
from tests.factories import build_message, make_account, store_message
from tests.test_message_page_cache import assert_replaced, kept, rendered, url_of
from tests.test_unsubscribe import newsletter
from unsubscribe import actions as unsubscribe_actions
from unsubscribe import tasks as unsubscribe_tasks
from unsubscribe.models import UnsubscribeRequest

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

OFFERED = b'">Unsubscribe</a>'
WORKING = "Unsubscribing…".encode()
DONE = b'<span class="badge ok">Unsubscribed</span>'
FAILED = b"Unsubscribing did not work"


# --- Unsubscribing in one click ---------------------------------------------------------------------


@pytest.fixture
def one_click(alice):
    """A newsletter offering one-click unsubscribe at a private address nothing ever connects to."""
    return newsletter(make_account(alice), "<https://127.0.0.1:9/u/12>")


def test_asking_to_unsubscribe_replaces_the_page(alice, alice_client, one_click):
    assert OFFERED in kept(alice_client, one_click)
    unsubscribe_actions.start(alice, one_click.id, "one_click")
    assert_replaced(alice_client, one_click, shows=WORKING, gone=OFFERED)


def test_a_one_click_request_that_worked_replaces_the_page(alice, alice_client, list_server, unsubscribe_enqueued):
    message = newsletter(make_account(alice), f"<{list_server.url('/u/12')}>")
    unsubscribe_actions.start(alice, message.id, "one_click")
    assert WORKING in kept(alice_client, message)
    request = UnsubscribeRequest.objects.get(message=message)
    assert unsubscribe_tasks.unsubscribe.apply(args=[request.id]).get() == "done"
    assert_replaced(alice_client, message, shows=DONE, gone=WORKING)


def test_a_one_click_request_that_failed_replaces_the_page(alice, alice_client, one_click, settings):
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = False  # as in production: the private address is refused
    request = unsubscribe_actions.start(alice, one_click.id, "one_click")
    kept(alice_client, one_click)
    assert unsubscribe_tasks.unsubscribe.apply(args=[request.id]).get() == "failed"
    assert_replaced(alice_client, one_click, shows=FAILED, gone=WORKING)


def test_a_request_stopped_by_the_sweep_replaces_the_page(alice, alice_client, one_click, unsubscribe_enqueued):
    request = unsubscribe_actions.start(alice, one_click.id, "one_click")
    long_ago = timezone.now() - unsubscribe_actions.CLAIM_LEASE - dt.timedelta(minutes=1)
    UnsubscribeRequest.objects.filter(id=request.id).update(
        state="running", claimed_at=long_ago, attempts=unsubscribe_actions.MAX_ATTEMPTS
    )  # its worker died during the last try
    assert WORKING in kept(alice_client, one_click)
    assert unsubscribe_tasks.resume_unsubscribes.apply().get() == 0
    assert UnsubscribeRequest.objects.get(id=request.id).state == "failed"
    assert_replaced(alice_client, one_click, shows=FAILED, gone=WORKING)


def test_an_idle_sweep_keeps_the_page(alice, alice_client, one_click):
    unsubscribe_actions.start(alice, one_click.id, "one_click")  # published at once: nothing for the sweep
    kept(alice_client, one_click)
    assert unsubscribe_tasks.resume_unsubscribes.apply().get() == 0
    assert not rendered(alice_client.get(url_of(one_click)))


# --- Unsubscribing by e-mail --------------------------------------------------------------------------


@pytest.fixture
def by_mail(alice, smtp_account):
    """A newsletter offering to unsubscribe by e-mail, received by an account that sends."""
    account = smtp_account()
    identities.of_user(alice)  # the sending identity the fixture's settings lack, made now and not on a page
    return newsletter(account, "<mailto:leave@weekly.example?subject=leave>", post="")


def mailed(alice, message) -> OutgoingMessage:
    """Unsubscribe by e-mail; the outgoing message, queued to leave at once."""
    request = unsubscribe_actions.start(alice, message.id, "mailto")
    return request.outgoing


def test_asking_to_unsubscribe_by_email_replaces_the_page(alice, alice_client, by_mail):
    assert OFFERED in kept(alice_client, by_mail)
    mailed(alice, by_mail)
    assert_replaced(alice_client, by_mail, shows=WORKING, gone=OFFERED)


def test_the_unsubscribe_email_sent_replaces_the_page(alice, alice_client, by_mail, smtp_server):
    outgoing = mailed(alice, by_mail)
    kept(alice_client, by_mail)
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    assert_replaced(alice_client, by_mail, shows=DONE, gone=WORKING)


def test_the_unsubscribe_email_sent_but_not_filed_replaces_the_page(alice, alice_client, by_mail, smtp_server):
    outgoing = mailed(alice, by_mail)
    contacts_actions.record(alice.id, [("", "leave@weekly.example")], timezone.now())  # sending it adds no contact
    kept(alice_client, by_mail)
    spool = store.root() / "tmp"
    for leftover in spool.iterdir():
        leftover.unlink()
    spool.rmdir()
    spool.write_bytes(b"")  # the copy for Sent cannot be spooled
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    assert OutgoingMessage.objects.get(id=outgoing.id).error_class == "not_filed"
    assert_replaced(alice_client, by_mail, shows=DONE, gone=WORKING)


def test_the_unsubscribe_email_refused_replaces_the_page(alice, alice_client, by_mail, smtp_server):
    outgoing = mailed(alice, by_mail)
    kept(alice_client, by_mail)
    smtp_server.refuse_recipient("leave@weekly.example", 550, "5.1.1 No such list")
    assert send.deliver(outgoing.id) is send.Outcome.FAILED
    assert_replaced(alice_client, by_mail, shows=FAILED, gone=WORKING)


def test_the_unsubscribe_email_given_up_replaces_the_page(alice, alice_client, by_mail):
    outgoing = mailed(alice, by_mail)
    kept(alice_client, by_mail)
    assert send.give_up(outgoing.id)
    assert_replaced(alice_client, by_mail, shows=FAILED, gone=WORKING)


def test_the_unsubscribe_email_out_of_tries_replaces_the_page(alice, alice_client, by_mail, send_enqueued):
    outgoing = mailed(alice, by_mail)
    OutgoingMessage.objects.filter(id=outgoing.id).update(attempts=send.MAX_ATTEMPTS)
    kept(alice_client, by_mail)
    assert outgoing_tasks.dispatch_due_sends.apply().get() == 0
    assert OutgoingMessage.objects.get(id=outgoing.id).state == OutgoingState.FAILED
    assert_replaced(alice_client, by_mail, shows=FAILED, gone=WORKING)


def test_the_unsubscribe_email_sent_again_and_taken_back_replaces_the_page(alice, alice_client, by_mail):
    outgoing = mailed(alice, by_mail)
    send.give_up(outgoing.id)
    assert FAILED in kept(alice_client, by_mail)
    outgoing_actions.queue(alice, outgoing.id, delay=60)  # sent again from the Outbox, with an Undo window
    assert_replaced(alice_client, by_mail, shows=WORKING, gone=FAILED)
    kept(alice_client, by_mail)
    assert outgoing_actions.undo(alice, outgoing.id)
    assert_replaced(alice_client, by_mail, shows=FAILED, gone=WORKING)


def test_an_ordinary_send_keeps_the_page(alice, alice_client, by_mail, smtp_server):
    draft = send.save_draft(alice, None, account=by_mail.account, to="bob@example.net", subject="Hi", body="Hi.\n")
    kept(alice_client, by_mail)
    outgoing_actions.queue(alice, draft.id, delay=0)
    smtp_server.refuse_recipient("bob@example.net", 550, "5.1.1 No such user")
    assert send.deliver(draft.id) is send.Outcome.FAILED
    assert send.dispatch_due() == []
    assert not rendered(alice_client.get(url_of(by_mail))), "no unsubscribe sent it: the page is still kept"


# --- The sender trust line: look-alikes of contacts' domains ---------------------------------------------

LOOKALIKE = b"looks like paypal.com, but it is a different domain"


@pytest.fixture
def spoofed(alice):
    """Mail from p\u0430ypal.com (a Cyrillic \u0430): a look-alike of paypal.com once that is a known domain."""
    raw = build_message("Your account", sender="PayPal <service@xn--pypal-4ve.com>", message_id="<s@example.net>")
    return store_message(make_account(alice), raw, "s1")


@pytest.fixture
def paypal_contact(alice) -> Contact:
    contact, _taken = contacts_actions.create(alice.id, Card(name="Pay", emails=["service@paypal.com"]))
    return contact


def test_a_new_contact_replaces_the_page(alice, alice_client, spoofed):
    assert LOOKALIKE not in kept(alice_client, spoofed)
    contacts_actions.create(alice.id, Card(name="Pay", emails=["service@paypal.com"]))
    assert_replaced(alice_client, spoofed, shows=LOOKALIKE)


def test_a_contacts_changed_address_replaces_the_page(alice, alice_client, spoofed, paypal_contact):
    assert LOOKALIKE in kept(alice_client, spoofed)
    contacts_actions.update(alice.id, paypal_contact.id, Card(name="Pay", emails=["service@example.net"]))
    assert_replaced(alice_client, spoofed, gone=LOOKALIKE)


def test_a_deleted_contact_replaces_the_page(alice, alice_client, spoofed, paypal_contact):
    assert LOOKALIKE in kept(alice_client, spoofed)
    assert contacts_actions.delete(alice.id, paypal_contact.id)
    assert_replaced(alice_client, spoofed, gone=LOOKALIKE)


def test_imported_cards_replace_the_page(alice, alice_client, spoofed):
    kept(alice_client, spoofed)
    contacts_actions.import_cards(alice.id, [Card(name="Pay", emails=["service@paypal.com"])])
    assert_replaced(alice_client, spoofed, shows=LOOKALIKE)


def test_an_imported_card_merged_into_a_contact_replaces_the_page(alice, alice_client, spoofed):
    contacts_actions.create(alice.id, Card(name="Pay", emails=["known@example.net"]))
    kept(alice_client, spoofed)
    done = contacts_actions.import_cards(alice.id, [Card(emails=["known@example.net", "service@paypal.com"])])
    assert done == {"created": 0, "updated": 1}
    assert_replaced(alice_client, spoofed, shows=LOOKALIKE)


def test_writing_to_a_new_address_replaces_the_page_and_to_a_known_one_keeps_it(alice, alice_client, spoofed):
    contacts_actions.record(alice.id, [("Carol", "carol@example.net")], timezone.now())
    kept(alice_client, spoofed)
    contacts_actions.record(alice.id, [("Carol", "carol@example.net")], timezone.now())  # ranked up: no new domain
    assert not rendered(alice_client.get(url_of(spoofed)))
    contacts_actions.record(alice.id, [("PayPal", "service@paypal.com")], timezone.now())
    assert_replaced(alice_client, spoofed, shows=LOOKALIKE)


@pytest.fixture
def admin_client(django_user_model) -> Client:
    admin = django_user_model.objects.create_superuser("root", "root@example.org")
    client = Client()
    client.force_login(admin)
    return client


def test_a_contact_deleted_in_the_admin_replaces_the_page(alice_client, admin_client, spoofed, paypal_contact):
    assert LOOKALIKE in kept(alice_client, spoofed)
    url = reverse("admin:contacts_contact_delete", args=[paypal_contact.id])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Contact.objects.exists()
    assert_replaced(alice_client, spoofed, gone=LOOKALIKE)


def test_contacts_deleted_from_the_admin_list_replace_the_page(alice_client, admin_client, spoofed, paypal_contact):
    assert LOOKALIKE in kept(alice_client, spoofed)
    data = {"action": "delete_selected", "_selected_action": [paypal_contact.id], "post": "yes"}
    assert admin_client.post(reverse("admin:contacts_contact_changelist"), data).status_code == 302
    assert not Contact.objects.exists()
    assert_replaced(alice_client, spoofed, gone=LOOKALIKE)


# --- The sender trust line: look-alikes of the user's own addresses ----------------------------------------

OWN_LOOKALIKE = b"looks like company.example, but it is a different domain"
SMTP = {"host": "smtp.example.org", "port": 587, "security": "starttls", "auth": "same", "from_name": "Alice"}


@pytest.fixture
def sending(alice):
    """An account that sends as alice@example.org."""
    account = make_account(alice, username="alice@example.org")
    outgoing_actions.save(account, {**SMTP, "from_email": "alice@example.org"})
    return account


@pytest.fixture
def from_boss(sending):
    """Mail from cornpany.example: a look-alike of company.example once the user sends from there."""
    return store_message(sending, build_message("Urgent", sender="Boss <ceo@cornpany.example>"), "b1")


def test_sending_settings_with_a_new_address_replace_the_page(alice_client, sending, from_boss):
    assert OWN_LOOKALIKE not in kept(alice_client, from_boss)
    outgoing_actions.save(sending, {**SMTP, "from_email": "alice@company.example"})
    assert_replaced(alice_client, from_boss, shows=OWN_LOOKALIKE)


def test_a_new_alias_replaces_the_page(alice, alice_client, sending, from_boss):
    kept(alice_client, from_boss)
    identities.save(alice, sending, None, {"address": "sales@company.example", "name": "Sales"})
    assert_replaced(alice_client, from_boss, shows=OWN_LOOKALIKE)


def test_a_deleted_alias_replaces_the_page(alice, alice_client, sending, from_boss):
    sales = identities.save(alice, sending, None, {"address": "sales@company.example", "name": "Sales"})
    assert OWN_LOOKALIKE in kept(alice_client, from_boss)
    assert identities.delete(alice, sales.id)
    assert_replaced(alice_client, from_boss, gone=OWN_LOOKALIKE)


def test_the_identity_made_for_settings_written_elsewhere_replaces_the_page(alice, alice_client, from_boss):
    account = make_account(alice, username="boss-watch")
    kept(alice_client, from_boss)
    SmtpSettings.objects.create(account=account, **SMTP, from_email="alice@company.example")  # as the admin would
    assert not rendered(alice_client.get(url_of(from_boss))), "the settings alone change nothing the page shows"
    identities.of_user(alice)  # as the compose page does
    assert_replaced(alice_client, from_boss, shows=OWN_LOOKALIKE)
