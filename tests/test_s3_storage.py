"""WEBPOP_STORAGE=s3: mail in an S3-compatible bucket through django-storages, and /readyz probing it.

The bucket lives on a real S3-compatible HTTP server on loopback (moto's
server mode), reached over the network by boto3 exactly as in production.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from moto.server import ThreadedMotoServer

from mailbox import storage_gc, store
from mailbox.models import FetchFailure, FileToFree
from tests.factories import build_message, make_account, store_message
from webpop.storage import s3_storage_options

REPO = Path(__file__).resolve().parent.parent
BUCKET = "webpop-mail"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._server.server_port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch, s3_endpoint):
    for name, value in {
        "WEBPOP_S3_BUCKET": BUCKET,
        "WEBPOP_S3_ENDPOINT_URL": s3_endpoint,
        "WEBPOP_S3_REGION": "us-east-1",
        "WEBPOP_S3_ACCESS_KEY_ID": "test-key",
        "WEBPOP_S3_SECRET_ACCESS_KEY": "test-secret",
        "WEBPOP_S3_PREFIX": "/mail/",
        "WEBPOP_S3_ADDRESSING_STYLE": "path",
    }.items():
        monkeypatch.setenv(name, value)
    return s3_endpoint


@pytest.fixture
def bucket(s3_env):
    client = boto3.client(
        "s3", endpoint_url=s3_env, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def s3_storage(settings, s3_env):
    settings.STORAGES = {
        **settings.STORAGES,
        store.STORAGE_ALIAS: {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_storage_options()},
    }
    return store.mail_storage()


def _keys(client) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_options_come_from_the_environment_with_tls_verified(s3_env, monkeypatch):
    options = s3_storage_options()
    assert options["bucket_name"] == BUCKET and options["endpoint_url"] == s3_env
    assert options["location"] == "mail" and options["addressing_style"] == "path"
    assert options["verify"] is True and options["file_overwrite"] is True
    monkeypatch.setenv("WEBPOP_S3_CA_BUNDLE", "/etc/ssl/private-ca.pem")
    assert s3_storage_options()["verify"] == "/etc/ssl/private-ca.pem"


def test_a_missing_bucket_or_bad_addressing_fails_loudly(s3_env, monkeypatch):
    monkeypatch.setenv("WEBPOP_S3_ADDRESSING_STYLE", "sideways")
    with pytest.raises(ImproperlyConfigured, match="WEBPOP_S3_ADDRESSING_STYLE"):
        s3_storage_options()
    monkeypatch.delenv("WEBPOP_S3_BUCKET")
    with pytest.raises(ImproperlyConfigured, match="WEBPOP_S3_BUCKET"):
        s3_storage_options()


def _settings_in_a_fresh_process(env: dict) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings; print(settings.STORAGES['webpop_mail'])"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "webpop.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_webpop_storage_selects_the_backend_and_rejects_unknown_values(s3_env, tmp_path):
    chosen = _settings_in_a_fresh_process({"WEBPOP_STORAGE": "s3", "WEBPOP_DATA_DIR": str(tmp_path)})
    assert chosen.returncode == 0, chosen.stderr
    assert "storages.backends.s3.S3Storage" in chosen.stdout and "'bucket_name': 'webpop-mail'" in chosen.stdout
    wrong = _settings_in_a_fresh_process({"WEBPOP_STORAGE": "nfs", "WEBPOP_DATA_DIR": str(tmp_path)})
    assert wrong.returncode != 0 and "WEBPOP_STORAGE='nfs' is not supported" in wrong.stderr


@pytest.mark.django_db
def test_messages_are_stored_in_and_read_from_the_bucket(alice, bucket, s3_storage, settings):
    raw = build_message("Kept in S3", attachments=[("a.txt", "text/plain", b"attached")])
    message = store_message(make_account(alice), raw, "u1")
    assert f"mail/{message.raw_path}" in _keys(bucket)
    assert store.open_file(message.raw_path).read() == raw
    assert not (Path(settings.WEBPOP_MAIL_DIR) / "raw").exists()


@pytest.mark.django_db
def test_readyz_writes_reads_and_deletes_a_probe_in_the_bucket(bucket, s3_storage):
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["storage"]["ok"] is True
    assert _keys(bucket) == []  # the probe is gone


@pytest.mark.django_db
def test_readyz_is_unavailable_when_the_bucket_is_missing(s3_storage):
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["ok"] is False


# --- Freeing and quarantine downloads on S3 (storage API only) --------------------------


def _quarantined(account, raw: bytes) -> FetchFailure:
    with store.temp_file() as fh:
        fh.write(raw)
    stored = store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())
    return FetchFailure.objects.create(
        account=account, uidl="bad-1", size=len(raw), attempts=3, error="unparsable", raw_path=stored.relpath,
        quarantined_at=timezone.now(),
    )  # fmt: skip


@pytest.mark.django_db
def test_gc_on_s3_frees_orphans_and_keeps_messages_attachments_and_quarantined_mail(alice, bucket, s3_storage):
    account = make_account(alice)
    message = store_message(account, build_message("Kept", attachments=[("k.txt", "text/plain", b"kept")]), "u1")
    failure = _quarantined(account, b"Subject: broken\r\n\r\nquarantined on S3\r\n")
    orphan = store.write_blob(b"nobody points at me")

    assert storage_gc.collect_garbage(grace=dt.timedelta(minutes=15)).kept_young == 1  # just written: kept
    report = storage_gc.collect_garbage(grace=dt.timedelta(0))

    assert report.freed == [(orphan.relpath, len(b"nobody points at me"))]
    assert _keys(bucket) == sorted(
        f"mail/{path}" for path in (message.raw_path, message.attachments.get().stored_path, failure.raw_path)
    )


@pytest.mark.django_db
def test_released_files_are_freed_on_s3_by_the_sweep(alice, bucket, s3_storage):
    account = make_account(alice)
    message = store_message(account, build_message("Gone", attachments=[("g.txt", "text/plain", b"gone")]), "u1")
    keeper = store_message(account, build_message("Stays", attachments=[("g.txt", "text/plain", b"gone")]), "u2")
    storage_gc.purge_messages([message])

    report = storage_gc.free_released(grace=dt.timedelta(0))

    assert (report.freed, report.kept) == (1, 1)  # the raw file; the attachment is still the keeper's
    assert _keys(bucket) == sorted(f"mail/{path}" for path in (keeper.raw_path, keeper.attachments.get().stored_path))
    assert not FileToFree.objects.exists()


@pytest.mark.django_db
def test_storing_content_already_in_the_bucket_refreshes_it_so_freeing_waits(alice, bucket, s3_storage, monkeypatch):
    blob = store.write_blob(b"a logo every newsletter carries")
    first = s3_storage.get_modified_time(blob.relpath)
    time.sleep(1.1)  # S3 keeps modification times to the second
    store.write_blob(b"a logo every newsletter carries")  # a new message with the same attachment
    second = s3_storage.get_modified_time(blob.relpath)
    assert second > first
    # The collector's clock held at the moment the first copy became older than the grace period: a
    # refreshed file is young then, however slowly this machine got here.
    grace = dt.timedelta(seconds=1)
    monkeypatch.setattr(storage_gc.timezone, "now", lambda: first + grace + (second - first) / 2)
    assert storage_gc.free_file(blob.relpath, grace=grace).outcome is storage_gc.Outcome.YOUNG


@pytest.mark.django_db
def test_quarantined_mail_downloads_from_s3_for_its_owner_only(alice, alice_client, bob_client, bucket, s3_storage):
    raw = b"Subject: broken\r\n\r\nquarantined on S3\r\n"
    failure = _quarantined(make_account(alice), raw)
    url = reverse("accounts:failure_raw", args=[failure.account_id, failure.id])

    response = alice_client.get(url)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == raw
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Security-Policy"] == "sandbox"
    assert bob_client.get(url).status_code == 404
    bucket.delete_object(Bucket=BUCKET, Key=f"mail/{failure.raw_path}")
    assert alice_client.get(url).status_code == 404  # gone from the bucket: not found, not an error


@pytest.mark.django_db
def test_an_import_keeps_its_upload_in_the_bucket_until_it_is_done(alice, bucket, s3_storage):
    # Any worker on any machine reads the upload from the shared storage, seeking to resume points.
    from mailbox import importer
    from mailbox.models import ImportJob, Message
    from tests.test_import import mbox_of, start

    raws = [build_message(f"s3 {i}", f"body {i}") for i in range(5)]
    job = start(make_account(alice), "inbox", ("s3.mbox", mbox_of(*raws)))
    assert _keys(bucket) == [f"mail/{job.files[0]['path']}"]
    assert list((store.root() / "tmp").iterdir()) == []
    assert importer.run(job.id) == "done"
    assert ImportJob.objects.get().imported == 5
    assert sorted(store.open_file(m.raw_path).read() for m in Message.objects.all()) == sorted(raws)
    assert not [key for key in _keys(bucket) if key.startswith("mail/imports/")]  # freed once imported


def test_verifystore_checks_and_repairs_objects_in_the_bucket(alice, bucket, s3_storage, alice_client):
    from mailbox import verify
    from mailbox.models import Attachment, DamagedFile

    account = make_account(alice)
    raw = build_message("Report", "See attached.", attachments=[("r.bin", "application/octet-stream", b"\x01" * 5000)])
    message = store_message(account, raw, "u1")
    attachment = Attachment.objects.get(message=message)
    bucket.delete_object(Bucket=BUCKET, Key=f"mail/{attachment.stored_path}")
    report = verify.verify()
    assert (report.files, [(d.relpath, d.kind) for d in report.damaged]) == (2, [(attachment.stored_path, "missing")])
    response = alice_client.get(reverse("mailbox:attachment", args=[attachment.id]))
    assert response.status_code == 410  # marked: not served
    verify.repair(report.damaged)
    assert report.damaged[0].repaired == "message"  # cut again from the stored message
    body = bucket.get_object(Bucket=BUCKET, Key=f"mail/{attachment.stored_path}")["Body"].read()
    assert body == b"\x01" * 5000 and not DamagedFile.objects.exists()

    bucket.put_object(Bucket=BUCKET, Key=f"mail/{message.raw_path}", Body=raw.replace(b"See", b"Sea"))
    assert [(d.relpath, d.kind) for d in verify.verify().damaged] == [(message.raw_path, "corrupt")]
    assert alice_client.get(reverse("mailbox:raw", args=[message.id])).status_code == 410


@pytest.mark.django_db
def test_checkrestore_compares_rows_and_objects_in_the_bucket(alice, bucket, s3_storage, tmp_path):
    from mailbox import restore_check

    account = make_account(alice)
    kept = store_message(account, build_message("Kept", attachments=[("k.txt", "text/plain", b"kept" * 9)]), "u1")
    lost = store_message(account, build_message("Lost", "its object is gone"), "u2")
    bucket.delete_object(Bucket=BUCKET, Key=f"mail/{lost.raw_path}")
    newer = build_message("Fetched after the backup", "only in the bucket")
    newer_path = store.raw_relpath(hashlib.sha256(newer).hexdigest())
    bucket.put_object(Bucket=BUCKET, Key=f"mail/{newer_path}", Body=newer)

    report = restore_check.check()
    assert report.referenced == 3  # kept's message and attachment, lost's message
    assert [(d.relpath, d.kind) for d in report.missing] == [(lost.raw_path, "missing")]
    assert [(o.relpath, o.size) for o in report.orphans] == [(newer_path, len(newer))]
    assert report.orphans[0].modified is not None
    [(_orphan, saved)] = restore_check.save(report.orphans, tmp_path / "orphans")
    assert saved.read_bytes() == newer
    assert f"mail/{newer_path}" in _keys(bucket)  # listed and saved, never deleted
    assert f"mail/{kept.raw_path}" in _keys(bucket)
