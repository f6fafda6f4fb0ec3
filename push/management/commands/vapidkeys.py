import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from push import vapid

KEY_FILE = "vapid_private_key"


class Command(BaseCommand):
    help = (
        "Create the VAPID key pair that Web Push needs, as <data dir>/vapid_private_key (mode 0600), unless one "
        "is configured; prints the public key. Restart webpop afterwards. With --env, print a new pair as "
        "environment variables instead and write nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--env", action="store_true", help="print WEBPOP_VAPID_* lines for a new pair; no file")

    def handle(self, *args, **opts):
        if opts["env"]:
            private = vapid.generate_private_key()
            self.stdout.write(f"WEBPOP_VAPID_PRIVATE_KEY={private}")
            self.stdout.write(f"WEBPOP_VAPID_PUBLIC_KEY={vapid.public_key_of(private)}")
            return
        path = settings.DATA_DIR / KEY_FILE
        if os.environ.get("WEBPOP_VAPID_PRIVATE_KEY") or os.environ.get("WEBPOP_VAPID_PRIVATE_KEY_FILE"):
            self.stderr.write("The key comes from WEBPOP_VAPID_PRIVATE_KEY; nothing written.")
            self.stdout.write(settings.WEBPOP_VAPID_PUBLIC_KEY)
            return
        if path.exists():
            try:
                public = vapid.public_key_of(path.read_text().strip())
            except vapid.VapidKeyError as exc:
                raise CommandError(f"{path}: {exc}") from None
            self.stderr.write(f"{path} exists already; nothing written.")
            self.stdout.write(public)
            return
        private = vapid.generate_private_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{path} was created meanwhile; run the command again.") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(private + "\n")
        self.stderr.write(f"Wrote {path}. Restart webpop's web and worker processes to turn Web Push on.")
        self.stdout.write(vapid.public_key_of(private))
