"""A full disk (ENOSPC) during a sync, on a real small file system against the real Dovecot.

The mail store (and the spool folder inside it) is a tmpfs of a few hundred KB; a filler
file leaves less room than the delivered mail needs. The sync must stop with the
``disk_full`` account error, leave only whole files, delete nothing on the server, and
fetch everything exactly once when space returns.
"""

import hashlib
import os
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount
from mailbox import store, sync
from mailbox.models import FetchFailure, Message
from tests import services
from tests.factories import build_message

# Committed for real, as in a worker.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.sqlite]

DISK_KB = 2048


class SmallDisk:
    def __init__(self, path: Path):
        self.path = path
        self.filler = path / "filler"

    def leave_free(self, free_bytes: int) -> None:
        """Take all the room but ``free_bytes`` with a filler file."""
        stat = os.statvfs(self.path)
        take = stat.f_bavail * stat.f_frsize - free_bytes
        assert take > 0, "the test file system is too small for this test"
        with open(self.filler, "wb") as fh:
            fh.write(b"\0" * take)

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def small_disk(settings, tmp_path):
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    with services.small_tmpfs(mount_point, DISK_KB):
        settings.WEBPOP_MAIL_DIR = mount_point  # the spool folder (store.temp_file) is inside it
        assert store.root() == mount_point
        yield SmallDisk(mount_point)


def _random_text(size: int, seed: str) -> str:
    lines, n = [], 0
    while sum(len(line) + 1 for line in lines) < size:
        lines.append(hashlib.sha512(f"{seed}-{n}".encode()).hexdigest())
        n += 1
    return "\n".join(lines) + "\n"


def _deliver(pop_user, count: int, *, attachment_bytes: int = 0, body_bytes: int = 0) -> dict[str, bytes]:
    delivered = {}
    for i in range(count):
        attachments = []
        if attachment_bytes:
            data = b"".join(hashlib.sha256(f"att-{i}-{n}".encode()).digest() for n in range(attachment_bytes // 32))
            attachments = [(f"file{i}.bin", "application/octet-stream", data)]
        raw = build_message(
            f"Big {i}",
            _random_text(body_bytes, f"body-{i}") if body_bytes else f"Small body {i}.\n",
            message_id=f"<big{i}@x>",
            attachments=attachments,
        )
        pop_user.deliver(raw)
        delivered[hashlib.sha256(raw).hexdigest()] = raw
    return delivered


def _assert_store_whole(disk: SmallDisk, account: MailAccount) -> None:
    """Every stored file holds the content its name says, every row's file is whole, no temp file is left."""
    for folder in ("raw", "att"):
        for path in (disk.path / folder).rglob("*") if (disk.path / folder).exists() else ():
            if path.is_file():
                assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name.removesuffix(".eml"), path
    spool = disk.path / "tmp"
    assert not (spool.exists() and list(spool.iterdir())), "a temp or partial file was left behind"
    for message in Message.objects.filter(account=account):
        assert hashlib.sha256(store.path_of(message.raw_path).read_bytes()).hexdigest() == message.sha256


@pytest.mark.parametrize("fills", ["spool", "attachments"])
def test_disk_full_stops_the_sync_cleanly_and_it_resumes(
    settings, small_disk, pop_user, dovecot_account, alice_client, fills
):
    if fills == "spool":
        # Six messages of about 150 KB; room for about two: RETR into the spool hits ENOSPC.
        delivered = _deliver(pop_user, 6, body_bytes=150_000)
        small_disk.leave_free(360_000)
    else:
        # Four messages whose raw files fit, but not their decoded attachments (written by the ingest side).
        delivered = _deliver(pop_user, 4, attachment_bytes=100_000)
        raw_total = sum(len(raw) for raw in delivered.values())
        small_disk.leave_free(raw_total + 150_000)
    account = dovecot_account(policy="delete")

    result = sync.sync_account(account.id)

    assert result.error_class == "disk_full", result.error
    assert result.deleted_on_server == 0
    account.refresh_from_db()
    assert account.last_error_class == "disk_full"
    assert account.consecutive_failures == 1 and account.next_poll_at > timezone.now()  # backs off, retries
    assert "Nothing was deleted from your mail server" in account.last_error
    page = alice_client.get(reverse("accounts:detail", args=[account.id])).content.decode()
    assert "Storage on this server full" in page
    assert "fetching resumes by itself once there is space" in page
    _assert_store_whole(small_disk, account)
    stored = list(Message.objects.filter(account=account).values_list("sha256", flat=True))
    assert len(stored) == len(set(stored)) == result.fetched
    assert set(stored) < set(delivered)  # some or none arrived, never all
    assert pop_user.sha256s() == set(delivered)  # with policy delete, still nothing deleted on the server
    assert len(pop_user.messages()) == len(delivered)
    assert not FetchFailure.objects.filter(account=account).exists()  # no message is blamed for the full disk

    small_disk.free()
    again = sync.sync_account(account.id)

    assert again.error is None
    assert again.fetched == len(delivered) - len(stored)
    assert again.deleted_on_server == len(delivered)
    rows = list(Message.objects.filter(account=account))
    assert sorted(m.sha256 for m in rows) == sorted(delivered)  # each exactly once
    for message in rows:
        assert store.path_of(message.raw_path).read_bytes() == delivered[message.sha256]
    _assert_store_whole(small_disk, account)
    assert pop_user.messages() == []
    account.refresh_from_db()
    assert (account.last_error_class, account.consecutive_failures) == ("", 0)


def test_a_send_on_a_full_disk_goes_out_once_and_leaves_no_partial_copy(small_disk, alice, smtp_account, smtp_server):
    from outgoing import actions as outgoing_actions
    from outgoing import send
    from outgoing.models import OutgoingMessage, OutgoingState

    account = smtp_account()
    draft = send.save_draft(alice, None, account=account, to="bob@example.net", subject="Full", body="Hi.\n")
    outgoing_actions.queue(alice, draft.id, delay=0)
    small_disk.leave_free(0)  # the copy for Sent cannot be written

    assert send.deliver(draft.id) == send.Outcome.SENT

    assert len(smtp_server.received) == 1
    outgoing = OutgoingMessage.objects.get(id=draft.id)
    assert (outgoing.state, outgoing.error_class) == (OutgoingState.SENT, "not_filed")  # never sent again
    assert not Message.objects.filter(account=account).exists()
    spool = small_disk.path / "tmp"
    assert not (spool.exists() and list(spool.iterdir())), "the partial copy for Sent was left in the spool"
