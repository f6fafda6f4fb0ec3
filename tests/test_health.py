import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def test_healthz_answers_without_login_even_before_setup():
    response = Client().get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_checks_database_broker_and_storage():
    response = Client().get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"database", "broker", "storage"}
    assert all(check["ok"] for check in checks.values())


def test_readyz_fails_when_the_broker_is_unreachable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConnectionError"}


def test_readyz_storage_check_writes_reads_and_deletes_a_probe(settings):
    from pathlib import Path

    response = Client().get("/readyz")
    assert response.json()["checks"]["storage"]["ok"] is True
    probes = Path(settings.WEBPOP_MAIL_DIR) / "readyz"
    assert probes.is_dir() and list(probes.iterdir()) == []  # it was written, then removed


def test_readyz_fails_when_the_mail_storage_cannot_take_writes(settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the mail store should be")
    settings.WEBPOP_MAIL_DIR = blocker / "mail"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["ok"] is False
    assert response.json()["checks"]["database"]["ok"] is True
