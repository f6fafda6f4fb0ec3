"""PostgreSQL: the search document is built after ingest, not inside the INSERT.

Building a tsvector costs more than everything else a stored message costs the
database, so a sync no longer waits for it: new rows arrive with
``search_document`` NULL and ``mailbox.search.index_pending`` (a Celery task
after each sync, and a beat sweep) fills them in, finding them through a small
partial index. Until then search matches those rows by substring (see
``mailbox.search.full_text``), so nothing is ever missing from results.
Edits of the indexed columns still rebuild the document at once (trigger on
UPDATE). SQLite's FTS5 triggers are unchanged: they are cheap there.

The large text columns are compressed with lz4 instead of pglz where the
server supports it: pglz was most of what inserting a message cost.
"""

from django.db import DatabaseError, migrations, transaction

LZ4_COLUMNS = ["search_text", "html_cache"]

POSTGRES_UP = [
    """
    CREATE FUNCTION mailbox_message_document(
      subject text, from_name text, from_email text, recipients text, cc text, search_text text
    ) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT
        setweight(to_tsvector('simple', coalesce(subject, '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(from_name, '') || ' ' || coalesce(from_email, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(recipients, '') || ' ' || coalesce(cc, '')), 'C') ||
        setweight(to_tsvector('simple', left(coalesce(search_text, ''), 65536)), 'D')
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION mailbox_message_search_document() RETURNS trigger AS $$
    BEGIN
      NEW.search_document := mailbox_message_document(
        NEW.subject, NEW.from_name, NEW.from_email, NEW."to", NEW.cc, NEW.search_text);
      RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS mailbox_message_search_document ON mailbox_message",
    """
    CREATE TRIGGER mailbox_message_search_document BEFORE UPDATE OF
      subject, from_name, from_email, "to", cc, search_text ON mailbox_message
      FOR EACH ROW EXECUTE FUNCTION mailbox_message_search_document()
    """,
    "CREATE INDEX mailbox_message_unindexed ON mailbox_message (id) WHERE search_document IS NULL",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS mailbox_message_unindexed",
    """
    CREATE OR REPLACE FUNCTION mailbox_message_search_document() RETURNS trigger AS $$
    BEGIN
      NEW.search_document :=
        setweight(to_tsvector('simple', coalesce(NEW.subject, '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(NEW.from_name, '') || ' ' || coalesce(NEW.from_email, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(NEW."to", '') || ' ' || coalesce(NEW.cc, '')), 'C') ||
        setweight(to_tsvector('simple', left(coalesce(NEW.search_text, ''), 65536)), 'D');
      RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS mailbox_message_search_document ON mailbox_message",
    """
    CREATE TRIGGER mailbox_message_search_document BEFORE INSERT OR UPDATE OF
      subject, from_name, from_email, "to", cc, search_text ON mailbox_message
      FOR EACH ROW EXECUTE FUNCTION mailbox_message_search_document()
    """,
    "UPDATE mailbox_message SET subject = subject WHERE search_document IS NULL",
    "DROP FUNCTION IF EXISTS mailbox_message_document(text, text, text, text, text, text)",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


def _compression(method):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for column in LZ4_COLUMNS:
            try:
                with transaction.atomic():
                    schema_editor.execute(f"ALTER TABLE mailbox_message ALTER COLUMN {column} SET COMPRESSION {method}")
            except DatabaseError:  # a server built without lz4 keeps pglz
                return

    return run


class Migration(migrations.Migration):
    dependencies = [("mailbox", "0008_unread_index")]

    operations = [
        migrations.RunPython(_run(POSTGRES_UP), _run(POSTGRES_DOWN)),
        migrations.RunPython(_compression("lz4"), _compression("pglz")),
    ]
