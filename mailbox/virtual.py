"""Virtual views: lists across folders (Starred, Unread, All mail, Snoozed), and the sidebar's entries.

A view is a condition on the owner's messages and the order it lists them in. Each
condition has a partial index of its own (see Message.Meta), so a page is one short
index range scan at any mailbox size, like a folder's. Saved searches are searches
(mailbox/search.py) under a name: they list what the search page lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import CharField, Count, DateTimeField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .models import ALL_MAIL, INBOX_ORDER, Folder, Message, SavedSearch, UserFolder


@dataclass(frozen=True)
class Order:
    """How a list is sorted: by ``key`` (a field, or an annotation of that name), then by id.

    ``expression`` is the key over a row (a field's name, or an expression to annotate as ``key``);
    ``outer`` the same over the row of an enclosing query.
    """

    key: str
    expression: object
    outer: object
    ascending: bool = False

    def annotate(self, rows: QuerySet) -> QuerySet:
        return rows if isinstance(self.expression, str) else rows.annotate(**{self.key: self.expression})


BY_DATE = Order("date", "date", OuterRef("date"))
# Woken mail first: the Inbox's order (Message.INBOX_ORDER); its index is msg_owner_inbox_order_idx.
INBOX = Order(
    "listed_at", INBOX_ORDER, Coalesce(OuterRef("surfaced_at"), OuterRef("date"), output_field=DateTimeField())
)
SOONEST_WAKE = Order("snoozed_until", "snoozed_until", OuterRef("snoozed_until"), ascending=True)


# A folder's list, grouped: the rest of the conversation in the same folder. Named through the outer
# row rather than as the folder itself, so the conversation is found through msg_owner_thread_idx
# (with the folder's name, SQLite takes the Inbox's order index and reads every newer row).
SAME_FOLDER = Q(folder=OuterRef("folder"))


def folder_order(folder: str) -> Order:
    return INBOX if folder == Folder.INBOX else BY_DATE


@dataclass(frozen=True)
class View:
    slug: str
    label: Promise
    empty: Promise  # what an empty list says
    condition: Q
    order: Order = BY_DATE
    shortcut: str = ""  # the key after "g" that opens it (static/js/views.js)


VIEWS = {
    view.slug: view
    for view in (
        View("starred", _("Starred"), _("No starred messages."), ALL_MAIL & Q(flagged=True), shortcut="s"),
        View("snoozed", _("Snoozed"), _("Nothing snoozed."), Q(folder=Folder.SNOOZED), SOONEST_WAKE, shortcut="b"),
        View("unread", _("Unread"), _("No unread messages."), ALL_MAIL & Q(seen=False), shortcut="u"),
        View("all", _("All mail"), _("No messages."), ALL_MAIL, shortcut="a"),
    )
}


def ahead_in_conversation(condition: Q, order: Order) -> QuerySet:
    """Another message of the same conversation in the same list that the list shows first.

    A list grouped into conversations shows each conversation once, as the message no other
    one is ahead of: the first in the list's order, the newest one among equals (all of a
    conversation that comes back from snooze together comes back at one time).
    """
    rows = order.annotate(Message.objects.filter(condition)).filter(
        owner_id=OuterRef("owner_id"), thread_id=OuterRef("thread_id")
    )
    if order is BY_DATE:
        return rows.filter(Q(date__gt=OuterRef("date")) | Q(date=OuterRef("date"), id__gt=OuterRef("id")))
    first = f"{order.key}__lt" if order.ascending else f"{order.key}__gt"
    newer = Q(date__gt=OuterRef("date")) | Q(date=OuterRef("date"), id__gt=OuterRef("id"))
    return rows.filter(Q(**{first: order.outer}) | (Q(**{order.key: order.outer}) & newer))


def first_of_each_conversation(rows: QuerySet, condition: Q, order: Order) -> QuerySet:
    return rows.filter(~Exists(ahead_in_conversation(condition, order)))


def conversation_sizes(owner_id: int, condition: Q, thread_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(messages, unread) in a view for each conversation of ``thread_ids``, in one query."""
    rows = (
        Message.objects.filter(condition, owner_id=owner_id, thread_id__in=thread_ids)
        .values("thread_id")
        .annotate(total=Count("id"), unread=Count("id", filter=Q(seen=False)))
        .order_by()
    )
    return {row["thread_id"]: (row["total"], row["unread"]) for row in rows}


def folders_and_searches(owner_id: int) -> tuple[list[UserFolder], list[SavedSearch]]:
    """The owner's folders and saved searches, each by name, in one query (the sidebar's, on every list page)."""
    folder_rows = UserFolder.objects.filter(owner_id=owner_id).annotate(
        kind=Value("folder", output_field=CharField()), query=Value("", output_field=CharField())
    )
    search_rows = SavedSearch.objects.filter(owner_id=owner_id).annotate(kind=Value("search", output_field=CharField()))
    rows = (
        folder_rows.values_list("kind", "id", "name", "query")
        .order_by()
        .union(search_rows.values_list("kind", "id", "name", "query").order_by(), all=True)
        .order_by("kind", "name", "id")
    )
    found: tuple[list[UserFolder], list[SavedSearch]] = ([], [])
    for kind, pk, name, query in rows:
        if kind == "folder":
            found[0].append(UserFolder(id=pk, owner_id=owner_id, name=name))
        else:
            found[1].append(SavedSearch(id=pk, owner_id=owner_id, name=name, query=query))
    return found


def find_saved(searches: list[SavedSearch], query: str) -> SavedSearch | None:
    return next((s for s in searches if s.query == query), None)
