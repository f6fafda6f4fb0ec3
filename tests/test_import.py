"""Importing .eml and .mbox files: the request keeps the upload and queues a job; the engine imports it.

Byte-exact storage, no duplicates, never DELE'd, refusals with reasons, limits, quotas, resuming, per user.
The engine runs in this process here (``importer.run``); tests/test_import_scale.py runs it in real worker
processes, with a 190 MB upload, 20,000 messages and a killed worker.
"""

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Profile
from mailbox import actions, folders, importer, mbox, store, tasks
from mailbox.models import ImportJob, Message
from mailbox.sync import deletion
from tests.factories import build_message, make_account, store_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def mbox_of(*raws: bytes) -> bytes:
    return b"".join(b"From a@b Thu Nov 26 09:00:00 2026\n" + lf(raw) + b"\n" for raw in raws)


def start(account, folder: str, *files: tuple[str, bytes]) -> ImportJob:
    """A job as the view makes it: each file spooled into the store's temp folder, then kept."""
    spooled = []
    for name, data in files:
        with store.temp_file() as fh:
            fh.write(data)
        spooled.append((name, Path(fh.name), len(data)))
    return actions.start_import(account.owner, account, folder, spooled)


def imported(account, folder: str, *files: tuple[str, bytes]) -> ImportJob:
    job = start(account, folder, *files)
    assert importer.run(job.id) in ("done", "failed")
    job.refresh_from_db()
    return job


def stored_files() -> list[str]:
    return sorted(p.name for p in (store.root() / "imports").glob("*")) if (store.root() / "imports").exists() else []


def temp_files() -> list[str]:
    tmp = store.root() / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def test_the_request_keeps_the_upload_and_queues_the_job_then_the_worker_imports_it(
    alice_client, alice, import_enqueued, django_capture_on_commit_callbacks
):
    account = make_account(alice, policy="delete")
    raw = build_message("Saved from Thunderbird", "Line one\nLine two\n")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("mailbox:import"),
            {"account": account.id, "folder": "archive", "files": [upload("saved.eml", lf(raw))]},
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("mailbox:import_job", args=[job.id])
    # Nothing imported in the request: the job waits for a worker, its upload kept in the mail storage.
    assert import_enqueued == [job.id] and job.state == "queued" and not Message.objects.exists()
    assert (job.owner, job.account, job.folder, job.total_bytes) == (alice, account, "archive", len(lf(raw)))
    assert [f["name"] for f in job.files] == ["saved.eml"] and len(stored_files()) == 1
    assert temp_files() == []  # moved there, not copied
    assert "Waiting for a worker" in alice_client.get(response["Location"]).content.decode()

    assert tasks.import_mailbox.run(job.id) == "done"  # the task as a worker runs it
    job.refresh_from_db()
    assert (job.state, job.imported, job.duplicates, job.refused, job.bytes_done) == ("done", 1, 0, 0, job.total_bytes)
    message = Message.objects.get()
    sha = hashlib.sha256(raw).hexdigest()
    assert (message.uidl, message.sha256, message.server_state) == (f"import:{sha}", sha, "gone")
    assert (message.folder, message.subject, message.account_id) == ("archive", "Saved from Thunderbird", account.id)
    assert message.thread_id is not None
    assert store.path_of(message.raw_path).read_bytes() == raw  # CRLF, as fetched mail
    # It was never on the server: no policy may DELE it, even if a server listed the same UIDL.
    assert deletion.messages_to_delete(account, account.parsed_policy, {message.uidl: 1}) == []
    assert stored_files() == [] and temp_files() == []  # the upload is freed once imported
    page = alice_client.get(reverse("mailbox:import_job", args=[job.id])).content.decode()
    assert "The import is finished." in page and 'id="import-imported">1<' in page
    status = alice_client.get(reverse("mailbox:import_status", args=[job.id])).json()
    assert status == {"state": "done", "bytes_done": job.total_bytes, "total_bytes": job.total_bytes,
                      "imported": 1, "duplicates": 0, "refused": 0, "active": False}  # fmt: skip
    assert "saved.eml" in alice_client.get(reverse("mailbox:import")).content.decode()  # in the recent imports


