from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST

from accounts.models import MailAccount, Profile

from . import actions, folders, listing, mime, pagecache, search, store, views_html
from . import rows as rows_module
from .models import VISIBLE_FOLDERS, Attachment, Folder, Message, UserFolder

LIST_FIELDS = (
    "id", "subject", "from_name", "from_email", "snippet", "date", "seen", "flagged", "has_attachments", "thread_id",
    "folder",
)  # fmt: skip
BULK_ACTIONS = {"read", "unread", "star", "unstar", "archive", "inbox", "spam", "trash", "forever"}
CACHED_PAGE_PARAMS = {"account": str.isdigit, "view": {"messages", "conversations"}.__contains__}


@login_required
def inbox(request: HttpRequest, folder: str = Folder.INBOX) -> HttpResponse:
    """A folder of all the user's accounts (or one, with ``?account=``), or search results (``?q=``).

    The first page of a folder (of all accounts or one, either view) comes from
    mailbox.pagecache while the user's mail is unchanged. Search results are always
    computed (the search index changes without the mail changing), and so are older
    pages (``?before=``), which people seldom load twice.
    """
    if not pagecache.cacheable(request, CACHED_PAGE_PARAMS):
        return _inbox(request, folder)
    return pagecache.serve(request, lambda csrf_token: _inbox(request, folder, csrf_token=csrf_token))


@dataclass(frozen=True)
class Sidebar:
    """What a list page shows beside its rows; kept by pagecache.remembered while the mail is unchanged."""

    user_folders: list[UserFolder]
    accounts: list[MailAccount]
    unread: dict[str, int | str]


def _sidebar(owner_id: int) -> Sidebar:
    user_folders = folders.user_folders(owner_id)
    return Sidebar(
        user_folders=user_folders,
        accounts=list(MailAccount.objects.filter(owner_id=owner_id).only("id", "label", "host", "username", "policy")),
        unread=_unread_badges(owner_id, user_folders),
    )


def _inbox(request: HttpRequest, folder: str, *, csrf_token: str | None = None) -> HttpResponse:
    sidebar = pagecache.remembered(request.user.id, "sidebar", lambda: _sidebar(request.user.id))
    user_folders, accounts, unread = sidebar.user_folders, sidebar.accounts, sidebar.unread
    folder_label = _folder_label(folder, user_folders)
    query = request.GET.get("q", "").strip()
    # Plain rows, not model instances: a page builds 51 of them, and instances cost twice as much.
    rows = Message.objects.filter(owner=request.user).values_list(*LIST_FIELDS, named=True)
    account = None
    if request.GET.get("account", "").isdigit():
        # The user's own accounts are all listed: another user's id is not among them.
        account = next((a for a in accounts if a.id == int(request.GET["account"])), None)
        if account is None:
            raise Http404
        rows = rows.filter(account=account)
    parsed = search.parse(query)
    error = None
    grouped = False
    window = _search_window(rows, parsed, user_folders) if query else None
    if query:
        rows = rows.exclude(folder=Folder.PURGED)
        if not any(op == "in" for op, _value, _neg in parsed.filters):
            rows = rows.exclude(folder__in=[Folder.TRASH, Folder.SPAM])  # as mail clients search
        try:
            rows = search.apply(rows, parsed)
        except search.SearchError as exc:
            error, rows = str(exc), rows.none()
    else:
        rows = rows.filter(folder=folder)
        grouped = _conversations_on(request)
        if grouped:
            rows = rows.filter(~Exists(_newer_in_conversation()))
    try:
        page = listing.page(
            rows, before=request.GET.get("before"), after=request.GET.get("after"), window=None if error else window
        )
    except listing.BadCursor:
        raise Http404 from None
    shown = rows_module.present(
        page.rows,
        highlight=parsed.highlight_terms() if query else None,
        conversations=_conversation_sizes(request.user.id, page.rows, folder) if grouped else None,
    )
    context = {
        "page": page,
        "rows_html": rows_module.render(shown),
        "folder": folder,
        "folder_label": gettext("Search") if query else folder_label,
        **_folder_links(unread, user_folders, current=None if query else folder),
        "pager_query": _pager_query(query, account, request.GET.get("view")),
        "grouped": grouped,
        "accounts": accounts,
        "account": account,
        "query": query,
        "search_error": error,
        "unread": unread,
        "unread_cap": folders.UNREAD_CAP,
        "move_targets": [*folders.SYSTEM_TARGETS, *((f.slug, f.name) for f in user_folders)],
        "undo": request.session.get("undo"),
        "trash_days": settings.WEBPOP_TRASH_DAYS,
        "mirror_accounts": any(a.policy.startswith("mirror") for a in accounts),
    }
    if csrf_token is not None:
        context["csrf_token"] = csrf_token  # overrides the context processor's: pagecache swaps in the real one
    return render(request, "mailbox/inbox.html", context)


