"""Pages kept rendered until the user's mail changes.

The message list is the page people load most, and most loads find nothing changed.
Each user has a mailbox version in the cache, a random token replaced (``touch``)
whenever anything a folder page shows changes: a message's listed fields, a folder,
an account's name or policy. A rendered page is stored with the version it was
built from and served while that version is current.

Nothing notices writes on its own: the function that changes what a page shows calls
``touch`` with the owners it changed, once, in the transaction that makes the change
(mailbox/actions.py for what people do, folders.py, rules.py, threads.py, store.py for
stored mail, accounts/actions.py, the preferences). A write that no list shows (an
account's sync status, a message's cached HTML, tombstones) touches nothing.
tests/test_page_cache.py walks every such change through its real code path.

Correctness rests on two orders. A page reads the version *before* the database,
so a page built from data older than a change is filed under a version that the
change has already replaced (or replaces when it commits). And ``touch`` replaces
the version both at once and again at commit: at once for the request making the
change, at commit because a page built meanwhile saw the data as it was before.
So one ``touch`` anywhere in a transaction covers every write in it.

What else a page depends on is part of its key: the URL, language, time zone, the
conversations and reading pane choices, the undo bar, the user's name, staff flag and dashboard
permission, and the code (templates, translations, static file names). The CSRF token differs per response:
pages are rendered with a placeholder that is replaced when served. Pages with
flash messages are neither served from nor put in the cache.

A user's latest conversation page and latest search page are kept as well, one of each
(``serve(..., slot=...)``): going back to them is served, and however many conversations or
searches a user opens, their entries stay a handful. The conversation page shows more than
lists do (a message's server copy, unsubscribe progress, calendar answers, remote-image
choices, damage, sender trust): changes to those replace a second version only that page
keys on (``touch_message_pages``), so folder pages stay cached through them. The kept search
keys likewise on one that indexing new mail for search replaces (``touch_search_pages``).
tests/test_message_page_cache*.py walk those writers.

Pages that are always rendered (older pages, pages with other parameters) still take what
they show beside their rows from here (``remembered``), under the same version.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable
from functools import cache as memoize
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone, translation

from webpop.cache import report_unavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")

PAGE_TTL = 600  # seconds; also bounds how long a lost version change could show an old page
PAGE_CODE = ("mailbox", "accounts", "users", "webpop", "spam", "unsubscribe")  # apps whose code takes part in pages
VERSION_TTL = 7 * 24 * 3600


# What a version covers. MAILBOX: everything the pages show; every page keys on it. A kept page of
# a slot (one per user) keys on its slot's version too, replaced by what only that page shows, so
# those changes leave the other pages cached: CONVERSATION, a message's server copy, an unsubscribe's
# progress, damage marks, the sender's trust; SEARCH, new mail indexed for search.
MAILBOX, CONVERSATION, SEARCH = "mailbox", "conversation", "search"
SLOTS = (CONVERSATION, SEARCH)


def _version_key(user_id: int, scope: str = MAILBOX) -> str:
    return f"{scope}-version:{user_id}"


def touch(owner_ids: Iterable) -> None:
    """The mail of these users changed: their cached pages are out of date (now and at commit).

    Called by each function that changes what a folder page or the sidebar shows, inside its
    transaction (outside one, "at commit" is at once).
    """
    _touch(owner_ids, MAILBOX)


def touch_message_pages(owner_ids: Iterable) -> None:
    """Something only a conversation page shows changed for these users: their kept one is out of date.

    ``touch`` for changes no folder page or search shows, so those stay cached.
    """
    _touch(owner_ids, CONVERSATION)


def touch_search_pages(owner_ids: Iterable) -> None:
    """These users' mail was indexed for search: their kept search is out of date, their folder pages are not."""
    _touch(owner_ids, SEARCH)


def _touch(owner_ids: Iterable, scope: str) -> None:
    ids = {int(pk) for pk in owner_ids if pk is not None}
    if not ids:
        return
    _replace_versions(ids, scope)
    transaction.on_commit(lambda: _replace_versions(ids, scope))


def _replace_versions(ids: set[int], scope: str) -> None:
    try:
        cache.set_many({_version_key(pk, scope): secrets.token_hex(8) for pk in ids}, VERSION_TTL)
    except Exception as exc:
        # A change to mail must not fail because the cache is away; pages expire after PAGE_TTL.
        report_unavailable(logger, "page cache (marking pages out of date)", exc)


@memoize
def placeholder() -> str:
    """Stands for the CSRF token in a stored page; unguessable, so mail text cannot contain it."""
    return "csrf" + hmac.new(settings.SECRET_KEY.encode(), b"webpop page cache csrf", hashlib.sha256).hexdigest()


