"""Virtual views (Starred, Snoozed, Unread, All mail), snoozing, and saved searches."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext, pgettext
from django.views.decorators.http import require_POST

from . import actions, snooze_times, views, virtual
from .models import SavedSearch

MAX_IDS = 1000  # as the toolbar's other actions


@login_required
def view(request: HttpRequest, slug: str) -> HttpResponse:
    """A virtual view's list; its first page is cached like a folder's (webpop.lib.pagecache)."""
    found = virtual.VIEWS.get(slug)
    if found is None:
        raise Http404
    return views.list_page(request, slug, found)


def snooze_time_text(moment) -> str:
    # Translators: when snoozed mail comes back (Django date format syntax).
    return formats.date_format(timezone.localtime(moment), pgettext("snooze time", "D, M j, H:i"))


SNOOZE_TIME_ERRORS = {
    "unreadable": lambda: gettext("Pick a date and a time."),
    "past": lambda: gettext("That time has passed: pick a later one."),
    "too_far": lambda: gettext("Pick a time within the next five years."),
}


@login_required
@require_POST
def snooze(request: HttpRequest) -> HttpResponse:
    """Snooze the conversations of the selected messages until a chosen time (in the user's time zone).

    ``until``: a time from the menu (ISO 8601 with its offset) or the date picker's local date
    and time. Without one (``pick``), the page to pick a date and time.
    """
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:MAX_IDS]
    back = views._safe_next(request)
    if request.POST.get("scope") == "all":  # "Select all N": snoozing is for the messages ticked
        messages.error(request, gettext("This action works on selected messages only."))
        return redirect(back)
    if not ids:
        messages.info(request, gettext("Select one or more messages first."))
        return redirect(back)
    if request.POST.get("pick"):
        return _pick_page(request, ids, back)
    try:
        until = snooze_times.parse(request.POST.get("until", ""), timezone.now(), timezone.get_current_timezone())
    except snooze_times.SnoozeTimeError as exc:
        error = SNOOZE_TIME_ERRORS[exc.code]()
        if request.POST.get("picking"):  # from the picking page: stay there and say what to change
            return _pick_page(request, ids, back, error=error, status=400)
        messages.error(request, error)
        return redirect(back)
    previous = actions.snooze(request.user.id, ids, until)
    if not previous:
        messages.info(request, gettext("Mail in Sent, Spam and Trash cannot be snoozed."))
        return redirect(back)
    request.session["undo"] = {"previous": {str(k): v for k, v in previous.items()}, "action": "snooze"}
    text = ngettext(
        "%(count)d message snoozed until %(time)s.", "%(count)d messages snoozed until %(time)s.", len(previous)
    )
    messages.success(request, text % {"count": len(previous), "time": snooze_time_text(until)})
    return redirect(back)


def _pick_page(request: HttpRequest, ids: list[int], back: str, *, error: str = "", status: int = 200) -> HttpResponse:
    now = timezone.localtime()
    choices = snooze_times.choices(timezone.now(), timezone.get_current_timezone())
    tomorrow = next(c.when for c in choices if c.slug == "tomorrow")
    picked = request.POST.get("until", "") if error else ""
    return render(
        request,
        "mailbox/snooze_pick.html",
        {
            "ids": ids,
            "next": back,
            "value": picked or timezone.localtime(tomorrow).strftime("%Y-%m-%dT%H:%M"),
            "earliest": now.strftime("%Y-%m-%dT%H:%M"),
            "zone": timezone.get_current_timezone_name(),
            "error": error,
        },
        status=status,
    )


# --- Saved searches -------------------------------------------------------------------------------


def _results(query: str) -> str:
    return f"{reverse('mailbox:inbox')}?{urlencode({'q': query})}"


@login_required
@require_POST
def saved_search_create(request: HttpRequest) -> HttpResponse:
    query = request.POST.get("q", "").strip()
    try:
        saved = actions.save_search(request.user.id, request.POST.get("name", "") or query, query)
    except actions.SavedSearchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Saved “%(name)s”: it is in the sidebar.") % {"name": saved.name})
    return redirect(_results(query) if query else reverse("mailbox:inbox"))


def _own_search(request: HttpRequest, search_id: int) -> SavedSearch:
    return get_object_or_404(SavedSearch, id=search_id, owner=request.user)


@login_required
@require_POST
def saved_search_rename(request: HttpRequest, search_id: int) -> HttpResponse:
    saved = _own_search(request, search_id)
    views.rename(request, saved, actions.rename_search, actions.SavedSearchError)
    return redirect(_results(saved.query))


@login_required
@require_POST
def saved_search_delete(request: HttpRequest, search_id: int) -> HttpResponse:
    saved = _own_search(request, search_id)
    actions.delete_search(saved)
    messages.success(request, gettext("“%(name)s” is no longer in the sidebar.") % {"name": saved.name})
    return redirect(_results(saved.query))
