"""End to end on Redis with a real worker: Dovecot has new mail, a sync stores it, the browser's push service gets it.

The push service on loopback (tests/push_service.py) checks the VAPID signature and decrypts the
RFC 8291 payload: what it reads is what the browser would show.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailbox import tasks as mailbox_tasks
from push.models import PushSubscription
from tests.conftest import wait_for
from tests.factories import build_message
from tests.push_service import SUBJECT, PushService, turn_push_on

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.celery]


def test_new_mail_fetched_by_a_worker_is_pushed_to_the_subscribed_browser(
    alice, alice_client, pop_user, dovecot_account, celery_worker, settings
):
    server_key = turn_push_on(settings)  # the worker runs in this process, with these settings
    service = PushService().start()
    try:
        form = {"endpoint": service.endpoint(), "p256dh": service.p256dh, "auth": service.auth, "key": server_key}
        assert alice_client.post(reverse("push:subscribe"), form).status_code == 200
        alice_client.post(reverse("push:content"), {"content": "sender"})
        account = dovecot_account()
        pop_user.deliver(
            build_message("Lunch on Friday?", "The secret recipe is inside.", sender="Dana Example <dana@example.net>")
        )

        mailbox_tasks.sync_account.delay(account.id)
        wait_for(lambda: len(service.received) == 1)

        [got] = service.received
        service.check_claims(got, subject=SUBJECT, public_key=server_key)
        assert got.payload["title"] == "Dana Example" and got.payload["body"] == "Lunch on Friday?"
        assert got.payload["unread"] == 1 and got.payload["url"].startswith("/message/")
        assert b"secret recipe" not in got.plaintext
        wait_for(lambda: PushSubscription.objects.get().last_success_at is not None)
    finally:
        service.stop()
