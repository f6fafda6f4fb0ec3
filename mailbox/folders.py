"""User folders: create, rename, delete, and which folders a user may file mail into.

A message's ``folder`` holds a system folder value or ``u<id>`` of one of the
owner's UserFolder rows; every check here is per owner (invariant 7).
"""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext

from accounts.models import MailAccount
from webpop.lib import pagecache

from .models import Folder, ImportJob, Message, Rule, UserFolder

SYSTEM_TARGETS = [(f.value, f.label) for f in (Folder.INBOX, Folder.ARCHIVE, Folder.SPAM)]


class FolderError(ValueError):
    pass


def folder_id(slug: str) -> int | None:
    """The UserFolder id in ``u<id>``, None for anything else."""
    if slug.startswith("u") and slug[1:].isdigit():
        return int(slug[1:])
    return None


def user_folders(owner_id: int) -> list[UserFolder]:
    return list(UserFolder.objects.filter(owner_id=owner_id))


def owned_folder(owner_id: int, slug: str) -> UserFolder | None:
    pk = folder_id(slug)
    return UserFolder.objects.filter(owner_id=owner_id, id=pk).first() if pk is not None else None


def is_owned_slug(owner_id: int, slug: str) -> bool:
    pk = folder_id(slug)
    return pk is not None and UserFolder.objects.filter(owner_id=owner_id, id=pk).exists()


def label_for(owner_id: int, slug: str) -> str | None:
    """The name shown for a folder, None if the owner has no such folder."""
    if slug in Folder.values:
        return Folder(slug).label
    folder = owned_folder(owner_id, slug)
    return folder.name if folder else None


def target_choices(owner_id: int, *, system=SYSTEM_TARGETS) -> list[tuple[str, str]]:
    """Folders mail can be filed into (deliver-to, rules, import)."""
    return [*system, *((f.slug, f.name) for f in user_folders(owner_id))]


# Unread badges count to UNREAD_CAP and then show "999+": each folder's count reads at most
# UNREAD_CAP + 1 entries of the unread index, so a folder with 50,000 unread messages costs no
# more on every page than one with 1,000 (an exact count read them all, on every page view).
UNREAD_CAP = 999


def unread_counts(owner_id: int, slugs: list[str]) -> dict[str, int]:
    """Unread messages in each folder of ``slugs``, in one query; a count above UNREAD_CAP is UNREAD_CAP + 1."""
    if not slugs:
        return {}
    table = connection.ops.quote_name(Message._meta.db_table)
    # One capped count per folder, each an index-only range scan of msg_owner_unread_idx. Raw SQL:
    # the ORM cannot put LIMITed subqueries into one UNION on every database. Only the table name
    # (from the model) is formatted in; every value is a parameter.
    one = (
        f"SELECT CAST(%s AS varchar(20)), (SELECT COUNT(*) FROM (SELECT 1 FROM {table} "  # noqa: S608
        "WHERE owner_id = %s AND folder = %s AND NOT seen LIMIT %s) AS capped)"
    )
    params: list = []
    for slug in slugs:
        params += [str(slug), owner_id, str(slug), UNREAD_CAP + 1]  # str(): a Folder member is its value
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join([one] * len(slugs)), params)
        return {slug.strip(): count for slug, count in cursor.fetchall() if count}


def badge(count: int) -> int | str:
    """How a capped unread count is shown."""
    return f"{UNREAD_CAP}+" if count > UNREAD_CAP else count


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise FolderError(gettext("Give the folder a name."))
    if len(name) > 100:
        raise FolderError(gettext("Folder names are at most 100 characters."))
    if name.casefold() in {label.casefold() for label in Folder.labels} | {v for v in Folder.values}:
        raise FolderError(gettext("“%(name)s” is a built-in folder.") % {"name": name})
    return name


def create(owner_id: int, name: str) -> UserFolder:
    name = _clean_name(name)
    try:
        with transaction.atomic():
            folder = UserFolder.objects.create(owner_id=owner_id, name=name)
            pagecache.touch([owner_id])  # every list page names every folder
            return folder
    except IntegrityError:
        raise FolderError(gettext("You already have a folder called “%(name)s”.") % {"name": name}) from None


def rename(folder: UserFolder, name: str) -> UserFolder:
    name = _clean_name(name)
    folder.name = name
    try:
        with transaction.atomic():
            folder.save(update_fields=["name"])
            pagecache.touch([folder.owner_id])
    except IntegrityError:
        raise FolderError(gettext("You already have a folder called “%(name)s”.") % {"name": name}) from None
    return folder


@transaction.atomic
def delete(folder: UserFolder) -> int:
    """Remove a folder: its messages go back to the Inbox, and nothing keeps filing into it."""
    slug, owner_id = folder.slug, folder.owner_id
    moved = Message.objects.filter(owner_id=owner_id, folder=slug).update(folder=Folder.INBOX)
    MailAccount.objects.filter(owner_id=owner_id, deliver_to=slug).update(deliver_to=Folder.INBOX)
    ImportJob.objects.filter(owner_id=owner_id, folder=slug, state__in=ImportJob.ACTIVE).update(folder=Folder.INBOX)
    Rule.objects.filter(owner_id=owner_id, folder=slug).delete()
    folder.delete()
    pagecache.touch([owner_id])
    return moved
