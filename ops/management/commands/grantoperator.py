from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from users import operators


class Command(BaseCommand):
    help = (
        f'Make USER an operator: a member of the "{operators.GROUP}" group (dashboard, account and user '
        "actions, invitations, metrics) and staff. --revoke takes them out of the group again."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="user name of the webpop user")
        parser.add_argument("--revoke", action="store_true", help="take the user out of the Operators group")

    def handle(self, *args, **opts):
        User = get_user_model()
        try:
            user = User.objects.get(username=opts["username"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {opts['username']!r}.") from None
        if opts["revoke"]:
            operators.revoke(user)
            self.stdout.write(f"{user.get_username()} is no longer in the {operators.GROUP} group.")
        else:
            operators.grant(user)
            self.stdout.write(f"{user.get_username()} is an operator.")
