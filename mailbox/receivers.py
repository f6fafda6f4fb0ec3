"""What the mailbox does when other apps tell it something (connected in apps.MailboxConfig.ready)."""

from __future__ import annotations

from django.dispatch import receiver

from accounts.signals import account_deleting
from users.signals import user_deleting

from . import actions, importer, storage_gc, storage_refs
from .models import ImportJob


@receiver(account_deleting)
def release_account_files(sender, account, **kwargs) -> None:
    """In the deleting transaction, before the rows go: their files are released, freed after commit
    by the sweep once nothing references them (the rows are gone by then)."""
    files = storage_refs.files_of("account", [account.pk])
    importer.forget_uploads(ImportJob.objects.filter(account=account))
    storage_gc.release(files)
    actions.free_released_after_commit()


@receiver(user_deleting)
def release_user_files(sender, user, **kwargs) -> None:
    """The same for everything stored for a user, shared files freed only once no other row has them."""
    files = storage_refs.files_of("owner", [user.pk])
    importer.forget_uploads(ImportJob.objects.filter(owner=user))
    storage_gc.release(files)
    actions.free_released_after_commit()
