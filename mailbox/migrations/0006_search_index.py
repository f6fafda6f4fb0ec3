"""Full-text search structures the ORM cannot describe, per database.

PostgreSQL: a trigger keeps ``search_document`` (tsvector, 'simple' config so
every language works alike) up to date, with a GIN index. SQLite: an FTS5
table over the same columns, kept in step by triggers. Existing rows are
indexed, and existing messages become one-message conversations.
"""

from django.db import migrations

FIELDS = ["subject", "from_name", "from_email", '"to"', "cc", "search_text"]

POSTGRES_UP = [
    """
    CREATE FUNCTION mailbox_message_search_document() RETURNS trigger AS $$
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
    """
    CREATE TRIGGER mailbox_message_search_document BEFORE INSERT OR UPDATE OF
      subject, from_name, from_email, "to", cc, search_text ON mailbox_message
      FOR EACH ROW EXECUTE FUNCTION mailbox_message_search_document()
    """,
    "UPDATE mailbox_message SET subject = subject",
    "CREATE INDEX mailbox_message_search_gin ON mailbox_message USING gin (search_document)",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS mailbox_message_search_gin",
    "DROP TRIGGER IF EXISTS mailbox_message_search_document ON mailbox_message",
    "DROP FUNCTION IF EXISTS mailbox_message_search_document()",
]

_cols = ", ".join(FIELDS)
_new = ", ".join(f"new.{f}" for f in FIELDS)
_old = ", ".join(f"old.{f}" for f in FIELDS)
SQLITE_UP = [
    f"""CREATE VIRTUAL TABLE mailbox_message_fts USING fts5({_cols}, content='mailbox_message',
        content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
    f"""CREATE TRIGGER mailbox_message_fts_ai AFTER INSERT ON mailbox_message BEGIN
        INSERT INTO mailbox_message_fts(rowid, {_cols}) VALUES (new.id, {_new}); END""",
    f"""CREATE TRIGGER mailbox_message_fts_ad AFTER DELETE ON mailbox_message BEGIN
        INSERT INTO mailbox_message_fts(mailbox_message_fts, rowid, {_cols}) VALUES ('delete', old.id, {_old}); END""",
    f"""CREATE TRIGGER mailbox_message_fts_au AFTER UPDATE OF {_cols} ON mailbox_message BEGIN
        INSERT INTO mailbox_message_fts(mailbox_message_fts, rowid, {_cols}) VALUES ('delete', old.id, {_old});
        INSERT INTO mailbox_message_fts(rowid, {_cols}) VALUES (new.id, {_new}); END""",
    "INSERT INTO mailbox_message_fts(mailbox_message_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS mailbox_message_fts_au",
    "DROP TRIGGER IF EXISTS mailbox_message_fts_ad",
    "DROP TRIGGER IF EXISTS mailbox_message_fts_ai",
    "DROP TABLE IF EXISTS mailbox_message_fts",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


def one_message_conversations(apps, schema_editor):
    schema_editor.execute("UPDATE mailbox_message SET thread_id = id WHERE thread_id IS NULL")


class Migration(migrations.Migration):
    dependencies = [("mailbox", "0005_folders_threads_search")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        ),
        migrations.RunPython(one_message_conversations, migrations.RunPython.noop),
    ]
