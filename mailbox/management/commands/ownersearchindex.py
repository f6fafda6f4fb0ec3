from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from mailbox import owner_search_index


class Command(BaseCommand):
    help = (
        "PostgreSQL: build the search index that starts with the owner (needs the btree_gin extension) "
        "concurrently and drop the older one. Run after a database administrator has created btree_gin "
        "for a role that may not; migrate does it by itself when the role may. Safe to run again."
    )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("Nothing to do: SQLite searches through its FTS5 table.")
            return
        notice = owner_search_index.ensure(connection)
        if notice:
            raise CommandError(notice)
        self.stdout.write(f"{owner_search_index.OWNER_INDEX} is in place.")
