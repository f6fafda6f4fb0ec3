import json

from django.core.management.base import BaseCommand, CommandError

from accounts.models import MailAccount
from mailbox import search, sync


class Command(BaseCommand):
    help = "Sync mail accounts now, in this process; prints one JSON line per account."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, metavar="ID", help="account ids")
        parser.add_argument("--all", action="store_true", help="every enabled account")

    def handle(self, *args, ids, all, **options):
        if all and ids:
            raise CommandError("Give account ids or --all, not both.")
        if all:
            ids = list(MailAccount.objects.filter(enabled=True).order_by("id").values_list("id", flat=True))
        elif not ids:
            raise CommandError("Give one or more account ids, or --all.")
        else:
            existing = set(MailAccount.objects.filter(id__in=ids).values_list("id", flat=True))
            missing = [i for i in ids if i not in existing]
            if missing:
                raise CommandError(f"No mail account with id {', '.join(map(str, missing))}.")
        failed = False
        for account_id in ids:
            result = sync.sync_account(account_id)
            failed |= result.error is not None
            self.stdout.write(json.dumps(result.as_json()))
            self.stdout.flush()
        search.index_all_pending()  # what was stored is searchable through the index when this returns
        if failed:
            raise SystemExit(1)
