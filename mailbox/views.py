from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST

from accounts.models import MailAccount, Profile
from webpop.lib import cspolicy, pagecache

from . import actions, damage, folders, listing, search, tabs, views_bulk, views_tabs, virtual
from . import rows as rows_module
from . import sidebar as sidebar_module
from .models import INBOX_ORDER, Attachment, Folder, Message

LIST_FIELDS = (
    "id", "subject", "from_name", "from_email", "snippet", "date", "seen", "flagged", "has_attachments", "thread_id",
    "folder", "spam_verdict",
)  # fmt: skip
BULK_ACTIONS = {"read", "unread", "star", "unstar", "archive", "inbox", "spam", "trash", "forever"}
CACHED_PAGE_PARAMS = {
    "account": str.isdigit,
    "view": {"messages", "conversations"}.__contains__,
    "tab": {"updates", "promotions", "forums"}.__contains__,
}
# A search's first page: the user's latest is kept (pagecache's "search" slot), for going back to it.
SEARCH_PAGE_PARAMS = {**CACHED_PAGE_PARAMS, "q": lambda value: bool(value.strip())}


@login_required
def inbox(request: HttpRequest, folder: str = Folder.INBOX) -> HttpResponse:
    """A folder of all the user's accounts (or one, with ``?account=``), or search results (``?q=``).

    The first page of a folder (of all accounts or one, either view) comes from
    webpop.lib.pagecache while the user's mail is unchanged, and so does the first page
    of the user's latest search (one kept: back from a result to the results is served;
    indexing new mail for search replaces it). Older pages (``?before=``),
    which people seldom load twice, are always computed.
    """
    reading_pane(request)  # in the session before the page cache keys on it
    views_tabs.enabled(request)
    return list_page(request, folder)


def list_page(request: HttpRequest, folder: str, view: virtual.View | None = None) -> HttpResponse:
    """A folder's list or a virtual view's (``folder`` is then its slug): its first page from the page cache."""

    def render(csrf_token: str) -> HttpResponse:
        return _inbox(request, folder, csrf_token=csrf_token, view=view)

    if cacheable(request):
        return pagecache.serve(request, render)
    if cacheable(request, SEARCH_PAGE_PARAMS) and "q" in request.GET:
        return pagecache.serve(request, render, slot=pagecache.SEARCH)
    return _inbox(request, folder, view=view)


def cacheable(request: HttpRequest, params: dict = CACHED_PAGE_PARAMS) -> bool:
    """A list page may come from the page cache; not while it reports on a job of the user's (views_bulk)."""
    return pagecache.cacheable(request, params) and not request.session.get("bulk_job")


