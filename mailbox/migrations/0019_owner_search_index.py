"""PostgreSQL: the full-text GIN index leads with the owner (mailbox/owner_search_index.py).

Non-atomic: the index is built CONCURRENTLY, so a live host keeps taking mail
while it builds, and the old index is dropped only once the new one is valid.
Where the role may not create ``btree_gin`` the old index stays and the
migration prints what the database administrator runs. SQLite: nothing to do
(FTS5 is per table and unchanged).
"""

import sys

from django.db import migrations

from mailbox import owner_search_index


def forwards(apps, schema_editor):
    notice = owner_search_index.ensure(schema_editor.connection)
    if notice:
        print("\n" + notice, file=sys.stderr)


def backwards(apps, schema_editor):
    owner_search_index.revert(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("mailbox", "0018_inbox_tabs")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
