"""A conversation read as one page: every message of a thread, oldest first.

The page shows the newest ``SHOWN`` messages of the thread (the owner's, not deleted for
good); older ones are counted and a link shows up to ``MAX_SHOWN``. The opened message and
the newest unread ones are shown expanded; the others as one line each (sender, snippet,
date), their bodies loaded only when the reader expands them (``views_conversation.part``),
so a long thread costs one query for its rows and the expanded messages' bodies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

from django.db import connection
from django.http import HttpRequest, QueryDict
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.translation import gettext, pgettext

from accounts.models import MailAccount
from spam import sender

from . import damage, views_html
from .models import Folder, Message
from .rows import date_formatter

SHOWN = 100
MAX_SHOWN = 1000
OPEN_UNREAD = 5  # unread messages shown expanded at most (the newest ones)
# Never read for a conversation's rows: the search text and the sanitized HTML can be large.
DEFERRED = ("search_text", "search_document", "html_cache", "references", "in_reply_to")


@dataclass(frozen=True, slots=True)
class Line:
    """A collapsed message of the page: what its line shows, read as plain values (no model instance)."""

    id: int
    from_name: str
    from_email: str
    snippet: str
    date: dt.datetime
    seen: bool
    flagged: bool
    folder: str

    @property
    def sender(self) -> str:
        return self.from_name or self.from_email or gettext("(unknown sender)")


LINE_FIELDS = tuple(Line.__slots__)


@dataclass
class Conversation:
    opened: Message
    messages: list[Message | Line]  # oldest first; expanded ones are always Messages
    earlier: int = 0  # older messages of the thread not shown
    expanded: set[int] = field(default_factory=set)

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.messages]


def thread_rows(owner_id: int, thread_id: int):
    return Message.objects.filter(owner_id=owner_id, thread_id=thread_id).exclude(folder=Folder.PURGED)


# The page's lines, newest first, as thread_rows(...).order_by("-date", "-id").values_list(*LINE_FIELDS)[:limit]
# reads them, in plain SQL: the page runs it on every view, and the ORM took longer to build this query
# than the database to run it (msg_owner_thread_idx).
_LINES_SQL = """
SELECT {columns} FROM {table}
WHERE owner_id = %(owner)s AND thread_id = %(thread)s AND folder <> %(purged)s
ORDER BY date DESC, id DESC LIMIT %(limit)s
"""


def _newest_lines(owner_id: int, thread_id: int, limit: int) -> list[Line]:
    sql = _LINES_SQL.format(columns=", ".join(LINE_FIELDS), table=connection.ops.quote_name(Message._meta.db_table))
    params = {"owner": owner_id, "thread": thread_id, "purged": str(Folder.PURGED), "limit": limit}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    # SQLite gives the stored UTC time without its zone (PostgreSQL's is aware, in UTC).
    return [
        Line(
            id_,
            name,
            email,
            snippet,
            date if date.tzinfo else date.replace(tzinfo=dt.UTC),
            bool(seen),
            bool(flag),
            folder,
        )
        for id_, name, email, snippet, date, seen, flag, folder in found
    ]


def load(
    opened: Message,
    *,
    shown: int | None = None,
    defer: tuple[str, ...] = DEFERRED,
    accounts: dict[int, MailAccount] | None = None,
    lines: bool = False,
) -> Conversation:
    """The conversation ``opened`` belongs to: its newest ``shown`` messages, oldest first, and who is expanded.

    ``shown``: SHOWN by default. ``defer``: fields not read (the print view, which inlines every body, reads them all).
    ``accounts``: the owner's accounts by id (the sidebar's, already read), set on each message instead of a join.
    ``lines``: the collapsed messages as Lines (the page's lines need a few fields, not model instances); the
    expanded ones are read as Messages then, in one more query when any but the opened one is expanded.
    """
    shown = SHOWN if shown is None else shown
    if not opened.thread_id:
        return Conversation(opened, [opened], expanded={opened.id})
    if lines:
        newest = _newest_lines(opened.owner_id, opened.thread_id, shown + 1)
    else:
        rows = thread_rows(opened.owner_id, opened.thread_id).order_by("-date", "-id").defer(*defer)
        if accounts is None:
            rows = rows.select_related("account")
        newest = list(rows[: shown + 1])
        _set_accounts(newest, accounts)
    earlier = 0
    if len(newest) > shown:
        newest = newest[:shown]
        earlier = thread_rows(opened.owner_id, opened.thread_id).count() - shown
    # The opened message is always on the page (older than those shown, it comes first).
    messages = [opened if m.id == opened.id else m for m in reversed(newest)]
    if opened.id not in {m.id for m in messages} and opened.folder != Folder.PURGED:
        messages.insert(0, opened)
        earlier -= 1
    elif opened.id not in {m.id for m in messages}:
        messages = [opened]  # deleted for good: shown alone, as it always was
    unread = [m.id for m in messages if not m.seen][-OPEN_UNREAD:]
    expanded = {opened.id, *unread}
    if lines and len(expanded) > 1:
        full = thread_rows(opened.owner_id, opened.thread_id).filter(id__in=expanded - {opened.id}).defer(*defer)
        if accounts is None:
            full = full.select_related("account")
        by_id = {m.id: m for m in full}
        _set_accounts(by_id.values(), accounts)
        messages = [by_id.get(m.id, m) for m in messages]
        expanded = {m.id for m in messages if m.id in expanded and isinstance(m, Message)}
    return Conversation(opened, messages, max(earlier, 0), expanded)


def _set_accounts(messages, accounts: dict[int, MailAccount] | None) -> None:
    for m in messages if accounts else ():
        if m.account_id in accounts:
            m.account = accounts[m.account_id]


# The links and forms of an expanded message (_message_part.html), by what they do.
PART_URLS = {"reply": "outgoing:reply", "print": "mailbox:print", "source": "mailbox:source", "raw": "mailbox:raw"}


def url_pattern(name: str) -> str:
    """The URL of ``name`` for a message id, as a str.format pattern (ids are digits: safe in a path);
    reversed once per process for each name and script prefix."""
    return _url_pattern(name, get_script_prefix())


@lru_cache(maxsize=64)
def _url_pattern(name: str, _prefix: str) -> str:
    # The prefix is only part of the key: reverse() uses the active one.
    before, _, after = reverse(name, args=[0]).rpartition("0")
    return before.replace("{", "{{").replace("}", "}}") + "{}" + after.replace("{", "{{").replace("}", "}}")


def part(request: HttpRequest, message: Message, query: QueryDict | None = None, *, page_id: int | None = None) -> dict:
    """One expanded message for ``templates/mailbox/_message_part.html``: its body and attachments.

    ``query``: what the reader chose for this message (plain text, images, quoted text). ``page_id``: the
    conversation page's message, where starring returns to (this message's own page by default).
    """
    query = QueryDict() if query is None else query
    attachments = list(message.attachments.all())
    marks = damage.marked([message.raw_path, *(a.stored_path for a in attachments)])
    # A damaged original shows no body, not even one sanitized earlier: it may come from the damaged bytes.
    damaged = bool(damage.damaged_now(message.raw_path, message.sha256, marks.get(message.raw_path)))
    unreadable = False
    try:
        if damaged:
            raise damage.DamagedFileError(message.raw_path, marks[message.raw_path])
        body = views_html.cached_body_context(request, message, query)
    except damage.DamagedFileError:
        body, damaged = views_html.body_context(request, message, None, query), True
    except (OSError, ValueError):  # the row names no file (a tombstone)
        body, unreadable = views_html.body_context(request, message, None, query), True
    damaged_attachments = any(a.stored_path in marks for a in attachments)
    local = timezone.localtime(message.date)
    return {
        "message": message,
        "unreadable": unreadable,
        "damaged": damaged,
        "damaged_attachments": damaged_attachments,
        "attachments": attachments,
        "trust": sender.for_message(message),
        # One reverse() per name, not one per link of each expanded message.
        "urls": {
            **{key: url_pattern(name).format(message.id) for key, name in PART_URLS.items()},
            "back": url_pattern("mailbox:message").format(message.id if page_id is None else page_id),
        },
        # Its date as the |date filter gives it (in the reader's time zone), with the format parsed once.
        "date_iso": local.isoformat(),
        # Translators: a message's date and time in its header (Django date format syntax).
        "date_full": date_formatter(pgettext("full date and time", "D, M j, Y, g:i A"))(local),
        **views_html.with_attachments(message, body),
    }
