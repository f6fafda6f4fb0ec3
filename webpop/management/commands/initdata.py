"""Create the data dir's folders and keys (idempotent): what `make run`, the entrypoint and deploys run first."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from webpop.lib import datadir


class Command(BaseCommand):
    help = (
        "Create WEBPOP_DATA_DIR, its folders and the keys the environment does not give (SECRET_KEY, "
        "WEBPOP_ENCRYPTION_KEYS; files with mode 0600). Safe to run again: it only creates what is missing."
    )
    requires_system_checks = []  # the checks need the keys this command makes

    def handle(self, *args, **options):
        created = datadir.initialize(settings.DATA_DIR, folder_queue=not settings.REDIS_URL)
        for what in created:
            self.stdout.write(f"Created {what}")
        if not created:
            self.stdout.write(f"{settings.DATA_DIR} has its folders and keys; nothing created.")
