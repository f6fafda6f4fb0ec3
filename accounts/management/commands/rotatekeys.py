from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import keyrotation


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential with the newest key (the first of WEBPOP_ENCRYPTION_KEYS). "
        "Afterwards the older keys can be removed. Safe to run again; it only does what is left."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")
        parser.add_argument("--dry-run", action="store_true", help="count what would be re-encrypted, change nothing")
        parser.add_argument(
            "--generate-key", action="store_true", help="print a new key for the front of WEBPOP_ENCRYPTION_KEYS; exit"
        )

    def handle(self, *args, **opts):
        if opts["generate_key"]:
            self.stdout.write(Fernet.generate_key().decode())
            return
        if opts["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if len(settings.WEBPOP_ENCRYPTION_KEYS) == 1:
            self.stderr.write(
                "Only one key is configured: everything readable is already under it. To rotate, put a new key "
                "first in WEBPOP_ENCRYPTION_KEYS (rotatekeys --generate-key makes one), restart, and run this again."
            )

        def progress(name: str, done: int, total: int) -> None:
            self.stderr.write(f"{name}: {done}/{total}")

        reports = keyrotation.rotate_all(batch_size=opts["batch_size"], dry_run=opts["dry_run"], progress=progress)
        verb = "would be re-encrypted" if opts["dry_run"] else "re-encrypted"
        unreadable = 0
        for report in reports:
            line = (
                f"{report.name}: {report.total} stored, {report.rotated} {verb}, "
                f"{report.current} already under the newest key"
            )
            if report.changed_meanwhile:
                line += f", {report.changed_meanwhile} changed by their owner meanwhile (already under the newest key)"
            if report.unreadable:
                more = " …" if len(report.unreadable) > 20 else ""
                ids = ", ".join(str(pk) for pk in report.unreadable[:20]) + more
                line += f", {len(report.unreadable)} unreadable with every configured key (ids {ids})"
            self.stdout.write(line)
            unreadable += len(report.unreadable)
        if unreadable:
            raise CommandError(
                f"{unreadable} stored credentials cannot be decrypted with any configured key; "
                "keep the key they were encrypted with in WEBPOP_ENCRYPTION_KEYS, or re-enter those passwords."
            )
