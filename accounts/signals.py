"""What other apps hear about mail accounts (accounts imports no app above it, so it tells them)."""

from django.dispatch import Signal

# Sent by actions.delete_account inside its transaction, before the account's rows go, with
# ``account``: what was stored from the account (mailbox) releases its files then.
account_deleting = Signal()