def test_an_mbox_round_trips_from_export_into_a_user_folder(alice):
    source, target = make_account(alice), make_account(alice, username="archive")
    raws = [
        build_message("one", "From here on\n>From quoted\n"),
        build_message("two", "x", attachments=[("a.bin", "application/octet-stream", bytes(range(256)))]),
        build_message("three", "y"),
    ]
    for i, raw in enumerate(raws):
        store_message(source, raw, f"s{i}")
    exported = b"".join(mbox.export(Message.objects.filter(account=source).order_by("id")))
    folder = folders.create(alice.id, "Old mail")
    job = imported(target, folder.slug, ("old.mbox", exported))
    assert (job.state, job.imported, job.duplicates, job.refused) == ("done", 3, 0, 0)
    rows = Message.objects.filter(account=target)
    assert {m.folder for m in rows} == {folder.slug}
    assert sorted(store.path_of(m.raw_path).read_bytes() for m in rows) == sorted(raws)
    assert rows.get(subject="two").attachments.get().filename == "a.bin"


def test_importing_twice_stores_nothing_new_and_counts_duplicates(alice):
    account = make_account(alice)
    raw, other = build_message("Once"), build_message("Other")
    first = imported(account, "inbox", ("a.mbox", mbox_of(raw, raw, other)))
    assert (first.imported, first.duplicates) == (2, 1)  # the same message twice in one file
    again = imported(account, "inbox", ("a.mbox", mbox_of(raw, raw, other)), ("a.eml", raw))
    assert (again.imported, again.duplicates, again.refused) == (0, 4, 0)
    assert Message.objects.count() == 2


def test_bad_messages_are_refused_alone_with_their_reasons(alice_client, alice):
    account = make_account(alice, max_message_bytes=2000)
    good, huge = build_message("Fine"), build_message("Huge", "x" * 5000)
    job = imported(
        account,
        "inbox",
        ("huge.eml", huge),
        ("empty.eml", b""),
        ("good.eml", good),
        ("notes.mbox", b"no separator here\n"),
        ("mixed.mbox", mbox_of(huge, good) + b"From a@b Thu Nov 26 09:00:00 2026\n\n"),  # the last: one blank line
    )
    assert (job.state, job.imported, job.duplicates, job.refused) == ("done", 1, 1, 5)
    assert [(r["file"], r["number"], r["reason"]) for r in job.refusals] == [
        ("huge.eml", None, "too_large"), ("empty.eml", None, "empty"), ("notes.mbox", None, "no_messages"),
        ("mixed.mbox", 1, "too_large"),
        ("mixed.mbox", 3, "empty"),
    ]  # fmt: skip
    page = alice_client.get(reverse("mailbox:import_job", args=[job.id])).content.decode()
    assert "huge.eml</td><td>larger than this account&#x27;s limit of 2.0\xa0KB (5.3\xa0KB)<" in page
    assert "notes.mbox</td><td>no messages found: not an mbox file?" in page
    assert "mixed.mbox, message 1</td>" in page and "mixed.mbox, message 3</td><td>empty" in page
    assert temp_files() == [] and stored_files() == []  # no temp files left behind


def test_a_message_that_cannot_be_stored_is_refused_and_the_rest_go_in(alice, alice_client, monkeypatch):
    from mailbox import mime

    real_parse = mime.parse_file

    def parse(fh):
        parsed = real_parse(fh)
        if parsed.subject == "Poison":
            raise OSError(f"cannot read {fh.name}")  # a path: shown nowhere but in the log
        return parsed

    monkeypatch.setattr(mime, "parse_file", parse)
    job = imported(make_account(alice), "inbox", ("p.mbox", mbox_of(build_message("Before"), build_message("Poison"),
                                                                     build_message("After"))))  # fmt: skip
    assert (job.imported, job.refused, job.refusals[0]["reason"], job.refusals[0]["number"]) == (2, 1, "unreadable", 2)
    page = alice_client.get(reverse("mailbox:import_job", args=[job.id])).content.decode()
    assert "p.mbox, message 2</td><td>could not be stored: OSError<" in page and str(store.root()) not in page
    assert sorted(Message.objects.values_list("subject", flat=True)) == ["After", "Before"]


