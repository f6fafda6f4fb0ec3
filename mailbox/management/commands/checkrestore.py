from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mailbox import restore_check, verify


class Command(BaseCommand):
    help = (
        "After restoring a backup: check that every stored file a row references exists (a missing one is "
        "listed with the messages that need it, and marked damaged), and list the files in the mail store no "
        "row references (orphans: stored after the database's backup was taken). Orphans are never deleted "
        "here; the daily collection of unreferenced files (beat) deletes them, so run this before starting "
        "beat. Exit status 1 when a referenced file is missing. Run verifystore afterwards to hash every file."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--save-orphans",
            metavar="DIR",
            type=Path,
            help="copy orphaned messages to DIR as <sha256>.eml (with the policy 'delete after fetch' they may "
            "be the only copy of mail fetched after the backup; their owners can import them)",
        )
        parser.add_argument("--batch", type=int, default=verify.BATCH, help="files per batch (default %(default)s)")

    def handle(self, *args, save_orphans, batch, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        report = restore_check.check(batch=batch)
        for item in report.missing:
            self.stdout.write(f"missing {item.relpath}")
            for row in verify.affected(item):
                self.stdout.write(f"  {verify.describe(row)}")
        for orphan in report.orphans:
            when = f", stored {orphan.modified:%Y-%m-%d %H:%M:%S} UTC" if orphan.modified else ""
            self.stdout.write(f"orphan {orphan.relpath} ({orphan.size} bytes{when})")
        if save_orphans is not None:
            for orphan, target in restore_check.save(report.orphans, save_orphans):
                self.stdout.write(f"saved {orphan.relpath} to {target}")
        self.stdout.write(
            f"checked {report.referenced} referenced files: {len(report.missing)} missing; "
            f"{len(report.orphans)} orphaned files ({report.orphan_bytes} bytes) no row references"
        )
        if report.missing:
            raise SystemExit(1)