def _folder_links(unread: dict, user_folders: list, *, current: str | None) -> dict:
    """The folder list's links as (url, label, unread, ...) tuples, without a reverse() per link."""
    inbox_url = reverse("mailbox:inbox")
    # Slugs are system folder names or u<id>, safe in a path as they are.
    before_slug, _, after_slug = reverse("mailbox:folder", args=["0"]).rpartition("0")
    folder_url = before_slug + "{}" + after_slug
    return {
        "inbox_url": inbox_url,
        "folder_links": [
            (
                inbox_url if value == Folder.INBOX else folder_url.format(value),
                label,
                unread.get(value, 0) if value in (Folder.INBOX, Folder.SPAM) else 0,
                "unread-badge" if value == Folder.INBOX else "",  # mail.js updates it
                value == current,
            )
            for value, label in VISIBLE_FOLDERS
        ],
        "user_folder_links": [
            (folder_url.format(f.slug), f.name, unread.get(f.slug, 0), f.slug == current) for f in user_folders
        ],
    }


def _search_window(rows, parsed: search.ParsedQuery, user_folders: list) -> listing.Window | None:
    """Where a search may look first (listing.Window): every folder it covers, newest mail first.

    A search covers every folder but Trash, Spam and the tombstones; a message's folder is a
    Folder value or one of the owner's folders, so this list names all of them. With ``in:``
    the search's own folder condition decides, unwindowed.
    """
    if any(op == "in" for op, _value, _neg in parsed.filters):
        return None
    skipped = {Folder.PURGED, Folder.TRASH, Folder.SPAM}
    covered = [value for value in Folder.values if value not in skipped] + [f.slug for f in user_folders]
    return listing.Window(rows=rows, folders=covered)


def _pager_query(query: str, account: MailAccount | None, view: str | None) -> str:
    """The query string the Newer/Older links keep (each part ends with ``&``)."""
    keep = {"q": query, "account": account.id if account else "", "view": view or ""}
    return "".join(f"{urlencode({k: v})}&" for k, v in keep.items() if v)


def _conversations_on(request: HttpRequest) -> bool:
    """The user's choice (Preferences), overridden for one page by ``?view=messages|conversations``."""
    view = request.GET.get("view")
    if view in {"messages", "conversations"}:
        return view == "conversations"
    choice = request.session.get("conversations")
    if choice is None:  # once per session, like the time zone
        choice = Profile.objects.filter(user_id=request.user.id).values_list("conversations", flat=True).first()
        choice = True if choice is None else choice
        request.session["conversations"] = choice
    return choice


def _newer_in_conversation():
    """A newer message of the same conversation in the same folder: only the newest one is listed."""
    return Message.objects.filter(
        owner_id=OuterRef("owner_id"), thread_id=OuterRef("thread_id"), folder=OuterRef("folder")
    ).filter(Q(date__gt=OuterRef("date")) | Q(date=OuterRef("date"), id__gt=OuterRef("id")))


