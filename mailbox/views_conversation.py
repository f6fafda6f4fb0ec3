"""The message page: the conversation the message is in, read as one (mailbox/conversation.py).

``message_detail`` shows the conversation with the opened message and the newest unread
ones expanded, and marks those read. ``message_part`` gives one more message, expanded, when
the reader opens it on the page (a POST: it marks that message read too).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext, pgettext
from django.views.decorators.http import require_GET, require_POST

from webpop.lib import pagecache

from . import actions, conversation, rows, views, views_tabs
from . import sidebar as sidebar_module
from .models import VISIBLE_FOLDERS, Folder, Message


@login_required
@require_GET
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    """The conversation page; a plain view of it from the page cache while the user's mail is unchanged.

    The user's latest conversation is kept (one, webpop.lib.pagecache's slot): opening it again (back
    from an attachment or the print view, a second click in the reading pane, a reload) is served.
    A cached page was rendered with every message on it read, so serving it marks nothing.
    """
    if not pagecache.cacheable(request, {}):
        return _message_detail(request, message_id)
    return pagecache.serve(
        request,
        lambda csrf_token: _message_detail(request, message_id, csrf_token=csrf_token),
        slot=pagecache.CONVERSATION,
    )


def _message_detail(request: HttpRequest, message_id: int, *, csrf_token: str | None = None) -> HttpResponse:
    # The sidebar has the user's accounts (from the cache while their mail is unchanged): no join for them.
    sidebar = sidebar_module.load(request.user.id)
    accounts = {a.id: a for a in sidebar.accounts}
    # Its sender-trust row comes along (spam.sender.for_message): the opened message is always expanded.
    message = get_object_or_404(
        Message.objects.defer(*conversation.DEFERRED).select_related("sender_trust"), id=message_id, owner=request.user
    )
    if message.account_id in accounts:
        message.account = accounts[message.account_id]
    shown = conversation.MAX_SHOWN if request.GET.get("earlier") == "all" else None
    thread = conversation.load(message, shown=shown, accounts=accounts, lines=True)
    expanded = [m for m in thread.messages if m.id in thread.expanded]
    # The list, "download all", inline images and calendar cards of each expanded message read them.
    prefetch_related_objects(expanded, "attachments")
    parts = {}
    for m in expanded:
        # The page's query (plain text, images, quoted text) is the opened message's choice.
        parts[m.id] = conversation.part(request, m, request.GET if m.id == message.id else None, page_id=message.id)
    actions.mark_opened(request.user.id, [m.id for m in expanded if not m.seen])
    # The toolbar acts on the conversation where the opened message is (its Inbox part, say; not Sent).
    acted_on = [m.id for m in thread.messages if m.folder == message.folder]
    labels = dict(Folder.choices) | {f.slug: f.name for f in sidebar.user_folders}
    newer, older = views._neighbours(message)
    # Each message's URLs from a pattern, not two reverse() per message; its date by a formatter parsed once.
    part_url, open_url = conversation.url_pattern("mailbox:message_part"), conversation.url_pattern("mailbox:message")
    print_url = conversation.url_pattern("mailbox:print_conversation" if len(thread.messages) > 1 else "mailbox:print")
    zone = timezone.get_current_timezone()
    # Translators: a date and time in short lists (Django date format syntax).
    short_date = rows.date_formatter(pgettext("short date and time", "M j, H:i"))
    local = {m.id: m.date.astimezone(zone) for m in thread.messages}
    context = {
        "message": message,
        "thread": thread,
        # Each message, its expanded part (or None), its folder when not the opened message's, its URLs,
        # its date (ISO 8601 and short, in the reader's time zone).
        "items": [
            (
                m,
                parts.get(m.id),
                labels.get(m.folder, "") if m.folder != message.folder else "",
                part_url.format(m.id),
                open_url.format(m.id),
                local[m.id].isoformat(),
                short_date(local[m.id]),
            )
            for m in thread.messages
        ],
        "acted_on": acted_on,
        "folders": VISIBLE_FOLDERS,
        "sidebar": sidebar_module.links(sidebar, current=message.folder),
        "move_targets": [(value, label) for value, label in VISIBLE_FOLDERS if value != message.folder],
        "folder_url": views._folder_url(message.folder),
        "folder_label": dict(Folder.choices).get(message.folder) or gettext("Back"),
        "print_url": print_url.format(message.id),
        "newer": newer,
        "older": older,
        "newer_url": newer and open_url.format(newer),
        "older_url": older and open_url.format(older),
        "sender_tabs": views_tabs.choices(request, message),
    }
    if csrf_token is not None:
        context["csrf_token"] = csrf_token  # overrides the context processor's: pagecache swaps in the real one
    return render(request, "mailbox/message.html", context)


@login_required
@require_POST
def message_part(request: HttpRequest, message_id: int) -> HttpResponse:
    """One message of a conversation, expanded (``_message_part.html``), for the page to show in place."""
    message = views._own_message(request, message_id)
    prefetch_related_objects([message], "attachments")
    part = conversation.part(request, message, request.GET)
    actions.mark_opened(request.user.id, [message.id])
    return render(request, "mailbox/_message_part.html", {"part": part})
