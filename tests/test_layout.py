import importlib
import os
import stat
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from webpop.lib import env

REPO = Path(__file__).resolve().parent.parent


def test_mailbox_import_is_our_app_not_the_stdlib():
    module = importlib.import_module("mailbox")
    assert Path(module.__file__).resolve() == REPO / "mailbox" / "__init__.py"
    from django.apps import apps

    assert apps.get_app_config("mailbox").name == "mailbox"


def test_env_bool_rejects_garbage(monkeypatch):
    monkeypatch.setenv("WEBPOP_X", "maybe")
    with pytest.raises(ImproperlyConfigured, match="WEBPOP_X='maybe' is not a boolean"):
        env.env_bool("WEBPOP_X")
    monkeypatch.setenv("WEBPOP_X", "Yes")
    assert env.env_bool("WEBPOP_X") is True


def test_env_int_rejects_non_numbers_and_out_of_range(monkeypatch):
    monkeypatch.setenv("WEBPOP_N", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env.env_int("WEBPOP_N", 1)
    monkeypatch.setenv("WEBPOP_N", "0")
    with pytest.raises(ImproperlyConfigured, match="below the minimum 1"):
        env.env_int("WEBPOP_N", 1, minimum=1)


def test_secret_can_come_from_a_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "s"
    secret_file.write_text("from-file\n")
    monkeypatch.delenv("WEBPOP_S", raising=False)
    monkeypatch.setenv("WEBPOP_S_FILE", str(secret_file))
    assert env.env_str("WEBPOP_S") == "from-file"
    monkeypatch.setenv("WEBPOP_S", "both")
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env.env_str("WEBPOP_S")


def test_generated_secret_is_private_and_stable(monkeypatch, tmp_path):
    monkeypatch.delenv("WEBPOP_K", raising=False)
    path = tmp_path / "data" / "k"
    first = env.secret_from_env_or_file("WEBPOP_K", path, lambda: "generated")
    assert first == "generated"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert env.secret_from_env_or_file("WEBPOP_K", path, lambda: "other") == "generated"


def test_world_readable_secret_file_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("WEBPOP_K", raising=False)
    path = tmp_path / "k"
    path.write_text("x")
    os.chmod(path, 0o644)
    with pytest.raises(ImproperlyConfigured, match="chmod 600"):
        env.secret_from_env_or_file("WEBPOP_K", path, lambda: "y")


@pytest.mark.parametrize(
    ("url", "engine", "name"),
    [
        ("postgres://u:p%40ss@db.internal:6543/mail", "django.db.backends.postgresql", "mail"),
        ("sqlite:////abs/path/db.sqlite3", "django.db.backends.sqlite3", "/abs/path/db.sqlite3"),
        ("sqlite:///var/db.sqlite3", "django.db.backends.sqlite3", str(REPO / "var/db.sqlite3")),
    ],
)
def test_database_url_parsing(url, engine, name):
    config = env.parse_database_url(url, REPO)
    assert config["ENGINE"] == engine
    assert config["NAME"] == name
    if engine.endswith("postgresql"):
        assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"]) == (
            "u",
            "p@ss",
            "db.internal",
            "6543",
        )


@pytest.mark.parametrize("url", ["mysql://x/y", "postgres://host/", "sqlite://"])
def test_bad_database_url_is_refused(url):
    with pytest.raises(ImproperlyConfigured):
        env.parse_database_url(url, REPO)


def test_database_url_keeps_postgresql_options():
    config = env.parse_database_url(
        "postgres://u@db.internal/mail?sslmode=require&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5", REPO
    )
    assert config["OPTIONS"] == {
        "sslmode": "require",
        "sslrootcert": "/etc/ca.pem",
        "connect_timeout": "5",
        "options": "-c max_parallel_workers_per_gather=0",
    }


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("", "-c max_parallel_workers_per_gather=0"),
        ("?options=-c%20statement_timeout%3D5s", "-c statement_timeout=5s -c max_parallel_workers_per_gather=0"),
        ("?options=-c%20max_parallel_workers_per_gather%3D2", "-c max_parallel_workers_per_gather=2"),
    ],
)
def test_postgresql_connections_run_without_parallel_workers_unless_the_url_says(given, sent):
    config = env.parse_database_url(f"postgres://u@db.internal/mail{given}", REPO)
    assert config["OPTIONS"]["options"] == sent


@pytest.mark.django_db
def test_database_url_options_reach_a_real_postgresql_connection():
    """The options are libpq parameters on the connection webpop opens, not just entries in a dict."""
    from urllib.parse import quote, urlencode

    from django.db import connection
    from django.db.backends.postgresql.base import DatabaseWrapper

    if connection.vendor != "postgresql":
        pytest.fail("this test needs the suite's PostgreSQL (DATABASE_URL=postgres://...)")
    settings = connection.settings_dict
    query = {"application_name": "webpop-url-option", "options": "-c statement_timeout=1234"}
    host = settings["HOST"] or "localhost"
    if host.startswith("/"):  # a socket directory travels as a libpq option
        query["host"], host = host, ""
    login = quote(settings["USER"]) + (f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else "")
    url = f"postgres://{login}@{host}{':' + str(settings['PORT']) if settings['PORT'] else ''}/{settings['NAME']}"
    url += "?" + urlencode(query)
    config = env.parse_database_url(url, REPO)
    wrapper = DatabaseWrapper({**settings, **config, "TIME_ZONE": None, "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False})
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SHOW application_name")
            assert cursor.fetchone()[0] == "webpop-url-option"
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "1234ms"
            cursor.execute("SHOW max_parallel_workers_per_gather")
            assert cursor.fetchone()[0] == "0"
    finally:
        wrapper.close()


def test_database_url_keeps_sqlite_options():
    config = env.parse_database_url("sqlite:///var/db.sqlite3?timeout=45", REPO)
    assert config["NAME"] == str(REPO / "var/db.sqlite3")
    assert config["OPTIONS"]["timeout"] == 45
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"  # the defaults stay


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://h/db?sslmod=require", "sslmod"),
        ("postgres://h/db?sslmode=require&sslmode=disable", "twice"),
        ("sqlite:///var/db.sqlite3?timeout=soon", "timeout"),
        ("sqlite:///var/db.sqlite3?journal=wal", "no option 'journal'"),
    ],
)
def test_bad_database_url_options_are_refused(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        env.parse_database_url(url, REPO)
