"""manage.py verifystore: every stored file hashed, damage reported and marked, repaired from Dovecot."""

import hashlib
import io
from pathlib import Path

import pytest
from django.core.management import call_command

from mailbox import store, sync, verify
from mailbox.models import Attachment, DamagedFile, FetchFailure, Message
from tests.factories import build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

REPORT_PDF = b"%PDF-1.4 quarterly report " + bytes(range(256)) * 40


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verifystore", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def flip_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def stored(pop_user, dovecot_account):
    """Five messages (one with an attachment) fetched by a real sync and kept on the server."""
    for i in range(4):
        pop_user.deliver(build_message(f"Note {i}", f"Body {i}.\n", message_id=f"<n{i}@x>"))
    pop_user.deliver(
        build_message(
            "Report", "See attached.\n", message_id="<r@x>", attachments=[("q.pdf", "application/pdf", REPORT_PDF)]
        )
    )
    account = dovecot_account(policy="keep")
    result = sync.sync_account(account.id)
    assert (result.error, result.fetched) == (None, 5)
    return account


@pytest.mark.dovecot
def test_a_whole_store_checks_clean(stored):
    code, out, err = run()
    assert code == 0
    assert "checked 6 files" in out and "0 missing, 0 corrupt" in out
    assert err.startswith("checked 5 files, ")  # progress: the first batch (the messages), then every 2 s
    assert not DamagedFile.objects.exists()


@pytest.mark.dovecot
def test_flipped_truncated_and_missing_files_are_reported_and_repaired_from_the_server(stored, alice, pop_user):
    messages = {m.subject: m for m in Message.objects.filter(account=stored)}
    flipped, truncated, missing = messages["Note 0"], messages["Note 1"], messages["Note 2"]
    attachment = Attachment.objects.get(message=messages["Report"])
    good = {m.raw_path: store.path_of(m.raw_path).read_bytes() for m in (flipped, truncated, missing)}
    flip_byte(store.path_of(flipped.raw_path))
    path = store.path_of(truncated.raw_path)
    path.write_bytes(path.read_bytes()[:-40])
    store.path_of(missing.raw_path).unlink()
    store.path_of(attachment.stored_path).write_bytes(b"not the report")

    code, out, _err = run("--quiet")
    assert code == 1
    assert f"corrupt {flipped.raw_path}" in out and f"corrupt {truncated.raw_path}" in out
    assert f"missing {missing.raw_path}" in out and f"corrupt {attachment.stored_path}" in out
    assert f"message {missing.id} of user {alice.username}, account {stored.id} (" in out
    assert "Note 2" in out and "(an attachment)" in out
    assert "2 missing" not in out and "1 missing, 3 corrupt" in out
    assert set(DamagedFile.objects.values_list("relpath", "kind")) == {
        (flipped.raw_path, "corrupt"),
        (truncated.raw_path, "corrupt"),
        (missing.raw_path, "missing"),
        (attachment.stored_path, "corrupt"),
    }

    code, out, _err = run("--repair", "--quiet")
    assert code == 0, out
    assert out.count("from the POP3 server") == 3 and "from its stored message" in out
    assert "4 repaired" in out
    for relpath, data in good.items():
        assert store.path_of(relpath).read_bytes() == data
    assert store.path_of(attachment.stored_path).read_bytes() == REPORT_PDF
    assert not DamagedFile.objects.exists()
    assert not list((store.root() / "tmp").glob("*"))  # no temp file left behind
    stored.refresh_from_db()
    assert stored.sync_lease_token == ""  # the lease taken for the repair is released
    assert len(pop_user.messages()) == 5  # nothing deleted on the server
    assert run("--quiet")[0] == 0


@pytest.mark.dovecot
def test_what_the_server_no_longer_has_is_reported_not_repaired(stored, pop_user):
    gone = Message.objects.get(account=stored, subject="Note 3")
    # The server lost it (another client deleted it): the last sync still thinks it is there.
    for path in pop_user.server.maildir(pop_user.name).rglob("*"):
        if path.is_file() and b"Note 3" in path.read_bytes():
            path.unlink()
    store.path_of(gone.raw_path).unlink()
    code, out, _err = run("--repair", "--quiet")
    assert code == 1
    assert f"not repaired {gone.raw_path}: the server no longer has the message" in out
    assert DamagedFile.objects.get().kind == "missing"


@pytest.mark.dovecot
def test_a_file_restored_by_hand_loses_its_mark(stored):
    message = Message.objects.filter(account=stored).first()
    path = store.path_of(message.raw_path)
    data = path.read_bytes()
    path.unlink()
    assert run("--quiet")[0] == 1
    path.write_bytes(data)
    assert run("--quiet")[0] == 0
    assert not DamagedFile.objects.exists()


def test_batches_list_each_file_once(alice):
    # Contents shared by several rows (dedup) and batches smaller than the store.
    account = make_account(alice)
    for i in range(7):
        raw = store.write_blob(f"raw {i % 3}".encode())
        Message.objects.create(
            owner=account.owner, account=account, uidl=f"u{i}", sha256=raw.sha256, size=raw.size,
            raw_path=store.raw_relpath(raw.sha256), date="2026-01-01T00:00Z",
        )  # fmt: skip
    files = [pair for batch in verify.stored_files(batch=2) for pair in batch]
    assert len(files) == len(set(files)) == 3
    assert {sha for _path, sha in files} == {hashlib.sha256(f"raw {i}".encode()).hexdigest() for i in range(3)}


def test_quarantined_downloads_are_checked_once_and_reported(alice):
    account = make_account(alice)
    message = store_message(account, build_message("Kept", "Stored fine.\n"), "u1")
    raw = build_message("Broken", "Could not be parsed.\n")
    with store.temp_file() as fh:
        fh.write(raw)
    kept = store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())
    FetchFailure.objects.create(account=account, uidl="u1", raw_path=message.raw_path)  # the same file
    FetchFailure.objects.create(account=account, uidl="u2", raw_path=kept.relpath, subject="Broken")
    files = [path for batch in verify.stored_files(batch=1) for path, _sha in batch]
    assert sorted(files) == sorted([message.raw_path, kept.relpath])
    store.path_of(kept.relpath).unlink()
    code, out, _err = run("--quiet")
    assert code == 1 and f"missing {kept.relpath}" in out
    assert f"a quarantined download of user {alice.username}, account {account.id} (" in out and "Broken" in out


@pytest.mark.dovecot
def test_a_server_that_refuses_the_login_is_reported_and_the_lease_released(stored):
    message = Message.objects.filter(account=stored).first()
    store.path_of(message.raw_path).unlink()
    stored.set_password("not the password")
    stored.save()
    code, out, _err = run("--repair", "--quiet")
    assert code == 1
    assert f"not repaired {message.raw_path}: the server could not be read:" in out
    stored.refresh_from_db()
    assert stored.sync_lease_token == ""


@pytest.mark.dovecot
def test_a_damaged_message_keeps_its_server_copy_under_a_deleting_policy_until_repaired(stored, pop_user):
    damaged = Message.objects.get(account=stored, subject="Note 1")
    (Path(store.root()) / damaged.raw_path).unlink()
    assert run()[0] == 1  # reported and marked missing
    stored.policy = "delete"
    stored.save(update_fields=["policy"])

    result = sync.sync_account(stored.id)

    assert (result.error, result.deleted_on_server) == (None, 4)
    assert len(pop_user.messages()) == 1  # the only good copy of the damaged message stays
    assert run("--repair")[0] == 0
    assert not DamagedFile.objects.exists()
    assert sync.sync_account(stored.id).deleted_on_server == 1
    assert pop_user.messages() == []
