"""The sync engine against a real Dovecot: byte-exact storage, policies, errors."""

import hashlib

import pytest
from django.urls import reverse

from accounts.models import MailAccount
from mailbox import store, sync
from mailbox.models import Message
from tests.factories import build_message

pytestmark = [pytest.mark.django_db, pytest.mark.dovecot, pytest.mark.sqlite]


def deliver_many(pop_user, count: int) -> dict[str, bytes]:
    delivered = {}
    for i in range(count):
        raw = build_message(f"Message {i:02d}", f"Body of message {i}.\n.leading dot line\n", message_id=f"<m{i}@x>")
        pop_user.deliver(raw)
        delivered[hashlib.sha256(raw).hexdigest()] = raw
    return delivered


def test_sync_stores_every_message_byte_exact(pop_user, dovecot_account):
    delivered = deliver_many(pop_user, 20)
    account = dovecot_account()
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched, result.skipped) == (None, 20, 0)
    messages = list(Message.objects.filter(account=account))
    assert {m.sha256 for m in messages} == set(delivered)
    for message in messages:
        assert store.path_of(message.raw_path).read_bytes() == delivered[message.sha256]
        assert message.size == len(delivered[message.sha256])
    account.refresh_from_db()
    assert account.last_success_at is not None
    assert account.last_error_class == ""
    assert account.sync_lease_until is None


def test_second_sync_fetches_nothing_and_keep_leaves_everything_on_server(pop_user, dovecot_account):
    delivered = deliver_many(pop_user, 20)
    account = dovecot_account(policy="keep")
    sync.sync_account(account.id)
    again = sync.sync_account(account.id)
    assert (again.error, again.fetched, again.deleted_on_server) == (None, 0, 0)
    assert Message.objects.filter(account=account).count() == 20
    assert pop_user.sha256s() == set(delivered)


def test_mirror_deletes_on_server_exactly_what_the_user_deleted(pop_user, dovecot_account, alice_client):
    delivered = deliver_many(pop_user, 20)
    account = dovecot_account(policy="mirror")
    sync.sync_account(account.id)
    doomed = list(Message.objects.filter(account=account).order_by("id")[:3])
    for message in doomed:
        assert alice_client.post(reverse("mailbox:delete", args=[message.id])).status_code == 302
    assert sync.sync_account(account.id).deleted_on_server == 0  # in the trash: still undoable
    assert alice_client.post(reverse("mailbox:empty_trash")).status_code == 302
    assert pop_user.sha256s() == set(delivered)  # nothing happens before the next sync

    result = sync.sync_account(account.id)
    assert (result.error, result.fetched, result.deleted_on_server) == (None, 0, 3)
    assert pop_user.sha256s() == set(delivered) - {m.sha256 for m in doomed}
    assert len(pop_user.messages()) == 17
    states = dict(Message.objects.filter(account=account).values_list("id", "server_state"))
    assert set(states.values()) == {"on_server"} and len(states) == 17  # the tombstones went with the server copies
    assert sync.sync_account(account.id).fetched == 0


def test_delete_policy_removes_only_what_is_stored(pop_user, dovecot_account):
    delivered = deliver_many(pop_user, 5)
    account = dovecot_account(policy="delete")
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched, result.deleted_on_server) == (None, 5, 5)
    assert pop_user.messages() == []
    stored = {m.sha256: store.path_of(m.raw_path).read_bytes() for m in Message.objects.filter(account=account)}
    assert stored == delivered


def test_sync_over_starttls(pop_user, dovecot_account):
    deliver_many(pop_user, 2)
    account = dovecot_account(security="starttls")
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, 2)


def test_attachments_are_stored_with_names_and_bytes(pop_user, dovecot_account):
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 40
    pop_user.deliver(build_message("With file", attachments=[("report.pdf", "application/pdf", pdf)]))
    account = dovecot_account()
    sync.sync_account(account.id)
    message = Message.objects.get(account=account)
    attachment = message.attachments.get()
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "report.pdf",
        "application/pdf",
        len(pdf),
    )
    assert store.path_of(attachment.stored_path).read_bytes() == pdf
    assert message.has_attachments


def test_a_running_sync_holds_the_lease(pop_user, dovecot_account):
    account = dovecot_account()
    token = sync.claim_lease(account.id)
    assert token is not None
    result = sync.sync_account(account.id)
    assert result.error_class == "busy"
    assert Message.objects.count() == 0
    sync.release_lease(account.id, token)
    assert sync.sync_account(account.id).error is None


@pytest.mark.parametrize(
    ("overrides", "error_class", "text"),
    [
        ({"password": "wrong"}, "auth", "rejected the user name or password"),
        ({"port": "closed"}, "refused", "refused"),
        ({"host": "no-such-host.invalid"}, "dns", "could not be resolved"),
    ],
)
def test_errors_are_classified_and_store_nothing(pop_user, dovecot_account, overrides, error_class, text):
    pop_user.deliver(build_message("Unreached"))
    if overrides.get("port") == "closed":
        overrides["port"] = _closed_port()
    account = dovecot_account(**overrides)
    result = sync.sync_account(account.id)
    assert result.error_class == error_class
    assert text in result.error
    assert Message.objects.count() == 0
    account.refresh_from_db()
    assert account.last_error_class == error_class
    assert account.consecutive_failures == 1
    assert account.next_poll_at > account.last_attempt_at
    assert account.password_encrypted not in result.error
    assert len(pop_user.messages()) == 1


def test_untrusted_certificate_is_refused(pop_user, dovecot_account, settings):
    pop_user.deliver(build_message("Unreached"))
    settings.WEBPOP_POP3_CA_FILE = None  # only the system CAs: the test CA is unknown
    account = dovecot_account()
    result = sync.sync_account(account.id)
    assert result.error_class == "tls"
    assert "could not be verified" in result.error
    assert Message.objects.count() == 0


def test_private_address_is_refused_without_the_override(pop_user, dovecot_account, settings):
    settings.WEBPOP_POP3_ALLOW_PRIVATE = False
    account = dovecot_account()
    result = sync.sync_account(account.id)
    assert result.error_class == "private_address"
    assert MailAccount.objects.get(id=account.id).last_error_class == "private_address"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
