"""PostgreSQL: the search index that starts with the owner, built on a live host.

A GIN index over ``search_document`` alone holds every user's words, so a
search reads all matching rows of the host and only then keeps one owner's.
With ``btree_gin`` the owner is a column of the same GIN index: the scan
intersects the owner's posting list with the words' inside the index and
reads only that user's matches, whatever else the host stores.

``btree_gin`` ships with PostgreSQL (contrib) and is a trusted extension
(PostgreSQL 13+), so a role with CREATE on the database may install it. When
the role may not, nothing changes: the old index stays, search keeps working,
and ``missing_extension_notice`` says what the database administrator runs;
``manage.py ownersearchindex`` then finishes the switch.

Indexes are built and dropped CONCURRENTLY (outside a transaction): writes to
the message table go on while the index is built.
"""

from __future__ import annotations

OWNER_INDEX = "mailbox_message_owner_search_gin"
OLD_INDEX = "mailbox_message_search_gin"


def _one(cursor, sql: str, params=()) -> object:
    cursor.execute(sql, params)
    row = cursor.fetchone()
    return row[0] if row else None


def extension_state(cursor) -> str:
    """'installed', 'allowed' (this role may create it), 'forbidden' or 'unavailable' (not on the server)."""
    if _one(cursor, "SELECT 1 FROM pg_extension WHERE extname = 'btree_gin'"):
        return "installed"
    trusted = _one(
        cursor,
        "SELECT bool_or(trusted) FROM pg_available_extension_versions WHERE name = 'btree_gin'",
    )
    if trusted is None:
        return "unavailable"
    superuser = _one(cursor, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    may_create = _one(cursor, "SELECT has_database_privilege(current_user, current_database(), 'CREATE')")
    return "allowed" if superuser or (trusted and may_create) else "forbidden"


def missing_extension_notice(database: str, state: str) -> str:
    package = " (install the PostgreSQL contrib package first)" if state == "unavailable" else ""
    return (
        f"webpop: the extension btree_gin is missing and this database role may not create it{package}. "
        f"Search keeps working with the index it has, but reads every user's matches. A database "
        f'administrator runs, in database "{database}":\n'
        f"    CREATE EXTENSION IF NOT EXISTS btree_gin;\n"
        f"then: python manage.py ownersearchindex"
    )


def _valid(cursor, name: str) -> bool | None:
    """None when there is no index ``name``; else whether it is valid (a failed concurrent build is not)."""
    return _one(
        cursor,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
        [name],
    )


def ensure(connection) -> str | None:
    """Build the owner-leading search index and drop the old one. Returns a notice when it could not.

    Must run outside a transaction (CREATE INDEX CONCURRENTLY). Safe to run again.
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        state = extension_state(cursor)
        if state == "allowed":
            cursor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        elif state != "installed":
            return missing_extension_notice(connection.settings_dict["NAME"], state)
        if _valid(cursor, OWNER_INDEX) is False:  # an interrupted earlier build left it half made
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OWNER_INDEX}")
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {OWNER_INDEX} "
            "ON mailbox_message USING gin (owner_id, search_document)"
        )
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD_INDEX}")
    return None


def revert(connection) -> None:
    """The single-column index again (for migrating backwards); btree_gin stays installed."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if _valid(cursor, OLD_INDEX) is False:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD_INDEX}")
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {OLD_INDEX} ON mailbox_message USING gin (search_document)"
        )
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OWNER_INDEX}")
