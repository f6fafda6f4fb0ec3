"""Folder pages come from the cache while the mail is unchanged, and never show it out of date."""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models
from django.test import Client
from django.urls import reverse, reverse_lazy
from django.utils import timezone

from accounts import actions as account_actions
from accounts.models import MailAccount, Profile
from mailbox import actions, folders, importer, mime, rules, store, sync, threads
from mailbox.models import Folder, Message, Rule, SavedSearch, UserFolder
from tests.factories import build_message, make_account, store_message
from webpop.lib import pagecache

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

INBOX = "/"


def rendered(response) -> bool:
    """Whether the view built the page (a template context) rather than serving it from the cache."""
    return response.context is not None


@pytest.fixture
def account(alice):
    return make_account(alice, label="Work mail")


@pytest.fixture
def hello(account):
    return store_message(account, build_message("Hello there", sender="Carol <carol@example.net>"), "u1")


def test_an_unchanged_inbox_is_served_from_the_cache_without_a_query(alice_client, hello, django_assert_num_queries):
    first = alice_client.get(INBOX)
    assert rendered(first)
    with django_assert_num_queries(0):
        again = alice_client.get(INBOX)
    assert not rendered(again)
    assert again.status_code == 200 and b"Hello there" in again.content


def test_each_served_page_carries_a_working_csrf_token(alice, hello):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(INBOX)
    page = client.get(INBOX)  # from the cache
    assert not rendered(page)
    assert pagecache.placeholder().encode() not in page.content
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    posted = client.post(reverse("mailbox:bulk"), {"action": "star", "ids": [hello.id], "csrfmiddlewaretoken": token})
    assert posted.status_code == 302
    hello.refresh_from_db()
    assert hello.flagged


# --- Every change to what a page shows, through the code that makes it ----------------------------
#
# Nothing notices writes by itself: each function that changes what a folder page or the sidebar
# shows replaces the owner's page version (pagecache.touch). Each case below caches a page, makes
# one change through the function the app calls for it, and loads the page again. A function that
# forgets its touch leaves the old page in the cache, and its case fails.


@dataclass
class Mail:
    alice: object
    account: MailAccount
    hello: Message
    client: Client
    request: pytest.FixtureRequest  # for the Dovecot fixtures, started only by the cases that sync
    kept: dict = field(default_factory=dict)  # what a case's setup leaves for its change


@dataclass(frozen=True)
class Change:
    apply: Callable[[Mail], object]
    shows: bytes = b""  # in the page after the change
    gone: bytes = b""  # in the page before, not after
    setup: Callable[[Mail], object] | None = None  # before the page is cached
    page: str = INBOX


def _stored_alone(account, subject: str, uidl: str) -> Message:
    """A new row as store.save_message writes it, without threading (that is threads.assign's own change)."""
    raw = build_message(subject, "new")
    with store.temp_file() as fh:
        fh.write(raw)
    stored = store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())
    return store.save_message(account, uidl, stored, mime.parse_bytes(raw))


def _store_batch(account):
    raw = build_message("Batch arrival", "new")
    with store.temp_file() as fh:
        fh.write(raw)
    stored = store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())
    store.save_messages(account, [("u-batch", stored, mime.parse_bytes(raw))])  # COPY on PostgreSQL


def _synced(mail: Mail) -> None:
    """New mail waiting on a real POP3 server (Dovecot) for an account of alice's."""
    pop_user = mail.request.getfixturevalue("pop_user")
    pop_user.deliver(build_message("Fetched from the server", "new"))
    account = mail.request.getfixturevalue("dovecot_account")(label="Server mail")
    mail.kept["account"] = account


def _sync(mail: Mail) -> None:
    """The sync engine fetches it: store, threads, rules, snoozed conversations."""
    result = sync.sync_account(mail.kept["account"].id)
    assert result.error is None and result.fetched == 1