def test_uploads_over_the_limit_are_refused_before_anything_is_kept(alice_client, alice, settings):
    settings.WEBPOP_IMPORT_MAX_BYTES = 4096
    account = make_account(alice)
    big = build_message("Big", "y" * 200_000)
    response = alice_client.post(
        reverse("mailbox:import"), {"account": account.id, "folder": "inbox", "files": [upload("big.eml", big)]}
    )
    assert response.status_code == 413
    assert "larger than the limit" in response.content.decode()
    assert not ImportJob.objects.exists() and temp_files() == [] and stored_files() == []


def test_the_upload_handler_stops_bodies_that_lie_about_their_length(alice, settings):
    from django.test import RequestFactory

    from mailbox import views_import

    settings.WEBPOP_IMPORT_MAX_BYTES = 4096
    account = make_account(alice)
    request = RequestFactory().post(
        reverse("mailbox:import"),
        {"account": account.id, "folder": "inbox", "files": [upload("big.eml", build_message("B", "z" * 50_000))]},
    )
    request.META["CONTENT_LENGTH"] = "100"  # claims small: only the streaming handler can catch it
    request.user = alice
    request._dont_enforce_csrf_checks = True
    request.session = {}
    response = views_import.import_mail(request)
    request.close()
    assert response.status_code == 413
    # The middleware must not read the body before the view installs the handler.
    assert views_import.import_mail.csrf_exempt is True
    assert not ImportJob.objects.exists() and temp_files() == []


def test_the_upload_streams_to_the_store_and_is_moved_not_copied(alice, alice_client, monkeypatch):
    # Only our handler sees the data: no other handler keeps a copy in memory or in /tmp.
    from django.core.files import uploadhandler

    from mailbox import views_import

    def refuse(*args, **kwargs):
        raise AssertionError("another upload handler got the data")

    monkeypatch.setattr(uploadhandler.TemporaryFileUploadHandler, "new_file", refuse)
    monkeypatch.setattr(uploadhandler.MemoryFileUploadHandler, "new_file", refuse)
    spooled = []
    real_complete = views_import.SpoolUploads.file_complete

    def complete(self, file_size):
        spooled.append(os.fstat(self.current.fileno()).st_ino)
        return real_complete(self, file_size)

    monkeypatch.setattr(views_import.SpoolUploads, "file_complete", complete)
    account = make_account(alice)
    data = mbox_of(*(build_message(f"m{i}", "z" * 3000) for i in range(1000)))  # 3 MB: more than kept in memory
    response = alice_client.post(
        reverse("mailbox:import"), {"account": account.id, "folder": "inbox", "files": [upload("x.mbox", data)]}
    )
    assert response.status_code == 302
    kept = store.root() / ImportJob.objects.get().files[0]["path"]
    assert kept.read_bytes() == data
    assert [kept.stat().st_ino] == spooled  # the very file the request wrote: renamed, not copied
    assert temp_files() == []


def test_a_user_queues_only_a_few_imports_at_a_time(alice, alice_client, bob_client, bob):
    account = make_account(alice)
    jobs = [start(account, "inbox", (f"{i}.eml", build_message(f"q{i}"))) for i in range(actions.MAX_ACTIVE_IMPORTS)]

    def data(account_id: int) -> dict:
        return {"account": account_id, "folder": "inbox", "files": [upload("more.eml", build_message("more"))]}

    response = alice_client.post(reverse("mailbox:import"), data(account.id))
    assert response.status_code == 429 and "imports waiting or running" in response.content.decode()
    assert ImportJob.objects.count() == len(jobs) and temp_files() == []  # refused before the body was read
    with pytest.raises(actions.ImportsBusy):
        actions.start_import(alice, account, "inbox", [])
    # Others are not held up, and a finished import frees its slot.
    bobs = make_account(bob)
    assert bob_client.post(reverse("mailbox:import"), data(bobs.id)).status_code == 302
    importer.run(jobs[0].id)
    assert alice_client.post(reverse("mailbox:import"), data(account.id)).status_code == 302


