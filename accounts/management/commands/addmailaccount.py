import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import actions
from accounts.models import DEFAULT_PORTS, Security
from accounts.policy import Policy


class Command(BaseCommand):
    help = "Add a POP3 account for OWNER (a user name); prints the new account id."

    def add_arguments(self, parser):
        parser.add_argument("owner", help="user name of the webpop user who owns the account")
        parser.add_argument("--host", required=True)
        parser.add_argument("--port", type=int, help="default: 995 for ssl, 110 otherwise")
        parser.add_argument("--security", choices=[c.value for c in Security], default=Security.SSL)
        parser.add_argument("--username", required=True)
        parser.add_argument("--password-stdin", action="store_true", required=True, help="read the password from stdin")
        parser.add_argument("--policy", default="keep", help="keep, delete, mirror, days:N or mirror+days:N")
        parser.add_argument("--label", default="")

    def handle(self, *args, **opts):
        User = get_user_model()
        try:
            owner = User.objects.get(username=opts["owner"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {opts['owner']!r}.") from None
        try:
            Policy.parse(opts["policy"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("No password on standard input.")
        port = opts["port"] or DEFAULT_PORTS[Security(opts["security"])]
        try:
            account = actions.create_account(
                owner,
                label=opts["label"],
                host=opts["host"],
                port=port,
                security=opts["security"],
                username=opts["username"],
                password=password,
                policy=opts["policy"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(str(account.id))
