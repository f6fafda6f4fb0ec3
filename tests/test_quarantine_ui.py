"""Users see, retry and download quarantined messages; nobody else can."""

import pytest
from django.urls import reverse

from mailbox import sync
from mailbox.models import FetchFailure, Message
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def failure(alice):
    account = make_account(alice)
    message = store_message(account, build_message("kept raw"), "uid-raw")
    return FetchFailure.objects.create(
        account=account, uidl="uid-9", size=1234, attempts=3, error="boom", raw_path=message.raw_path,
        quarantined_at=message.received_at,
    )  # fmt: skip


def test_account_page_lists_quarantined_messages(alice_client, failure):
    page = alice_client.get(reverse("accounts:detail", args=[failure.account_id])).content.decode()
    assert "Quarantined after 3 tries" in page
    assert reverse("accounts:failure_retry", args=[failure.account_id, failure.id]) in page


def test_retry_forgets_the_failure_and_polls_soon(alice_client, failure):
    response = alice_client.post(reverse("accounts:failure_retry", args=[failure.account_id, failure.id]))
    assert response.status_code == 302
    assert not FetchFailure.objects.exists()


def test_raw_bytes_of_a_quarantined_message_can_be_downloaded(alice_client, failure):
    response = alice_client.get(reverse("accounts:failure_raw", args=[failure.account_id, failure.id]))
    assert response.status_code == 200
    assert b"kept raw" in b"".join(response.streaming_content)
    assert response["Content-Disposition"].startswith("attachment")


def test_bob_cannot_see_retry_or_download_alices_failures(bob_client, failure):
    args = [failure.account_id, failure.id]
    assert bob_client.get(reverse("accounts:failure_raw", args=args)).status_code == 404
    assert bob_client.post(reverse("accounts:failure_retry", args=args)).status_code == 404
    assert FetchFailure.objects.count() == 1


def test_retry_requires_post(alice_client, failure):
    assert alice_client.get(reverse("accounts:failure_retry", args=[failure.account_id, failure.id])).status_code == 405


def test_retry_failure_keeps_messages(failure):
    sync.retry_failure(failure)
    assert Message.objects.count() == 1