def test_import_page_offers_only_the_users_accounts_folders_and_imports(alice_client, alice, bob):
    make_account(alice, label="Alice home")
    bobs = make_account(bob, label="Bob home")
    folders.create(bob.id, "Bobs folder")
    folders.create(alice.id, "Alices folder")
    start(bobs, "inbox", ("bobs-archive.mbox", mbox_of(build_message("b"))))
    page = alice_client.get(reverse("mailbox:import")).content.decode()
    assert "Alice home" in page and "Alices folder" in page
    assert "Bob home" not in page and "Bobs folder" not in page and "bobs-archive" not in page


def test_nobody_imports_into_another_users_account_or_folder(alice, bob, bob_client):
    alices_account = make_account(alice)
    bobs_account = make_account(bob)
    alices_folder = folders.create(alice.id, "Private")
    raw = build_message("Sneaky")
    for data in (
        {"account": alices_account.id, "folder": "inbox"},
        {"account": bobs_account.id, "folder": alices_folder.slug},
    ):
        response = bob_client.post(reverse("mailbox:import"), {**data, "files": [upload("x.eml", raw)]})
        assert response.status_code == 400
    assert not ImportJob.objects.exists() and temp_files() == [] and stored_files() == []
    with pytest.raises(actions.ActionError):
        actions.start_import(bob, alices_account, "inbox", [])
    with pytest.raises(actions.ActionError):
        actions.start_import(bob, bobs_account, alices_folder.slug, [])


def test_only_the_owner_sees_an_import(alice, bob_client, alice_client):
    job = start(make_account(alice), "inbox", ("alice.mbox", mbox_of(build_message("a"))))
    for name in ("mailbox:import_job", "mailbox:import_status"):
        assert bob_client.get(reverse(name, args=[job.id])).status_code == 404
        assert alice_client.get(reverse(name, args=[job.id])).status_code == 200
        assert Client().get(reverse(name, args=[job.id])).status_code == 302


def test_import_needs_login_post_and_csrf(alice):
    account = make_account(alice)
    anonymous = Client()
    assert anonymous.get(reverse("mailbox:import")).status_code == 302
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        reverse("mailbox:import"),
        {"account": account.id, "folder": "inbox", "files": [upload("x.eml", build_message("x"))]},
    )
    assert response.status_code == 403
    assert not ImportJob.objects.exists() and temp_files() == []


def test_an_imported_copy_of_synced_mail_is_a_separate_message(alice):
    # The synced copy keeps its server UIDL (so policies still apply to it); the import stands alone.
    account = make_account(alice)
    raw = build_message("Both")
    store_message(account, raw, "server-uidl")
    assert imported(account, "inbox", ("both.eml", raw)).imported == 1
    assert sorted(Message.objects.values_list("server_state", flat=True)) == ["gone", "on_server"]


def test_a_full_quota_stops_the_import_with_its_reason_after_what_fits(alice, alice_client):
    account = make_account(alice)
    raws = [build_message(f"q{i}", "w" * 1000) for i in range(5)]
    Profile.objects.update_or_create(user=alice, defaults={"storage_quota_bytes": sum(map(len, raws[:3])) + 10})
    job = imported(account, "inbox", ("q.mbox", mbox_of(*raws)))
    assert (job.state, job.error_class, job.imported) == ("failed", "quota", 3)
    assert sorted(Message.objects.values_list("subject", flat=True)) == ["q0", "q1", "q2"]
    assert (job.file_index, job.file_messages) == (0, 3)  # the resume point is the first message that did not fit
    page = alice_client.get(reverse("mailbox:import_job", args=[job.id])).content.decode()
    assert "Your storage is full. What was imported is kept: import the same file again" in page
    assert stored_files() == [] and temp_files() == []
    again = imported(account, "inbox", ("q.mbox", mbox_of(*raws)))  # still full: nothing new, at once
    assert (again.state, again.error_class, again.imported) == ("failed", "quota", 0)