def _inbox(
    request: HttpRequest, folder: str, *, csrf_token: str | None = None, view: virtual.View | None = None
) -> HttpResponse:
    """A folder's list, or a virtual view's (mailbox/virtual.py: ``folder`` is then the view's slug)."""
    sidebar = sidebar_module.load(request.user.id)
    user_folders, accounts, unread = sidebar.user_folders, sidebar.accounts, sidebar.unread
    folder_label = view.label if view else _folder_label(folder, user_folders)
    query = request.GET.get("q", "").strip()
    rows = Message.objects.filter(owner=request.user)
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
    order = virtual.BY_DATE
    window = _search_window(rows, parsed, user_folders, request.user.id, account) if query else None
    # Inbox tabs (Preferences): the Inbox shows one tab at a time.
    tabbed = folder == Folder.INBOX and not (view or query) and views_tabs.enabled(request)
    tab = views_tabs.chosen(request) if tabbed else None  # a Category; Primary is 0: compare with None
    tab_condition = Q(folder=folder) & tabs.condition(tab) if tab is not None else None
    if query:
        rows = rows.exclude(folder=Folder.PURGED)
        if not any(op == "in" for op, _value, _neg in parsed.filters):
            rows = rows.exclude(folder__in=[Folder.TRASH, Folder.SPAM])  # as mail clients search
        try:
            rows = search.apply(rows, parsed)
        except search.SearchError as exc:
            error, rows = str(exc), rows.none()
    else:
        condition = view.condition if view else tab_condition or Q(folder=folder)
        order = view.order if view else virtual.folder_order(folder)
        rows = order.annotate(rows.filter(condition))
        grouped = _conversations_on(request)
        if grouped:
            same = virtual.SAME_FOLDER if view is None and tab is None else condition
            rows = virtual.first_of_each_conversation(rows, same, order)
    # Plain rows, not model instances: a page builds 51 of them, and instances cost twice as much.
    rows = rows.values_list(*LIST_FIELDS, *([] if order.key in LIST_FIELDS else [order.key]), named=True)
    try:
        page = listing.page(
            rows,
            before=request.GET.get("before"),
            after=request.GET.get("after"),
            window=None if error else window,
            key=order.key,
            ascending=order.ascending,
        )
    except listing.BadCursor:
        raise Http404 from None
    links = sidebar_module.links(
        sidebar, current=None if query else folder, account_id=account and account.id, query=query
    )
    shown = rows_module.present(
        page.rows,
        highlight=parsed.highlight_terms() if query else None,
        conversations=_conversation_sizes(request.user.id, page.rows, folder, view, tab_condition) if grouped else None,
        when=order.key,
        until=view is not None and view.order is virtual.SOONEST_WAKE,
    )
    bulk_job, bulk_job_text = views_bulk.page_job(request)
    context = {
        "page": page,
        "rows": shown,
        "bulk_job": bulk_job,
        "bulk_job_text": bulk_job_text,
        "list_criteria": _criteria_query(folder, view, query, account, tab),
        **rows_module.labels(),
        "folder": folder,
        "folder_label": gettext("Search") if query else folder_label,
        "sidebar": links,
        "inbox_url": links["inbox_url"],
        "reading_pane": reading_pane(request),
        "pager_query": _pager_query(query, account, request.GET.get("view"), tab),
        "tabs": views_tabs.strip(request.user.id, tab, links["inbox_url"], account) if tab is not None else None,
        "tab_slug": tab.slug if tab is not None and tab.slug != "primary" else "",  # the view switch keeps it
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
        # Virtual views and saved searches (mailbox/virtual.py).
        "virtual_view": view,
        "saved_search": virtual.find_saved(sidebar.saved_searches, query) if query else None,
    }
    if csrf_token is not None:
        context["csrf_token"] = csrf_token  # overrides the context processor's: pagecache swaps in the real one
    return render(request, "mailbox/inbox.html", context)


def _search_window(
    rows, parsed: search.ParsedQuery, user_folders: list, owner_id: int, account: MailAccount | None
) -> listing.Window | None:
    """Where a search may look first (listing.Window): every folder it covers, newest mail first.

    A search covers every folder but Trash, Spam and the tombstones; a message's folder is a
    Folder value or one of the owner's folders, so this list names all of them. With ``in:``
    the search's own folder condition decides, unwindowed.
    """
    if any(op == "in" for op, _value, _neg in parsed.filters):
        return None
    skipped = {Folder.PURGED, Folder.TRASH, Folder.SPAM}
    covered = [value for value in Folder.values if value not in skipped] + [f.slug for f in user_folders]
    return listing.Window(rows=rows, folders=covered, owner_id=owner_id, scope=str(account.id) if account else "")


def _criteria_query(folder: str, view, query: str, account, tab=None) -> str:
    """Which list this is, for "Select all N" (views_bulk.criteria_from reads it back)."""
    which = {"q": query} if query else {"view": view.slug} if view else {"folder": folder}
    which |= {"tab": tab.slug} if tab is not None else {}
    return urlencode({**which, **({"account": account.id} if account else {})})


def _pager_query(query: str, account: MailAccount | None, view: str | None, tab=None) -> str:
    """The query string the Newer/Older links keep (each part ends with ``&``)."""
    keep = {"q": query, "account": account.id if account else "", "view": view or ""}
    keep["tab"] = tab.slug if tab is not None and tab.slug != "primary" else ""
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


def reading_pane(request: HttpRequest) -> str:
    """Where a message opens beside the list on a wide screen (Preferences): "off", "right" or "below".

    Read once per session, like the conversations choice; the page cache keys on it.
    """
    choice = request.session.get("reading_pane")
    if choice is None:
        choice = Profile.objects.filter(user_id=request.user.id).values_list("reading_pane", flat=True).first()
        choice = choice or "off"
        request.session["reading_pane"] = choice
    return choice


