import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from mailbox import storage_gc


class Command(BaseCommand):
    help = (
        "Free stored message and attachment files that no row references, and temp files left by crashes. "
        "Prints each file freed (or that would be freed with --dry-run), then a total."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only list what would be freed")
        parser.add_argument(
            "--grace-minutes",
            type=float,
            default=storage_gc.GC_GRACE.total_seconds() / 60,
            help="never free files younger than this: they may belong to a message being stored now "
            "(default: %(default)s)",
        )

    def handle(self, *args, dry_run, grace_minutes, **options):
        if grace_minutes < 0:
            raise CommandError("--grace-minutes cannot be negative.")
        report = storage_gc.collect_garbage(grace=dt.timedelta(minutes=grace_minutes), dry_run=dry_run)
        verb = "would free" if dry_run else "freed"
        for relpath, size in report.freed:
            self.stdout.write(f"{verb} {relpath} ({size} bytes)")
        self.stdout.write(
            f"{verb} {len(report.freed)} files, {report.bytes_freed} bytes; "
            f"kept {report.kept_young} unreferenced files younger than {grace_minutes:g} minutes"
        )