def test_a_folder_deleted_before_the_import_runs_sends_its_mail_to_the_inbox(alice):
    account = make_account(alice)
    folder = folders.create(alice.id, "Short-lived")
    job = start(account, folder.slug, ("x.eml", build_message("Homeless")))
    folders.delete(folder)
    job.refresh_from_db()
    assert job.folder == "inbox"
    importer.run(job.id)
    assert Message.objects.get().folder == "inbox"


def test_the_page_of_an_import_into_a_folder_deleted_since_says_so(alice, alice_client):
    folder = folders.create(alice.id, "Gone later")
    job = imported(make_account(alice), folder.slug, ("x.eml", build_message("x")))
    url = reverse("mailbox:import_job", args=[job.id])
    assert (
        f'<a href="{reverse("mailbox:folder", args=[folder.slug])}">Gone later</a>'
        in alice_client.get(url).content.decode()
    )
    folders.delete(folder)
    page = alice_client.get(url).content.decode()
    assert "<dd>a folder since deleted</dd>" in page and f"/folder/{folder.slug}/" not in page


def test_a_missing_upload_fails_the_job_with_its_reason(alice, alice_client):
    job = start(make_account(alice), "inbox", ("gone.mbox", mbox_of(build_message("x"))))
    (store.root() / job.files[0]["path"]).unlink()
    assert importer.run(job.id) == "failed"
    job.refresh_from_db()
    assert (job.error_class, job.error) == ("upload", "gone.mbox")
    page = alice_client.get(reverse("mailbox:import_job", args=[job.id])).content.decode()
    assert "The uploaded file gone.mbox is missing or damaged." in page


def test_deleting_the_account_or_the_user_frees_their_waiting_uploads(alice, bob, django_capture_on_commit_callbacks):
    from accounts.actions import delete_account
    from users.actions import delete_user

    account, bobs = make_account(alice), make_account(bob)
    start(account, "inbox", ("a.eml", build_message("a")))
    start(bobs, "inbox", ("b.eml", build_message("b")))
    kept = start(make_account(alice, username="other"), "inbox", ("c.eml", build_message("c")))
    with django_capture_on_commit_callbacks(execute=True):
        delete_account(account)
    with django_capture_on_commit_callbacks(execute=True):
        delete_user(bob)
    assert list(ImportJob.objects.all()) == [kept]
    assert stored_files() == [kept.files[0]["path"].split("/")[1]]


# --- Resuming, leases and the sweep -------------------------------------------------------------


class Killed(BaseException):
    """Stands for the worker process dying: nothing after it runs, no except clause of ours catches it."""


def test_an_import_stopped_mid_way_resumes_after_its_last_batch_and_stores_each_message_once(alice, monkeypatch):
    account = make_account(alice)
    raws = [build_message(f"r{i}", f"body {i}", message_id=f"<r{i}@x>") for i in range(23)]
    data = b"Text before the first message is none.\n" + mbox_of(*raws)
    monkeypatch.setattr(importer, "BATCH_MESSAGES", 4)
    job = start(account, "inbox", ("a.mbox", data), ("b.eml", raws[0]), ("c.eml", build_message("last")))
    saves = 0
    real_save = importer._Import._save

    def dies_on_the_third_batch(self, *args):
        nonlocal saves
        saves += 1
        if saves == 3:
            raise Killed
        return real_save(self, *args)

    monkeypatch.setattr(importer._Import, "_save", dies_on_the_third_batch)
    with pytest.raises(Killed):
        importer.run(job.id)
    job.refresh_from_db()
    assert (job.state, job.imported, job.file_index, job.file_messages) == ("running", 8, 0, 8)
    assert Message.objects.count() == 8
    assert importer.run(job.id) == "skipped"  # the lease is held (by this process, alive)
    ImportJob.objects.filter(id=job.id).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert importer.resume_stalled() == [job.id]
    assert importer.run(job.id) == "done"
    job.refresh_from_db()
    assert (job.imported, job.duplicates, job.refused, job.attempts) == (24, 1, 0, 2)
    shas = list(Message.objects.values_list("sha256", flat=True))
    assert len(shas) == len(set(shas)) == 24
    assert set(shas) == {hashlib.sha256(raw).hexdigest() for raw in [*raws, build_message("last")]}
    assert temp_files() == []


