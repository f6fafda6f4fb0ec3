"""The storage a user's quota counts, summed from an index (mailbox/quota.py).

Non-atomic: the index is built CONCURRENTLY on PostgreSQL, so a live host keeps taking mail while
it builds; a plain CREATE INDEX on SQLite.
"""

from django.db import migrations, models

from mailbox.migrations._concurrent import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("mailbox", "0019_owner_search_index")]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="message",
            index=models.Index(
                condition=models.Q(("folder", "purged"), _negated=True),
                fields=["owner", "size"],
                name="msg_owner_size_idx",
            ),
        ),
    ]
