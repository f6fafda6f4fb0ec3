"""The app's sidebar: system folders with unread counts, the views across folders, saved searches, the user's
folders and accounts.

Every signed-in page shows it (templates/shell/sidebar.html). List pages build it from what
they already read (``links``); other pages get it from the ``context`` processor, lazily:
a page that never renders it costs nothing, one that does reads it through
webpop.lib.pagecache.remembered (no query while the user's mail is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils import translation
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from accounts.models import MailAccount
from webpop.lib import pagecache

from . import folders, virtual
from .models import VISIBLE_FOLDERS, Folder, SavedSearch, UserFolder

# The icon (static/icons/sprite.svg) of each system folder.
FOLDER_ICONS = {
    Folder.INBOX: "inbox",
    Folder.SENT: "send",
    Folder.ARCHIVE: "archive",
    Folder.SPAM: "shield-alert",
    Folder.TRASH: "trash-2",
}
# The icon of each view across folders (mailbox/virtual.py).
VIEW_ICONS = {"starred": "star", "snoozed": "clock", "unread": "mail", "all": "mails"}


@dataclass(frozen=True)
class Sidebar:
    """What a list page shows beside its rows; kept by pagecache.remembered while the mail is unchanged."""

    user_folders: list[UserFolder]
    accounts: list[MailAccount]
    unread: dict[str, int | str]
    saved_searches: list[SavedSearch]


@dataclass(frozen=True)
class Link:
    url: str
    label: str
    icon: str
    count: int | str
    current: bool
    badge_id: str = ""  # mail.js updates the inbox's count in place


def load(owner_id: int) -> Sidebar:
    """The user's sidebar, from the cache while their mail is unchanged."""
    return pagecache.remembered(owner_id, "sidebar", lambda: _compute(owner_id))


def _compute(owner_id: int) -> Sidebar:
    user_folders, saved_searches = virtual.folders_and_searches(owner_id)
    counts = folders.unread_counts(owner_id, [Folder.INBOX, Folder.SPAM, *(f.slug for f in user_folders)])
    return Sidebar(
        user_folders=user_folders,
        accounts=list(MailAccount.objects.filter(owner_id=owner_id).only("id", "label", "host", "username", "policy")),
        unread={slug: folders.badge(n) for slug, n in counts.items()},
        saved_searches=saved_searches,
    )


def links(sidebar: Sidebar, *, current: str | None, account_id: int | None = None, query: str = "") -> dict:
    """The sidebar's links, without a reverse() per link (a list page renders this on every load).

    ``current``: the folder or view shown; ``query``: the search shown (its saved search is current).
    """
    inbox_url = reverse("mailbox:inbox")
    # Slugs are system folder names, view names or u<id>, safe in a path as they are.
    before_slug, _, after_slug = reverse("mailbox:folder", args=["0"]).rpartition("0")
    folder_url = before_slug + "{}" + after_slug
    before_view, _, after_view = reverse("mailbox:view", args=["0"]).rpartition("0")
    unread = sidebar.unread
    shown = {
        "inbox_url": inbox_url,
        "folder_links": [
            Link(
                url=inbox_url if value == Folder.INBOX else folder_url.format(value),
                label=label,
                icon=FOLDER_ICONS[value],
                count=unread.get(value, 0) if value in (Folder.INBOX, Folder.SPAM) else 0,
                current=value == current,
                badge_id="unread-badge" if value == Folder.INBOX else "",
            )
            for value, label in VISIBLE_FOLDERS
        ],
        "view_links": [
            Link(before_view + view.slug + after_view, view.label, VIEW_ICONS[view.slug], 0, view.slug == current)
            for view in virtual.VIEWS.values()
        ],
        "search_links": [
            Link(f"{inbox_url}?{urlencode({'q': s.query})}", s.name, "mail-search", 0, bool(query) and s.query == query)
            for s in sidebar.saved_searches
        ],
        "user_folder_links": [
            Link(folder_url.format(f.slug), f.name, "folder", unread.get(f.slug, 0), f.slug == current)
            for f in sidebar.user_folders
        ],
        # Only worth a list with more than one account: each link shows the inbox of that account alone.
        "account_links": [
            Link(f"{inbox_url}?account={a.id}", a.display_name, "at-sign", 0, a.id == account_id)
            for a in sidebar.accounts
        ]
        if len(sidebar.accounts) > 1
        else [],
    }
    # What templates/shell/sidebar.html loops over: each group under its heading (none for the first).
    shown["groups"] = [
        ("", shown["folder_links"] + shown["view_links"]),
        (gettext("Saved searches"), shown["search_links"]),
        (gettext("Folders"), shown["user_folder_links"]),
        (gettext("Accounts"), shown["account_links"]),
    ]
    return shown


def html(shown: dict) -> SafeString:
    """templates/shell/sidebar.html for ``shown`` (from ``links``), rendered once per process for each
    language and set of links: a user's pages mostly show the same sidebar, and rendering it cost
    as much as a small page. The links themselves are the key (counts, names, the current one), so
    a change to any of them renders afresh; nothing is ever stale."""
    groups = tuple((heading, tuple(items)) for heading, items in shown["groups"])
    return _html(translation.get_language() or "", get_script_prefix(), groups)


@lru_cache(maxsize=512)
def _html(_language: str, _prefix: str, groups: tuple) -> SafeString:
    # The language and script prefix are only part of the key: rendering uses the active ones.
    return render_to_string("shell/sidebar.html", {"sidebar": {"groups": groups}})


def context(request: HttpRequest) -> dict:
    """Context processor: ``sidebar`` for pages whose view did not give one (computed when rendered)."""
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {"sidebar": SimpleLazyObject(lambda: _for(request))}


def _for(request: HttpRequest) -> dict:
    user = request.user
    if not user.is_authenticated:
        return {}
    return links(load(user.id), current=None)
