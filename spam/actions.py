"""What users decide about spam: marking mail "Spam" / "Not spam", their thresholds, an account's filter.

Every function takes the owner and touches only the owner's rows (invariant 7). Marks are
called by mailbox/actions.py inside the transaction that moves the messages.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import MailAccount
from mailbox.models import Folder, Message
from webpop.lib import pagecache

from . import learning, tasks
from .models import SafeSender, SpamSettings


def moved(owner_id: int, previous: dict[int, str], folder: str) -> None:
    """The owner moved messages (``previous``: id → folder before) to ``folder``: into Spam, or out of it."""
    if folder == Folder.SPAM:
        marked = [pk for pk, was in previous.items() if was != Folder.SPAM]
        if marked:
            mark_spam(owner_id, marked)
    elif folder != Folder.TRASH:  # thrown away from Spam: no opinion about it
        released = [pk for pk, was in previous.items() if was == Folder.SPAM]
        if released:
            mark_not_spam(owner_id, released)


def mark_spam(owner_id: int, message_ids: list[int]) -> None:
    """Train the owner's Bayes with these as spam; their senders are no longer safe."""
    senders = _senders(owner_id, message_ids)
    SafeSender.objects.filter(owner_id=owner_id, address__in=senders).delete()
    _learn_later(owner_id, message_ids, spam=True)


@transaction.atomic
def mark_not_spam(owner_id: int, message_ids: list[int]) -> None:
    """Train the owner's Bayes with these as wanted mail; their senders are never filtered into Spam again."""
    marked = Message.objects.filter(owner_id=owner_id, id__in=message_ids).exclude(spam_verdict="")
    if marked.update(spam_verdict=""):
        pagecache.touch([owner_id])  # the lists showed them as probably spam
    senders = _senders(owner_id, message_ids)
    SafeSender.objects.bulk_create(
        [SafeSender(owner_id=owner_id, address=address) for address in sorted(senders)], ignore_conflicts=True
    )
    _learn_later(owner_id, message_ids, spam=False)


def _learn_later(owner_id: int, message_ids: list[int], *, spam: bool) -> None:
    """Training rows in this transaction; a worker woken after commit sends them (beat's sweep would too)."""
    if learning.learn_later(owner_id, message_ids, spam=spam):
        transaction.on_commit(tasks.learn_pending.delay, robust=True)


def undone(owner_id: int, message_ids) -> None:
    """A move was undone: training it asked for and that has not run yet is forgotten."""
    learning.cancel(owner_id, list(message_ids))


def _senders(owner_id: int, message_ids: list[int]) -> set[str]:
    rows = Message.objects.filter(owner_id=owner_id, id__in=message_ids).values_list("from_email", flat=True)
    return {address.lower()[:320] for address in rows if address}


@transaction.atomic
def set_thresholds(owner_id: int, spam_score: float | None, probable_score: float | None) -> None:
    """The owner's score thresholds for rspamd's verdicts (None: rspamd's actions decide)."""
    if spam_score is None and probable_score is None:
        SpamSettings.objects.filter(user_id=owner_id).delete()
        return
    SpamSettings.objects.update_or_create(
        user_id=owner_id, defaults={"spam_score": spam_score, "probable_score": probable_score}
    )


@transaction.atomic
def set_provider_trust(owner_id: int, account_id: int, *, trust: bool, authserv_id: str) -> bool:
    """Whether the owner's account trusts its provider's spam verdict; False when it is not the owner's."""
    return (
        MailAccount.objects.filter(id=account_id, owner_id=owner_id).update(
            spam_trust_provider=trust, spam_authserv_id=authserv_id.strip().lower()[:255]
        )
        == 1
    )