@memoize
def code_fingerprint() -> str:
    """Changes with the code, templates, translations, static file names and the settings a page shows.

    A deploy's (or a restart's with other settings) pages are its own.
    """
    base = Path(settings.BASE_DIR)
    paths = [
        *sorted((base / "templates").rglob("*.html")),
        *sorted((base / "locale").rglob("*.mo")),
        *sorted(path for app in PAGE_CODE for path in (base / app).rglob("*.py") if "migrations" not in path.parts),
        Path(settings.STATIC_ROOT) / "staticfiles.json",
    ]
    digest = hashlib.sha256(f"trash_days={settings.WEBPOP_TRASH_DAYS}\n{placeholder()}\n".encode())
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cacheable(request: HttpRequest, params: dict[str, Callable[[str], bool]]) -> bool:
    """Whether this request's page may come from (and go into) the cache.

    ``params``: the query parameters such a page may have, each with a check of its value.
    Anything else (a search, a keyset cursor, an unknown parameter) is rendered afresh,
    so the pages one user can put in the cache are few: their folders and views, not
    one per URL they care to make up. Flash messages are shown once: a page carrying
    them is rendered afresh too.
    """
    if request.method != "GET":
        return False
    for name, values in request.GET.lists():
        if name not in params or len(values) != 1 or not params[name](values[0]):
            return False
    return not request.COOKIES.get("messages") and "_messages" not in request.session


def _page_key(request: HttpRequest) -> str:
    user = request.user
    parts = [
        code_fingerprint(),
        request.get_full_path(),
        translation.get_language() or "",
        timezone.get_current_timezone_name(),
        repr(request.session.get("conversations")),
        repr(request.session.get("reading_pane")),
        repr(request.session.get("inbox_tabs")),
        "undo" if request.session.get("undo") else "",
        user.get_username(),
        # What the navigation shows: staff see the admin link, and the dashboard's with its permission.
        ("staff+ops" if user.has_perm("ops.view_dashboard") else "staff") if user.is_staff else "",
    ]
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
    return f"mailbox-page:{user.pk}:{digest}"


def _read(user_id: int, key: str, scopes: tuple[str, ...] = (MAILBOX,)) -> tuple[str | None, object]:
    """The user's version of these scopes (each made if missing) and the entry under ``key``, in one round trip.

    (None, None) when the cache is away: the caller computes afresh and stores nothing.
    """
    version_keys = [_version_key(user_id, scope) for scope in scopes]
    try:
        found = cache.get_many([*version_keys, key])
        versions = []
        for version_key in version_keys:
            version = found.get(version_key)
            if version is None:
                version = secrets.token_hex(8)
                if not cache.add(version_key, version, VERSION_TTL):
                    version = cache.get(version_key)  # set meanwhile by a change or another page
            versions.append(str(version))
        return "/".join(versions), found.get(key)
    except Exception as exc:
        report_unavailable(logger, "page cache", exc)
        return None, None


def _store(key: str, value: tuple) -> None:
    try:
        cache.set(key, value, PAGE_TTL)
    except Exception as exc:
        report_unavailable(logger, "page cache", exc)


def remembered(user_id: int, name: str, compute: Callable[[], T]) -> T:
    """``compute()``, a value read from the user's mail, kept while their mailbox version is current.

    For what every list page shows beside its rows (folders, accounts, unread counts): older
    pages and searches are never cached whole, but their sidebar is the first page's. The same
    two orders as for pages hold: the version is read before ``compute`` reads the database.
    """
    key = f"mailbox-memo:{user_id}:{name}:{code_fingerprint()}"
    version, entry = _read(user_id, key)
    if isinstance(entry, tuple) and len(entry) == 2 and version is not None and entry[0] == version:
        return entry[1]
    value = compute()
    if version is not None:
        _store(key, (version, value))
    return value


def serve(request: HttpRequest, render: Callable[[str], HttpResponse], *, slot: str | None = None) -> HttpResponse:
    """The page from the cache if current, else ``render(csrf_placeholder)``, stored for next time.

    ``slot``: pages of a kind a user has many of (their conversations, their searches) are kept one per
    kind, the latest, under this name: going back to it, or opening it again in the reading pane, is
    served, and one user's pages stay a handful however many URLs they load. One of ``SLOTS``: the page
    also keys on that slot's version.
    """
    page_key = _page_key(request)
    entry_key = page_key if slot is None else f"mailbox-page:{request.user.pk}:slot:{slot}"
    version, page = _read(request.user.pk, entry_key, (MAILBOX,) if slot is None else (MAILBOX, slot))
    if (
        isinstance(page, tuple)
        and len(page) == 4
        and version is not None
        and page[0] == version
        and page[1] == page_key
    ):
        response = HttpResponse(page[2], content_type=page[3])
    else:
        response = render(placeholder())
        if response.status_code == 200 and version is not None and not response.streaming:
            _store(entry_key, (version, page_key, response.content, response["Content-Type"]))
    if not response.streaming:
        response.content = response.content.replace(placeholder().encode(), get_token(request).encode())
    return response