def test_a_worker_whose_lease_was_taken_over_commits_nothing(alice, monkeypatch):
    account = make_account(alice)
    job = start(account, "inbox", ("a.mbox", mbox_of(*(build_message(f"l{i}") for i in range(6)))))
    monkeypatch.setattr(importer, "BATCH_MESSAGES", 2)
    real_save = importer._Import._save

    def taken_over_meanwhile(self, *args):
        ImportJob.objects.filter(id=job.id).update(lease_token="someone-else")
        return real_save(self, *args)

    monkeypatch.setattr(importer._Import, "_save", taken_over_meanwhile)
    assert importer.run(job.id) == "lost"
    job.refresh_from_db()
    assert (job.state, job.imported, job.file_offset, job.lease_token) == ("running", 0, 0, "someone-else")
    assert not Message.objects.exists() and temp_files() == []


def test_claims_are_exclusive_and_a_dead_holder_is_replaced_at_once(alice):
    job = start(make_account(alice), "inbox", ("a.eml", build_message("x")))
    token = importer.claim(job.id)
    assert token and importer.claim(job.id) is None
    ImportJob.objects.filter(id=job.id).update(claimed_by="nobody-host:1")  # another host: wait for the lease
    assert importer.claim(job.id) is None
    import socket

    ImportJob.objects.filter(id=job.id).update(claimed_by=f"{socket.gethostname()}:999999999")  # gone on this host
    assert importer.resume_stalled() == [job.id]
    assert importer.claim(job.id) not in (None, token)
    assert ImportJob.objects.get(id=job.id).attempts == 2


def test_the_sweep_requeues_lost_jobs_fails_worn_out_ones_and_frees_stray_uploads(alice, settings):
    account = make_account(alice)
    now = timezone.now()
    waiting = start(account, "inbox", ("w.eml", build_message("w")))
    lost = start(account, "inbox", ("l.eml", build_message("l")))
    worn = start(account, "inbox", ("x.eml", build_message("x")))
    ImportJob.objects.filter(id=lost.id).update(updated_at=now - dt.timedelta(minutes=6))
    ImportJob.objects.filter(id=worn.id).update(
        state="running", lease_until=now - dt.timedelta(seconds=1), attempts=importer.MAX_ATTEMPTS,
        lease_token="t", claimed_by="elsewhere:1", bytes_done=3,
    )  # fmt: skip
    assert importer.resume_stalled(now) == [lost.id]
    assert importer.resume_stalled(now + dt.timedelta(seconds=30)) == []  # not every minute again
    worn.refresh_from_db()
    assert (worn.state, worn.error_class, worn.lease_token) == ("failed", "stopped", "")
    assert not (store.root() / worn.files[0]["path"]).exists()
    # A kept upload no unfinished job names (a request that died before its job was saved) goes after a day.
    stray = store.root() / "imports" / "stray-0"
    stray.write_bytes(b"x")
    assert importer.sweep_uploads() == []  # still young
    old = (now - dt.timedelta(days=2)).timestamp()
    for path in (store.root() / "imports").iterdir():
        os.utime(path, (old, old))
    assert importer.sweep_uploads() == ["imports/stray-0"]
    assert sorted(stored_files()) == sorted(f["path"].split("/")[1] for j in (waiting, lost) for f in j.files)


def test_beat_runs_the_sweep_every_minute_and_it_enqueues_what_it_finds(alice, settings, import_enqueued):
    from webpop.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["resume-imports"]
    assert entry["schedule"] == dt.timedelta(minutes=1) and entry["task"] in app.tasks
    job = start(make_account(alice), "inbox", ("l.eml", build_message("l")))
    ImportJob.objects.filter(id=job.id).update(updated_at=timezone.now() - dt.timedelta(minutes=10))
    assert app.tasks[entry["task"]].run() == 1
    assert import_enqueued == [job.id]