def _imported(mail: Mail) -> None:
    raw = build_message("Imported from a file", "old mail").replace(b"\r\n", b"\n")
    mbox = b"From a@b Thu Nov 26 09:00:00 2026\n" + raw + b"\n"
    with store.temp_file() as fh:
        fh.write(mbox)
    job = actions.start_import(mail.alice, mail.account, Folder.INBOX, [("old.mbox", Path(fh.name), len(mbox))])
    assert importer.run(job.id) == "done"


def _snoozed(mail: Mail) -> None:
    actions.snooze(mail.alice.id, [mail.hello.id], timezone.now() + dt.timedelta(hours=1))


def _reply_stored(mail: Mail) -> None:
    """Hello snoozed, and a reply to it stored (rows only): the sync wakes the conversation next."""
    _snoozed(mail)
    reply = _stored_alone(mail.account, "Re: Hello there", "u-reply")
    threads.assign([reply])
    reply.refresh_from_db()
    mail.kept["reply"] = reply


def _rule(mail: Mail, action: str, folder: str = "") -> Rule:
    return rules.create(mail.alice.id, field="subject", contains="hello", action=action, folder=folder)


def _trashed(mail: Mail) -> None:
    actions.move(mail.alice.id, [mail.hello.id], Folder.TRASH)


def _folder(mail: Mail) -> None:
    mail.kept["folder"] = folders.create(mail.alice.id, "Receipts")


def _third_account(mail: Mail) -> None:
    mail.kept["account"] = make_account(mail.alice, username="third", label="Third mail")


def _saved_search(mail: Mail) -> None:
    mail.kept["search"] = actions.save_search(mail.alice.id, "From Carol", "from:carol")


TRASH = reverse_lazy("mailbox:folder", args=["trash"])
ARCHIVE = reverse_lazy("mailbox:folder", args=["archive"])

CHANGES = {
    # Mail arriving
    "a message stored": Change(lambda m: _stored_alone(m.account, "Fresh news", "u2"), shows=b"Fresh news"),
    "a batch stored (COPY)": Change(lambda m: _store_batch(m.account), shows=b"Batch arrival"),
    "a sync fetches new mail": Change(_sync, setup=_synced, shows=b"Fetched from the server"),
    "an import": Change(_imported, shows=b"Imported from a file"),
    "a conversation joined": Change(
        lambda m: threads.assign([m.kept["reply"]]),
        setup=lambda m: m.kept.update(reply=_stored_alone(m.account, "Re: Hello there", "u-reply")),
        shows=b'<span class="thread-count"',
    ),
    # What people do to messages
    "marked read": Change(lambda m: actions.set_seen(m.alice.id, [m.hello.id], True), gone=b"(1) Inbox"),
    "opened": Change(lambda m: m.client.get(reverse("mailbox:message", args=[m.hello.id])), gone=b"(1) Inbox"),
    "starred": Change(lambda m: actions.set_flagged(m.alice.id, [m.hello.id], True), shows=b' starred"'),
    "archived": Change(lambda m: actions.move(m.alice.id, [m.hello.id], Folder.ARCHIVE), gone=b"Hello there"),
    "a move undone": Change(
        lambda m: actions.restore(m.alice.id, m.kept["previous"]),
        setup=lambda m: m.kept.update(previous=actions.move(m.alice.id, [m.hello.id], Folder.ARCHIVE)),
        shows=b"Hello there",
    ),
    "snoozed": Change(_snoozed, gone=b"Hello there"),
    "woken by the sweep": Change(
        lambda m: actions.wake_due(timezone.now() + dt.timedelta(hours=2)), setup=_snoozed, shows=b"Hello there"
    ),
    "woken by a reply": Change(
        lambda m: actions.wake_for_new_mail([m.kept["reply"]]),
        setup=_reply_stored,
        shows=b'<span class="thread-count"',  # the conversation in the Inbox has two messages again
    ),
    "deleted for good (admin)": Change(lambda m: actions.delete_for_good([m.hello.id]), gone=b"Hello there"),
    "the trash emptied": Change(
        lambda m: actions.empty_trash(m.alice.id), setup=_trashed, gone=b"Hello there", page=TRASH
    ),
    "old trash expired": Change(lambda m: actions.expire_trash(0), setup=_trashed, gone=b"Hello there", page=TRASH),
    # Rules
    "a rule filing new mail": Change(
        lambda m: rules.apply([m.hello]), setup=lambda m: _rule(m, "star"), shows=b' starred"'
    ),
    "a rule run on existing mail": Change(
        lambda m: rules.run_on_existing(m.alice.id, m.kept["rule"]),
        setup=lambda m: m.kept.update(rule=_rule(m, "move", Folder.ARCHIVE)),
        shows=b"Hello there",
        page=ARCHIVE,
    ),
    # Folders
    "a folder created": Change(lambda m: folders.create(m.alice.id, "Receipts"), shows=b"Receipts"),
    "a folder renamed": Change(
        lambda m: folders.rename(m.kept["folder"], "Invoices"), setup=_folder, shows=b"Invoices"
    ),
    "a folder deleted": Change(lambda m: folders.delete(m.kept["folder"]), setup=_folder, gone=b"Receipts"),
    # Accounts
    "an account added": Change(lambda m: make_account(m.alice, username="club", label="Club mail"), shows=b"Club mail"),
    "an account renamed": Change(
        lambda m: account_actions.update_account(m.account, label="Home mail"), shows=b"Home mail"
    ),
    "an account's policy": Change(
        lambda m: account_actions.update_account(m.account, policy="mirror"),
        setup=_trashed,  # the trash's notice names the policy
        shows=b"under the Mirror setting",
        page=TRASH,
    ),
    "an account removed": Change(
        lambda m: account_actions.delete_account(m.kept["account"]), setup=_third_account, gone=b"Third mail"
    ),
    # Saved searches
    "a search saved": Change(
        lambda m: actions.save_search(m.alice.id, "From Carol", "from:carol"), shows=b"From Carol"
    ),
    "a saved search renamed": Change(
        lambda m: actions.rename_search(m.kept["search"], "Carol"), setup=_saved_search, gone=b"From Carol"
    ),
    "a saved search deleted": Change(
        lambda m: actions.delete_search(m.kept["search"]), setup=_saved_search, gone=b"From Carol"
    ),
}


