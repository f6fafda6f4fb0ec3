"""The owner-leading search index on a live host: the extension check, the DBA's path, rebuilding."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from mailbox import owner_search_index
from mailbox.owner_search_index import OLD_INDEX, OWNER_INDEX
from tests.conftest import require_postgresql


def _index_valid(name: str) -> bool | None:
    with connection.cursor() as cursor:
        return owner_search_index._valid(cursor, name)


@pytest.mark.django_db
def test_a_role_that_may_not_create_the_extension_changes_nothing_and_is_told_what_to_ask_for():
    require_postgresql()
    with connection.cursor() as cursor:
        assert owner_search_index.extension_state(cursor) == "installed"
        # Rolled back with the test: a server without the extension, and a role without CREATE.
        cursor.execute("DROP EXTENSION btree_gin CASCADE")
        assert owner_search_index.extension_state(cursor) == "allowed"  # the test run's superuser
        cursor.execute("CREATE ROLE webpop_test_no_create NOLOGIN")
        cursor.execute("SET LOCAL ROLE webpop_test_no_create")
        assert owner_search_index.extension_state(cursor) == "forbidden"
    notice = owner_search_index.ensure(connection)
    assert "CREATE EXTENSION IF NOT EXISTS btree_gin;" in notice
    assert connection.settings_dict["NAME"] in notice
    assert "manage.py ownersearchindex" in notice
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
    assert _index_valid(OWNER_INDEX) is None  # dropped with the extension above, not built again


@pytest.mark.django_db(transaction=True)
def test_the_command_rebuilds_an_interrupted_build_and_can_run_again():
    require_postgresql()
    assert _index_valid(OWNER_INDEX) is True
    assert _index_valid(OLD_INDEX) is None
    with connection.cursor() as cursor:  # what an interrupted CREATE INDEX CONCURRENTLY leaves
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [OWNER_INDEX])
    assert _index_valid(OWNER_INDEX) is False
    for _ in range(2):
        out = io.StringIO()
        call_command("ownersearchindex", stdout=out)
        assert f"{OWNER_INDEX} is in place" in out.getvalue()
        assert _index_valid(OWNER_INDEX) is True
        assert _index_valid(OLD_INDEX) is None


@pytest.mark.django_db(transaction=True)
def test_migrate_runs_again_after_an_interrupted_concurrent_index_build():
    """The quota's index (migration 0020): a build cut short leaves an invalid index and no record."""
    require_postgresql()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'msg_owner_size_idx'::regclass")
        cursor.execute("DELETE FROM django_migrations WHERE app = 'mailbox' AND name = '0020_owner_size_index'")
    assert _index_valid("msg_owner_size_idx") is False

    call_command("migrate", "mailbox", verbosity=0)

    assert _index_valid("msg_owner_size_idx") is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM django_migrations WHERE app = 'mailbox' AND name = '0020_owner_size_index'")
        assert cursor.fetchone()
