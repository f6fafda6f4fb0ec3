"""The trust line in a message's header, from the trusted Authentication-Results, in English and German."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from contacts import actions as contacts_actions
from mailbox.models import Message
from spam import actions as spam_actions
from spam import scanning, trust
from spam.models import SenderTrust
from tests.factories import make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

AUTHSERV = "mx.provider.example"


def raw(sender: str, *headers: str, subject: str = "Hello") -> bytes:
    lines = [*headers, f"From: {sender}", "To: alice@example.org", f"Subject: {subject}",
             "Date: Thu, 26 Nov 2026 09:00:00 +0000", "Message-ID: <m@example.net>"]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\nHello Alice.\r\n").encode()


def signed(subject: str = "Signed") -> bytes:
    return raw(
        "Example News <news@example.com>",
        f"Authentication-Results: {AUTHSERV}; dkim=pass header.d=example.com header.s=s1;"
        " spf=pass smtp.mailfrom=bounce@example.com; dmarc=pass header.from=example.com",
        "Authentication-Results: attacker.example; dkim=pass header.d=paypal.com",
        subject=subject,
    )


def spoofed(subject: str = "Your account") -> bytes:
    return raw(
        '"service@paypal.com" <service@xn--pypal-4ve.com>',  # pаypal.com, with a Cyrillic а
        f"Authentication-Results: {AUTHSERV}; dkim=fail header.d=xn--pypal-4ve.com; dmarc=fail (p=REJECT)",
        "Reply-To: collect@elsewhere.example",
        subject=subject,
    )


@pytest.fixture
def trusting(alice):
    account = make_account(alice)
    assert spam_actions.set_provider_trust(alice.id, account.id, trust=True, authserv_id=AUTHSERV)
    account.refresh_from_db()
    return account


def page(client, message: Message) -> str:
    response = client.get(reverse("mailbox:message", args=[message.id]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_message_the_trusted_provider_vouches_for_says_signed_by(alice_client, trusting):
    message = store_message(trusting, signed(), "s1")
    scanning.scan_due()
    row = SenderTrust.objects.get(message=message)
    assert (row.checked_by, row.dkim, row.dmarc) == (AUTHSERV, ["example.com"], "pass")
    html = page(alice_client, message)
    assert "Signed by example.com" in html
    assert "sent by a server of example.com" in html
    assert "paypal.com" not in html  # the other server's header counts for nothing
    assert "trust-warning" not in html


def test_warnings_in_english_and_german_and_the_message_is_still_shown(alice, alice_client, trusting):
    contacts_actions.record(alice.id, [("PayPal", "service@paypal.com")], timezone.now())
    message = store_message(trusting, spoofed(), "w1")
    scanning.scan_due()
    html = page(alice_client, message)
    assert "Signed by" not in html
    assert "did not confirm that this message comes from it (DMARC failed)" in html
    assert "The sender's name shows service@paypal.com, but the message comes from service@xn--pypal-4ve.com." in html
    assert "looks like paypal.com, but it is a different domain" in html
    assert "The sender's domain p\u0430ypal.com (xn--pypal-4ve.com) looks like paypal.com" in html
    assert "Replies go to collect@elsewhere.example, not to" in html
    assert html.count('class="trust-warning"') == 4
    assert "Hello Alice." in html  # warnings never hide the message

    alice_client.cookies["django_language"] = "de"
    html = page(alice_client, message)
    assert "Warnung:" in html
    assert "hat nicht bestätigt, dass diese Nachricht von dort kommt (DMARC fehlgeschlagen)" in html
    assert "sieht aus wie paypal.com, ist aber eine andere Domain" in html
    assert "Antworten gehen an collect@elsewhere.example" in html
    assert "Hello Alice." in html


def test_signed_by_in_german_and_in_the_expanded_part(alice_client, trusting):
    message = store_message(trusting, signed(), "s1")
    scanning.scan_due()
    alice_client.cookies["django_language"] = "de"
    response = alice_client.post(reverse("mailbox:message_part", args=[message.id]))
    assert response.status_code == 200
    assert "Signiert von example.com" in response.content.decode()


def test_a_message_scanned_before_shows_no_trust_line_but_its_from_line_is_still_judged(alice_client, trusting):
    message = store_message(trusting, signed(), "s1")
    scanning.scan_due()
    SenderTrust.objects.all().delete()  # as if scanned before sender trust was recorded
    assert "Signed by" not in page(alice_client, message)
    other = store_message(trusting, raw('"support@bank.example" <x@evil.example>'), "n1")
    html = page(alice_client, other)
    assert "The sender's name shows support@bank.example" in html


def test_mail_from_a_contact_is_checked_too_but_never_filed(alice, alice_client, trusting):
    contacts_actions.record(alice.id, [("News", "news@example.com")], timezone.now())
    header = f"Authentication-Results: {AUTHSERV}; dkim=fail header.d=example.com; dmarc=fail header.from=example.com"
    message = store_message(trusting, raw("News <news@example.com>", header), "c1")
    scanning.scan_due()
    message.refresh_from_db()
    assert (message.folder, message.spam_verdict) == ("inbox", "")
    assert "DMARC failed" in page(alice_client, message)


def test_known_domains_are_the_contacts_and_the_users_own(alice, bob):
    from outgoing.models import Identity
    from spam.sender import known_domains

    contacts_actions.record(alice.id, [("Carol", "Carol@Example.NET")], timezone.now())
    Identity.objects.create(account=make_account(alice), address="Alice@Company.example")
    Identity.objects.create(account=make_account(bob), address="bob@elsewhere.example")
    assert known_domains(alice.id) == {"example.net", "company.example"}


def test_a_lookalike_of_the_users_own_domain_is_a_warning(alice, alice_client, trusting):
    from outgoing.models import Identity

    Identity.objects.create(account=trusting, address="alice@company.example")
    message = store_message(trusting, raw("Boss <ceo@cornpany.example>"), "l1")
    assert "looks like company.example, but it is a different domain" in page(alice_client, message)


def test_a_lookalike_of_a_contacts_domain_is_found_by_its_stored_skeleton(alice, alice_client, trusting):
    from contacts.actions import Card
    from contacts.models import ContactEmail

    contact, _taken = contacts_actions.create(alice.id, Card(name="Pay", emails=["service@paypal.com"]))
    assert ContactEmail.objects.get(owner=alice).domain_skeleton == trust.skeleton("paypal.com")
    message = store_message(trusting, raw("PayPal <service@xn--pypal-4ve.com>"), "l2")
    assert "looks like paypal.com, but it is a different domain" in page(alice_client, message)
    # The address changed: its skeleton with it, so the same mail is no longer a lookalike of a known domain.
    contacts_actions.update(alice.id, contact.id, Card(name="Pay", emails=["service@example.net"]))
    assert "but it is a different domain" not in page(alice_client, message)