@pytest.mark.parametrize("name", CHANGES, ids=list(CHANGES))
def test_the_page_shows_every_change_to_the_mail(request, alice, alice_client, account, hello, name):
    change = CHANGES[name]
    make_account(alice, username="second", label="Second")  # the account list shows with two accounts
    mail = Mail(alice, account, hello, alice_client, request)
    if change.setup:
        change.setup(mail)
    before = alice_client.get(change.page)
    assert not rendered(alice_client.get(change.page)), "the page is cached"
    if change.gone:
        assert change.gone in before.content
    if change.shows:
        assert change.shows not in before.content
    change.apply(mail)
    after = alice_client.get(change.page)
    assert rendered(after), "the change replaced the page"
    if change.gone:
        assert change.gone not in after.content
    if change.shows:
        assert change.shows in after.content


class _FormValues(HTMLParser):
    """The values a browser would post from a page's form (inputs, checked boxes, selected options, text areas)."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.values[a["name"]] = a.get("value") or ("on" if a.get("type") == "checkbox" else "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.values[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data


def test_an_account_renamed_in_the_admin_leaves_its_owners_cached_page(alice_client, account, hello, django_user_model):
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", "root@example.org", None))
    url = reverse("admin:accounts_mailaccount_change", args=[account.id])
    form = _FormValues()
    form.feed(admin.get(url).content.decode())
    make_account(account.owner, username="second", label="Second")  # the account list shows with two accounts
    alice_client.get(INBOX)
    assert not rendered(alice_client.get(INBOX))
    response = admin.post(url, {**form.values, "label": "Renamed by the admin"})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    page = alice_client.get(INBOX)
    assert rendered(page) and b"Renamed by the admin" in page.content


def test_marking_read_through_the_page_updates_the_counts(alice_client, hello):
    assert b"(1) Inbox" in alice_client.get(INBOX).content
    alice_client.post(reverse("mailbox:bulk"), {"action": "read", "ids": [hello.id]})
    assert b"(1) Inbox" not in alice_client.get(INBOX).content


def test_changes_to_what_no_page_shows_keep_the_cached_page(alice_client, hello):
    alice_client.get(INBOX)
    Message.objects.filter(id=hello.id).update(html_cache="<p>cached body</p>", server_state="delete_pending")
    assert not rendered(alice_client.get(INBOX))


def test_a_sync_that_finds_nothing_new_keeps_the_cached_page(alice_client, hello, dovecot_account):
    account = dovecot_account()
    alice_client.get(INBOX)
    result = sync.sync_account(account.id)  # the account's status changes, not what the page shows
    assert result.error is None and result.fetched == 0
    assert not rendered(alice_client.get(INBOX))


def test_another_user_never_gets_alices_page(alice_client, bob_client, hello):
    alice_client.get(INBOX)
    page = bob_client.get(INBOX)
    assert rendered(page) and b"Hello there" not in page.content


def test_a_flash_message_is_shown_once_and_not_kept(alice_client, hello):
    alice_client.get(INBOX)
    alice_client.post(reverse("mailbox:bulk"), {"action": "trash", "ids": [hello.id]})
    flashed = alice_client.get(INBOX)
    assert b'class="flash"' in flashed.content
    assert b'class="flash"' not in alice_client.get(INBOX).content


def test_the_page_follows_the_language(alice_client, hello):
    alice_client.get(INBOX)
    german = alice_client.get(INBOX, headers={"accept-language": "de"})
    assert rendered(german) and 'lang="de"' in german.content.decode()


def test_pages_of_other_urls_are_their_own(alice_client, hello):
    alice_client.get(INBOX)
    archive = alice_client.get(reverse("mailbox:folder", args=["archive"]))
    assert rendered(archive) and b"Hello there" not in archive.content


@pytest.mark.parametrize(
    "query",
    [
        "?q=hello&before=1700000000.000000_5",
        "?before=1700000000.000000_5",
        "?utm=1",
        "?view=other",
        "?account=1&account=1",
    ],
    ids=["older page of a search", "older page", "unknown parameter", "unknown view", "repeated parameter"],
)
def test_pages_a_user_could_multiply_are_never_cached(alice_client, hello, query):
    alice_client.get(INBOX + query)
    assert rendered(alice_client.get(INBOX + query))


def test_only_the_latest_search_is_kept(alice_client, hello):
    alice_client.get(INBOX)
    alice_client.get(INBOX + "?q=hello")
    again = alice_client.get(INBOX + "?q=hello")
    assert not rendered(again) and b"Hello there" in again.content
    other = alice_client.get(INBOX + "?q=carol")
    assert rendered(other)
    assert rendered(alice_client.get(INBOX + "?q=hello")), "the second search took the first one's place"
    assert not rendered(alice_client.get(INBOX)), "folder pages are kept beside it"


def test_the_kept_search_follows_the_folder_and_account_it_searched(alice_client, account, hello):
    alice_client.get(INBOX + "?q=hello")
    one_account = alice_client.get(INBOX + f"?q=hello&account={account.id}")
    assert rendered(one_account)
    assert not rendered(alice_client.get(INBOX + f"?q=hello&account={account.id}"))
    archive = alice_client.get(ARCHIVE + "?q=hello")
    assert rendered(archive)


def test_each_view_of_a_folder_is_cached(alice_client, account, hello):
    for query in ("?view=messages", f"?account={account.id}", f"?account={account.id}&view=conversations"):
        alice_client.get(INBOX + query)
        assert not rendered(alice_client.get(INBOX + query))


# --- The sidebar of pages rendered afresh (searches, older pages) -------------------------------

SEARCH = INBOX + "?q=hello"

SIDEBAR_CHANGES = {
    "a new folder": (lambda alice, account, hello: folders.create(alice.id, "Receipts"), b"Receipts"),
    "an account renamed": (
        lambda alice, account, hello: account_actions.update_account(account, label="Home mail"),
        b"Home mail",
    ),
    "a message read": (
        lambda alice, account, hello: actions.set_seen(alice.id, [hello.id], True),
        b"<title>Search",  # no "(1) " unread count before the title any more
    ),
    "a message arriving unread": (
        lambda alice, account, hello: store_message(account, build_message("Other"), "u2"),
        b"<title>(2) Search",
    ),
}


@pytest.mark.parametrize("change", SIDEBAR_CHANGES, ids=list(SIDEBAR_CHANGES))
def test_a_search_page_shows_every_change_to_the_folders_accounts_and_counts(
    alice, alice_client, account, hello, change
):
    make_account(alice, username="second", label="Second")  # the account list shows with two accounts
    apply, expected = SIDEBAR_CHANGES[change]
    assert expected not in alice_client.get(SEARCH).content
    apply(alice, account, hello)
    assert expected in alice_client.get(SEARCH).content


def test_an_unchanged_sidebar_costs_no_query(alice, alice_client, hello, django_assert_num_queries):
    make_account(alice, username="second", label="Second")  # the account list shows with two accounts
    alice_client.get(SEARCH)
    alice_client.get(INBOX + "?q=carol")  # takes the kept search's place: SEARCH is rendered again
    # The search alone: its newest-mail window's bound (listing.Window) is kept with the sidebar
    # (none here, the mailbox being small: the whole search runs).
    with django_assert_num_queries(1):
        page = alice_client.get(SEARCH)
    assert b"Hello there" in page.content and b"Work mail" in page.content


def test_the_sidebar_is_computed_afresh_when_the_cache_is_away(alice_client, hello, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    page = alice_client.get(SEARCH)
    assert page.status_code == 200 and b"<title>(1) Search" in page.content


def test_users_never_share_a_sidebar(alice, alice_client, bob, bob_client, hello):
    make_account(alice, username="second", label="Second")
    make_account(bob, label="Bobs mail")
    make_account(bob, username="other", label="Bobs other mail")
    alice_client.get(SEARCH)
    page = bob_client.get(SEARCH)
    assert b"Work mail" not in page.content
    assert b"Bobs mail" in page.content


# --- Nothing observes writes behind the code's back ------------------------------------------------

WRITES = ("update", "delete", "bulk_create", "bulk_update", "_update", "_insert", "_batched_insert", "_raw_delete")
PROJECT_APPS = ("accounts", "mailbox", "users", "ops", "outgoing", "push", "oauth", "unsubscribe", "webpop")


def test_no_queryset_manager_or_model_of_ours_overrides_how_rows_are_written():
    """Versions are bumped by the functions that change mail, never by hooking the ORM's writes."""
    ours = [model for model in apps.get_models() if model._meta.app_label in PROJECT_APPS]
    assert {Message, MailAccount, UserFolder, SavedSearch, Profile} <= set(ours)
    for model in ours:
        queryset = type(model._default_manager.get_queryset())
        for name in WRITES:
            assert getattr(queryset, name) is getattr(models.QuerySet, name), f"{model.__name__}.objects: {name}"
    for model in (Message, MailAccount, UserFolder, SavedSearch, Profile):  # what list pages show
        assert model.save is models.Model.save and model.delete is models.Model.delete, model.__name__


def test_no_module_of_ours_reads_query_internals():
    """No subclass of QuerySet (or of a manager) overrides a write, and nothing inspects a query's where-clause."""
    internals = ("django.db.models.lookups", "django.db.models.sql")
    base = Path(settings.BASE_DIR)
    for app in PROJECT_APPS:
        for path in (base / app).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom):
                    assert not (node.module or "").startswith(internals), path
                elif isinstance(node, ast.ClassDef) and any(
                    word in ast.unparse(parent) for parent in node.bases for word in ("QuerySet", "Manager")
                ):
                    defined = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
                    assert not defined & set(WRITES), f"{path}: {node.name}"
