"""Incoming rules: "from / to / subject contains X" → move, star, mark read, mark spam.

At ingest the owner's rules are loaded once per batch and matched in Python;
the effects become one UPDATE per distinct outcome, so a batch costs a few
queries however many messages or rules it has. Rules run in ``position``
order: flags add up, and the first rule that files a message decides its folder.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from webpop.lib import pagecache

from . import folders
from .models import Folder, Message, Rule

# Mail already thrown away or judged is left alone when running a rule on existing mail.
_UNTOUCHED = [Folder.TRASH, Folder.PURGED, Folder.SPAM]


class RuleError(ValueError):
    pass


def _haystack(message: Message, field: str) -> str:
    if field == Rule.Field.FROM:
        return f"{message.from_name} {message.from_email}"
    if field == Rule.Field.TO:
        return f"{message.to} {message.cc}"
    return message.subject


def matches(rule: Rule, message: Message) -> bool:
    if rule.account_id is not None and rule.account_id != message.account_id:
        return False
    return rule.contains.casefold() in _haystack(message, rule.field).casefold()


def _target(rule: Rule) -> str | None:
    if rule.action == Rule.Action.SPAM:
        return Folder.SPAM
    if rule.action == Rule.Action.MOVE:
        return rule.folder or None
    return None


def apply(messages: list[Message]) -> None:
    """Apply the owner's enabled rules to newly stored ``messages`` (all of one owner)."""
    if not messages:
        return
    rules = list(Rule.objects.filter(owner_id=messages[0].owner_id, enabled=True))
    if not rules:
        return
    by_folder: dict[str, list[int]] = defaultdict(list)
    star: list[int] = []
    read: list[int] = []
    for message in messages:
        folder = None
        for rule in rules:
            if not matches(rule, message):
                continue
            if rule.action == Rule.Action.STAR:
                star.append(message.id)
                message.flagged = True
            elif rule.action == Rule.Action.READ:
                read.append(message.id)
                message.seen = True
            elif folder is None:
                folder = _target(rule)
        if folder and folder != message.folder:
            by_folder[folder].append(message.id)
            message.folder = folder
    if not (by_folder or star or read):
        return
    owner_id = messages[0].owner_id
    owned = Message.objects.filter(owner_id=owner_id)
    with transaction.atomic():
        for folder, ids in by_folder.items():
            owned.filter(id__in=ids).update(folder=folder)
        if star:
            owned.filter(id__in=star).update(flagged=True)
        if read:
            owned.filter(id__in=read).update(seen=True)
        pagecache.touch([owner_id])


def _condition(rule: Rule) -> Q:
    text = rule.contains
    if rule.field == Rule.Field.FROM:
        return Q(from_name__icontains=text) | Q(from_email__icontains=text)
    if rule.field == Rule.Field.TO:
        return Q(to__icontains=text) | Q(cc__icontains=text)
    return Q(subject__icontains=text)


def matching_existing(owner_id: int, rule: Rule) -> QuerySet:
    rows = Message.objects.filter(_condition(rule), owner_id=owner_id).exclude(folder__in=_UNTOUCHED)
    if rule.account_id is not None:
        rows = rows.filter(account_id=rule.account_id)
    return rows


@transaction.atomic
def run_on_existing(owner_id: int, rule: Rule) -> int:
    """Apply one rule to the owner's mail already stored (not Trash or Spam); returns how many changed."""
    rows = matching_existing(owner_id, rule)
    folder = _target(rule)
    if rule.action == Rule.Action.STAR:
        changed = rows.filter(flagged=False).update(flagged=True)
    elif rule.action == Rule.Action.READ:
        changed = rows.filter(seen=False).update(seen=True)
    elif folder:
        changed = rows.exclude(folder=folder).update(folder=folder)
    else:
        changed = 0
    if changed:
        pagecache.touch([owner_id])
    return changed


def create(owner_id: int, *, field: str, contains: str, action: str, folder: str = "", account=None) -> Rule:
    """A new rule at the end of the owner's list; a Move needs one of the owner's folders."""
    contains = (contains or "").strip()
    if not contains:
        raise RuleError(gettext("Say what the field should contain."))
    if action == Rule.Action.MOVE:
        if folder not in {Folder.INBOX, Folder.ARCHIVE} and not folders.is_owned_slug(owner_id, folder):
            raise RuleError(gettext("Choose a folder to move to."))
    else:
        folder = ""
    if account is not None and account.owner_id != owner_id:
        raise RuleError(gettext("Choose one of your accounts."))
    last = Rule.objects.filter(owner_id=owner_id).order_by("-position").values_list("position", flat=True).first()
    return Rule.objects.create(
        owner_id=owner_id,
        account=account,
        field=field,
        contains=contains[:200],
        action=action,
        folder=folder,
        position=(last or 0) + 1,
    )