def _conversation_sizes(owner_id: int, rows: list, folder: str) -> dict[int, tuple[int, int]]:
    """(messages, unread) in ``folder`` of each listed conversation, in one query."""
    thread_ids = sorted({m.thread_id for m in rows if m.thread_id})
    return listing.conversation_sizes(owner_id, folder, thread_ids) if thread_ids else {}


def _folder_label(folder: str, user_folders: list) -> str:
    """A system folder's label or the name of one of the user's folders; anything else is a 404."""
    if folder in Folder.values and folder != Folder.PURGED:  # tombstones are never listed
        return Folder(folder).label
    for user_folder in user_folders:
        if user_folder.slug == folder:
            return user_folder.name
    raise Http404


def _unread_badges(owner_id: int, user_folders: list) -> dict[str, int | str]:
    """Unread in Inbox, Spam and each user folder (keyed by slug) as shown: 999 at most, then "999+"."""
    counts = folders.unread_counts(owner_id, [Folder.INBOX, Folder.SPAM, *(f.slug for f in user_folders)])
    return {slug: folders.badge(n) for slug, n in counts.items()}


@login_required
def counts(request: HttpRequest) -> JsonResponse:
    """For the open page to notice new mail: the inbox's unread count and its newest message.

    ``unread`` stops at ``folders.UNREAD_CAP + 1`` (the page shows "999+" then).
    """
    newest = (
        Message.objects.filter(owner=request.user, folder=Folder.INBOX).order_by("-date", "-id").values("id").first()
    )
    return JsonResponse(
        {
            "unread": folders.unread_counts(request.user.id, [Folder.INBOX]).get(Folder.INBOX, 0),
            "newest": newest["id"] if newest else None,
        }
    )


@login_required
@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    """Toolbar actions on the selected messages."""
    action = request.POST.get("action", "")
    moving = action == "move"  # the "Move to…" select: a system folder or one of the user's own
    if moving:
        action = request.POST.get("folder", "")
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:1000]
    back = _safe_next(request)
    if not (actions.can_move_to(request.user.id, action) if moving else action in BULK_ACTIONS):
        messages.error(request, gettext("Unknown action."))
        return redirect(back)
    if not ids:
        messages.info(request, gettext("Select one or more messages first."))
        return redirect(back)
    owner = request.user.id
    if action == "forever":
        count = actions.empty_trash(owner, ids)
        messages.success(request, gettext("Deleted %(count)d for good.") % {"count": count})
    elif action in {"read", "unread"}:
        actions.set_seen(owner, ids, action == "read")
    elif action in {"star", "unstar"}:
        actions.set_flagged(owner, ids, action == "star")
    else:
        previous = actions.move(owner, ids, action)
        request.session["undo"] = {"previous": {str(k): v for k, v in previous.items()}, "action": action}
        label = folders.label_for(owner, action)
        text = ngettext(
            "%(count)d message moved to %(folder)s.", "%(count)d messages moved to %(folder)s.", len(previous)
        )
        messages.success(request, text % {"count": len(previous), "folder": label})
    return redirect(back)


@login_required
@require_POST
def empty_trash(request: HttpRequest) -> HttpResponse:
    count = actions.empty_trash(request.user.id)
    messages.success(request, gettext("Trash emptied: %(count)d deleted for good.") % {"count": count})
    return redirect("mailbox:folder", folder=Folder.TRASH)


@login_required
@require_POST
def undo(request: HttpRequest) -> HttpResponse:
    pending = request.session.pop("undo", None)
    if pending:
        restored = actions.restore(request.user.id, {int(k): v for k, v in pending["previous"].items()})
        messages.success(request, gettext("Undone: %(count)d restored.") % {"count": restored})
    return redirect(_safe_next(request))


def _safe_next(request: HttpRequest) -> str:
    target = request.GET.get("next") or request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("mailbox:inbox")


