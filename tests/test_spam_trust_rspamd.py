"""Sender trust from a real rspamd that verifies DKIM and DMARC against a DNS server of the test's own.

example.com publishes a DKIM key and ``p=reject`` (tests/dkim_mail.py, tests/dnsserver.py); a message
signed with that key shows "Signed by example.com", one signed with another key (a forgery) shows the
DMARC warning. SPF needs the connecting client's address, which mail fetched by POP3 long after
delivery does not carry to rspamd: rspamd leaves it unchecked.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailbox.models import Message
from spam import scanning
from spam.models import SenderTrust
from tests.factories import make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def mail(subject: str, sender: str = "Example News <news@example.com>") -> bytes:
    return (
        f"From: {sender}\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
        f"Date: Sun, 06 Dec 2026 19:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@example.com>\r\n"
        "\r\nHello Alice,\r\n\r\nthe newsletter of this week.\r\n"
    ).encode()


def test_rspamd_vouches_for_a_signed_message_and_warns_of_a_forged_one(rspamd_dkim, dkim_signer, alice, alice_client):
    account = make_account(alice)
    good = store_message(account, dkim_signer.sign(mail("Signed news")), "g1")
    forged = store_message(account, dkim_signer.forge(mail("Forged news")), "f1")
    unsigned = store_message(account, mail("Unsigned", sender="Someone <someone@elsewhere.example>"), "u1")
    report = scanning.scan_due()
    assert report.counts.rspamd_scans == 3, rspamd_dkim.log_tail()

    rows = {row.message_id: row for row in SenderTrust.objects.all()}
    assert (rows[good.id].checked_by, rows[good.id].dkim, rows[good.id].dmarc) == ("rspamd", ["example.com"], "pass")
    assert rows[good.id].spf == ""  # no client address: rspamd leaves SPF unchecked
    assert (rows[forged.id].dkim, rows[forged.id].dkim_failed) == ([], ["example.com"])
    assert (rows[forged.id].dmarc, rows[forged.id].dmarc_policy) == ("fail", "reject")
    assert (rows[unsigned.id].dkim, rows[unsigned.id].dmarc) == ([], "none")  # no DMARC record there

    def page(message: Message) -> str:
        response = alice_client.get(reverse("mailbox:message", args=[message.id]))
        assert response.status_code == 200
        return response.content.decode()

    html = page(good)
    assert "Signed by example.com" in html and "trust-warning" not in html
    html = page(forged)
    assert "Signed by" not in html
    assert "example.com did not confirm that this message comes from it (DMARC failed)" in html
    assert "the newsletter of this week." in html
    html = page(unsigned)
    assert "Signed by" not in html and "trust-warning" not in html
