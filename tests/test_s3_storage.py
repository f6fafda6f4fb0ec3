"""WEBPOP_STORAGE=s3: mail in an S3-compatible bucket through django-storages, and /readyz probing it.

The bucket lives on a real S3-compatible HTTP server on loopback (moto's
server mode), reached over the network by boto3 exactly as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from moto.server import ThreadedMotoServer

from mailbox import store
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