def _own_message(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(Message.objects.select_related("account"), id=message_id, owner=request.user)


@login_required
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _own_message(request, message_id)
    parsed = None
    try:
        with store.open_file(message.raw_path) as fh:
            parsed = mime.parse_file(fh)
        body = parsed.text_body or parsed.html_body
        body_is_html = not parsed.text_body and bool(parsed.html_body)
    except OSError:
        body, body_is_html = "", False
        messages.error(request, gettext("The stored copy of this message cannot be read."))
    if not message.seen:
        Message.objects.filter(id=message.id, owner_id=message.owner_id).update(seen=True)
    return render(
        request,
        "mailbox/message.html",
        {
            "message": message,
            "body": body,
            "body_is_html": body_is_html,
            "attachments": message.attachments.all(),
            "folders": VISIBLE_FOLDERS,
            "move_targets": [(value, label) for value, label in VISIBLE_FOLDERS if value != message.folder],
            "folder_url": _folder_url(message.folder),
            "folder_label": dict(Folder.choices).get(message.folder) or gettext("Back"),
            "newer": _neighbour(message, newer=True),
            "older": _neighbour(message, newer=False),
            "conversation": _conversation(message),
            "calendar_summary": getattr(parsed, "calendar_summary", "") if parsed else "",
            **views_html.message_context(request, message, parsed),
        },
    )


def _folder_url(folder: str) -> str:
    if folder == Folder.INBOX:
        return reverse("mailbox:inbox")
    return reverse("mailbox:folder", args=[folder])


def _neighbour(message: Message, *, newer: bool) -> int | None:
    """The next message up or down the same folder's list (newest first)."""
    rows = Message.objects.filter(owner_id=message.owner_id, folder=message.folder)
    if newer:
        rows = rows.filter(Q(date__gt=message.date) | Q(date=message.date, id__gt=message.id)).order_by("date", "id")
    else:
        rows = rows.filter(Q(date__lt=message.date) | Q(date=message.date, id__lt=message.id)).order_by("-date", "-id")
    return rows.values_list("id", flat=True).first()


def _conversation(message: Message) -> list[Message]:
    """The other messages of this conversation (not deleted for good), oldest first."""
    if not message.thread_id:
        return []
    rows = (
        Message.objects.filter(owner_id=message.owner_id, thread_id=message.thread_id)
        .exclude(folder=Folder.PURGED)
        .order_by("date", "id")
        .only("id", "subject", "from_name", "from_email", "date", "seen", "folder")[:200]
    )
    rows = list(rows)
    return rows if len(rows) > 1 else []


@login_required
def message_source(request: HttpRequest, message_id: int) -> FileResponse:
    """The raw message as plain text in the browser ("view source"); never rendered as HTML."""
    message = _own_message(request, message_id)
    try:
        fh = store.open_file(message.raw_path)  # FileResponse closes it
    except (OSError, ValueError):
        raise Http404 from None
    response = FileResponse(fh, content_type="text/plain; charset=utf-8")
    response["Content-Security-Policy"] = "sandbox"
    return response


@login_required
@require_POST
def message_delete(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _own_message(request, message_id)
    actions.move(request.user.id, [message.id], Folder.TRASH)
    messages.success(request, gettext("Moved to Trash."))
    return redirect("mailbox:inbox")


@login_required
def message_raw(request: HttpRequest, message_id: int) -> FileResponse:
    message = _own_message(request, message_id)
    try:
        fh = store.open_file(message.raw_path)  # FileResponse closes it
    except OSError:
        raise Http404 from None
    response = FileResponse(fh, as_attachment=True, filename=f"message-{message.id}.eml", content_type="message/rfc822")
    response["Content-Security-Policy"] = "sandbox"
    return response


@login_required
def attachment_download(request: HttpRequest, attachment_id: int) -> FileResponse:
    attachment = get_object_or_404(Attachment, id=attachment_id, message__owner=request.user)
    try:
        fh = store.open_file(attachment.stored_path)  # FileResponse closes it
    except OSError:
        raise Http404 from None
    # Always a download, never rendered in our origin (nosniff is global).
    response = FileResponse(
        fh, as_attachment=True, filename=attachment.filename, content_type="application/octet-stream"
    )
    response["Content-Security-Policy"] = "sandbox"
    return response
