"""PostgreSQL: the full-text GIN index leads with the owner (mailbox/owner_search_index.py);
trash expiry gets a partial index of the trash rows.

Non-atomic: the index is built CONCURRENTLY, so a live host keeps taking mail
while it builds, and the old index is dropped only once the new one is valid.
Where the role may not create ``btree_gin`` the old index stays and the
migration prints what the database administrator runs. SQLite: nothing to do
(FTS5 is per table and unchanged); the trash index is a plain CREATE INDEX there.
"""

import sys

from django.db import migrations, models

from mailbox import owner_search_index
from mailbox.migrations._concurrent import AddIndexConcurrentlyOnPostgres


def forwards(apps, schema_editor):
    notice = owner_search_index.ensure(schema_editor.connection)
    if notice:
        print("\n" + notice, file=sys.stderr)


def backwards(apps, schema_editor):
    owner_search_index.revert(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("mailbox", "0018_inbox_tabs")]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
        AddIndexConcurrentlyOnPostgres(
            model_name="message",
            index=models.Index(
                condition=models.Q(("folder", "trash")), fields=["deleted_at", "owner"], name="msg_trash_deleted_idx"
            ),
        ),
    ]