def _conversation_sizes(
    owner_id: int, rows: list, folder: str, view: virtual.View | None = None, condition: Q | None = None
) -> dict[int, tuple[int, int]]:
    """(messages, unread) in ``folder`` (or ``view``, or an Inbox tab's ``condition``) of each listed conversation."""
    thread_ids = sorted({m.thread_id for m in rows if m.thread_id})
    if not thread_ids:
        return {}
    if view is not None or condition is not None:
        return virtual.conversation_sizes(owner_id, view.condition if view else condition, thread_ids)
    return listing.conversation_sizes(owner_id, folder, thread_ids)


def _folder_label(folder: str, user_folders: list) -> str:
    """A system folder's label or the name of one of the user's folders; anything else is a 404."""
    # Tombstones are never listed; snoozed mail is listed by its own view (mailbox/virtual.py).
    if folder in Folder.values and folder not in (Folder.PURGED, Folder.SNOOZED):
        return Folder(folder).label
    for user_folder in user_folders:
        if user_folder.slug == folder:
            return user_folder.name
    raise Http404


@login_required
def counts(request: HttpRequest) -> JsonResponse:
    """For the open page to notice new mail: the inbox's unread count and its newest message.

    ``unread`` stops at ``folders.UNREAD_CAP + 1`` (the page shows "999+" then).
    """
    newest = (
        Message.objects.filter(owner=request.user, folder=Folder.INBOX)
        .order_by(INBOX_ORDER.desc(), "-id")  # as the Inbox lists it: mail back from snooze is news
        .values("id")
        .first()
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
    # "Move to…": a button of the menu names the folder (move_to), or action=move names it in ``folder``.
    moving = action == "move" or "move_to" in request.POST
    if moving:
        action = request.POST.get("move_to") or request.POST.get("folder", "")
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:1000]
    back = _safe_next(request)
    if not (actions.can_move_to(request.user.id, action) if moving else action in BULK_ACTIONS):
        messages.error(request, gettext("Unknown action."))
        return redirect(back)
    if request.POST.get("scope") == "all":  # "Select all N": the whole list, in the background
        return views_bulk.start(request, action, moving, back)
    if not ids:
        messages.info(request, gettext("Select one or more messages first."))
        return redirect(back)
    _apply(request, ids, action)
    return redirect(back)


def _apply(request: HttpRequest, ids: list[int], action: str) -> None:
    """A toolbar or row action (checked by the caller) on the user's ``ids``; moves keep their undo in the session."""
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


ROW_ACTIONS = {"read", "unread", "star", "unstar", "archive", "inbox", "trash"}


@login_required
@require_POST
def row_action(request: HttpRequest, message_id: int) -> HttpResponse:
    """A list row's own buttons: star, archive, delete, mark read or unread, for one message.

    Script asks for JSON (``Accept: application/json``) and updates the row in place; without
    script the list's form is posted here and the list comes back, as after a toolbar action.
    """
    message = get_object_or_404(Message.objects.only("id", "flagged", "seen"), id=message_id, owner=request.user)
    action = request.POST.get("action", "")
    if action not in ROW_ACTIONS:
        raise Http404
    if "application/json" in request.headers.get("Accept", "") and action in {"star", "unstar", "read", "unread"}:
        _apply(request, [message.id], action)
        message.refresh_from_db(fields=["flagged", "seen"])
        return JsonResponse({"flagged": message.flagged, "seen": message.seen})
    _apply(request, [message.id], action)
    return redirect(_safe_next(request))


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
    if pending and "job" in pending:  # a whole folder or search: undone in the background too
        job = actions.undo_bulk_job(request.user.id, int(pending["job"]))
        if job is not None:
            request.session["bulk_job"] = job.id
    elif pending:
        restored = actions.restore(request.user.id, {int(k): v for k, v in pending["previous"].items()})
        messages.success(request, gettext("Undone: %(count)d restored.") % {"count": restored})
    return redirect(_safe_next(request))


def _safe_next(request: HttpRequest) -> str:
    target = request.GET.get("next") or request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("mailbox:inbox")


