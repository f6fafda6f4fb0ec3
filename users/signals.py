"""What other apps hear about users (users imports no app but accounts, so it tells them)."""

from django.dispatch import Signal

# Sent by actions.delete_user inside its transaction, before the user's rows go, with ``user``:
# what was stored for the user (mailbox) releases its files then.
user_deleting = Signal()
