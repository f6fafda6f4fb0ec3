"""Inbox tabs (mailbox/tabs.py): the strip above the Inbox, and moving a sender to another tab."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from accounts.models import MailAccount, Profile
from webpop.lib import pagecache

from . import actions, folders, tabs
from .categories import Category
from .models import Message


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    count: int | str
    url: str
    current: bool


def enabled(request: HttpRequest) -> bool:
    """The user's choice (Preferences), read once per session like the other list choices; the page cache keys on it."""
    choice = request.session.get("inbox_tabs")
    if choice is None:
        choice = bool(Profile.objects.filter(user_id=request.user.id).values_list("inbox_tabs", flat=True).first())
        request.session["inbox_tabs"] = choice
    return choice


def chosen(request: HttpRequest) -> Category:
    return Category.from_slug(request.GET.get("tab", "")) or Category.PRIMARY


def strip(owner_id: int, current: Category, inbox_url: str, account: MailAccount | None) -> list[Tab]:
    """The tabs with their unread counts (of all accounts: what is new anywhere), kept while the mail is unchanged."""
    counts = pagecache.remembered(owner_id, "tab-counts", lambda: tabs.unread_counts(owner_id))
    shown = []
    for category in Category:
        query = {"tab": category.slug} if category is not Category.PRIMARY else {}
        query |= {"account": account.id} if account else {}
        url = f"{inbox_url}?{urlencode(query)}" if query else inbox_url
        count = folders.badge(counts.get(category.slug, 0))
        shown.append(Tab(category.slug, str(tabs.LABELS[category]), count, url, category is current))
    return shown


def choices(request: HttpRequest, message: Message) -> list[tuple[str, str]]:
    """The tabs a message's sender can be moved to (all but its own); none without tabs or outside the Inbox."""
    if message.folder != "inbox" or not message.from_email or not enabled(request):
        return []
    own = Category(message.category or 0)
    return [(c.slug, str(tabs.LABELS[c])) for c in Category if c is not own]


@login_required
@require_POST
def sender_tab(request: HttpRequest, message_id: int) -> HttpResponse:
    """ "Move to Promotions" (and the other tabs) for a message's sender: their mail so far and to come."""
    message = get_object_or_404(Message.objects.only("id", "from_email"), id=message_id, owner=request.user)
    category = Category.from_slug(request.POST.get("tab", ""))
    if category is None:
        raise Http404
    try:
        actions.move_sender_to_tab(request.user.id, message.id, category)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
        return redirect(_back(request))
    text = gettext("Mail from %(sender)s now goes to %(tab)s.")
    messages.success(request, text % {"sender": message.from_email, "tab": tabs.LABELS[category]})
    return redirect(_back(request))


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("mailbox:inbox")