def rename(request: HttpRequest, named, rename_to, error: type[Exception]) -> None:
    """Rename ``named`` (a user folder, a saved search) to the posted name with ``rename_to``; say how it went."""
    try:
        rename_to(named, request.POST.get("name", ""))
    except error as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Renamed to “%(name)s”.") % {"name": named.name})


def _own_message(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(Message.objects.select_related("account"), id=message_id, owner=request.user)


def _folder_url(folder: str) -> str:
    if folder == Folder.INBOX:
        return reverse("mailbox:inbox")
    if folder == Folder.SNOOZED:
        return reverse("mailbox:view", args=["snoozed"])
    return reverse("mailbox:folder", args=[folder])


# The next message up (newer) and down (older) a folder's list, newest first. Plain SQL: the page runs it
# on every view, and the ORM's two queries cost more to build than to run. The plain date bound
# lets each index scan (msg_owner_folder_date_idx) start at the message instead of at the far end.
_NEIGHBOURS_SQL = """
SELECT
  (SELECT id FROM {table} WHERE owner_id = %(owner)s AND folder = %(folder)s AND date >= %(date)s
     AND (date > %(date)s OR id > %(id)s) ORDER BY date, id LIMIT 1),
  (SELECT id FROM {table} WHERE owner_id = %(owner)s AND folder = %(folder)s AND date <= %(date)s
     AND (date < %(date)s OR id < %(id)s) ORDER BY date DESC, id DESC LIMIT 1)
"""


def _neighbours(message: Message) -> tuple[int | None, int | None]:
    """The ids of the messages just newer and just older than ``message`` in its folder's list (or None)."""
    sql = _NEIGHBOURS_SQL.format(table=connection.ops.quote_name(Message._meta.db_table))
    # The date as the ORM would pass it: SQLite compares it as text, in the stored form (UTC, no zone).
    date = connection.ops.adapt_datetimefield_value(message.date)
    params = {"owner": message.owner_id, "folder": str(message.folder), "date": date, "id": message.id}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        newer, older = cursor.fetchone()
    return newer, older


@login_required
def message_source(request: HttpRequest, message_id: int) -> FileResponse:
    """The raw message as plain text in the browser ("view source"); never rendered as HTML."""
    return _raw_file(request, message_id, content_type="text/plain; charset=utf-8")


@login_required
@require_POST
def message_delete(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _own_message(request, message_id)
    actions.move(request.user.id, [message.id], Folder.TRASH)
    messages.success(request, gettext("Moved to Trash."))
    return redirect("mailbox:inbox")


@login_required
def message_raw(request: HttpRequest, message_id: int) -> FileResponse:
    return _raw_file(
        request, message_id, as_attachment=True, filename=f"message-{message_id}.eml", content_type="message/rfc822"
    )


def _raw_file(request: HttpRequest, message_id: int, **options) -> FileResponse:
    """The user's message as stored, byte-exact and checked against its SHA-256, sandboxed."""
    message = _own_message(request, message_id)
    try:
        fh = damage.open_checked(message.raw_path, message.sha256)  # FileResponse closes it
    except damage.DamagedFileError:
        return damaged_file(request)
    except (OSError, ValueError):
        raise Http404 from None
    return _file_response(fh, **options)


@login_required
def attachment_download(request: HttpRequest, attachment_id: int) -> FileResponse:
    attachment = get_object_or_404(Attachment, id=attachment_id, message__owner=request.user)
    try:
        fh = damage.open_checked(attachment.stored_path, attachment.sha256)  # FileResponse closes it
    except damage.DamagedFileError:
        return damaged_file(request)
    except (OSError, ValueError):
        raise Http404 from None
    # Always a download, never rendered in our origin (nosniff is global).
    return _file_response(fh, as_attachment=True, filename=attachment.filename, content_type="application/octet-stream")


@cspolicy.policy(cspolicy.SANDBOX)
def _file_response(fh, **kwargs) -> FileResponse:
    """A stored file as it is, sandboxed (a damaged file's page instead keeps the app's policy)."""
    return FileResponse(fh, **kwargs)


def damaged_file(request: HttpRequest) -> HttpResponse:
    """Instead of a damaged file's bytes: a page that says so (410: not here, until it is repaired)."""
    return render(request, "mailbox/damaged.html", status=410)
