"""The newcomer's first session, in real Chromium (issue 7 acceptance).

First-run setup → create the administrator → add a real Dovecot account through the add-account
form (the form's own connection test runs against Dovecot, TLS verified with the test CA) → the
account page shows the progress bar moving through the first sync and then the last success →
the inbox → read a message → star → archive → search finds it → delete → empty the trash → after
the next sync the message is gone from Dovecot (policy "Mirror").

The Celery worker is not running here (conftest's ``enqueued`` records the task instead); the test
runs ``mailbox.sync.sync_account`` itself, in a thread while the account page is open, with each
commit slowed down so the page's progress bar (polled every 2 s) is seen moving.

Screenshots of inbox, message, accounts and search at desktop (1280×800) and phone (390×844)
widths go to test-artifacts/screens/.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from mailbox import sync
from mailbox.models import Folder, Message, ServerState
from mailbox.sync.session import Session
from tests.factories import build_message

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.django_db(transaction=True)


class Screens:
    """Screenshots of the same URL at desktop width (the test's own tab) and phone width."""

    def __init__(self, page, phone_page):
        self.page = page
        self.phone = phone_page
        SCREENS.mkdir(parents=True, exist_ok=True)

    def shoot(self, name: str) -> None:
        self.page.screenshot(path=str(SCREENS / f"{name}-desktop.png"), full_page=True)
        self.phone.goto(self.page.url, wait_until="load")
        self.phone.screenshot(path=str(SCREENS / f"{name}-phone.png"), full_page=True)


def _slow_commits(monkeypatch, seconds: float) -> None:
    """One message per commit, each commit a little slow: the first sync takes a few seconds."""
    monkeypatch.setattr(Session, "BATCH_MESSAGES", 1)
    original = Session.commit_batch

    def slow(self, job):
        time.sleep(seconds)
        return original(self, job)

    monkeypatch.setattr(Session, "commit_batch", slow)


def test_newcomer_flow(browser, live_server, dovecot, pop_user, monkeypatch, django_user_model):
    from accounts.middleware import FirstRunMiddleware
    from accounts.models import MailAccount

    assert not django_user_model.objects.exists()
    # live_server is shared by the whole session and its FirstRunMiddleware caches "a user exists"
    # from earlier tests: give it a fresh cache for this test (a data descriptor beats the instance's).
    cache_key = f"_has_users_{id(live_server)}_{time.monotonic_ns()}"
    monkeypatch.setattr(
        FirstRunMiddleware,
        "has_users",
        property(
            lambda self: self.__dict__.get(cache_key, False), lambda self, v: self.__dict__.__setitem__(cache_key, v)
        ),
        raising=False,
    )
    subjects = ["Welcome to your new mailbox", "Lunch on Friday?", "Your train tickets", "Photos from the trip"]
    for n, subject in enumerate(subjects):
        pop_user.deliver(build_message(subject, f"Message number {n}.", date=f"Thu, 26 Nov 2026 0{n}:00:00 +0000"))
    target_raw = build_message(
        "Quarterly garden report",
        "The heliotrope beds did very well this quarter.",
        sender="Greta Gardener <greta@example.net>",
        date="Thu, 26 Nov 2026 08:00:00 +0000",
    )
    pop_user.deliver(target_raw)
    assert len(pop_user.messages()) == 5

    context = browser.new_context(viewport=DESKTOP)
    phone_context = None
    errors: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())  # "Empty trash?" confirmations, if any
        url = live_server.url

        # 1. First run: every page leads to the setup page.
        page.goto(f"{url}/", wait_until="load")
        assert page.url.endswith("/setup/")
        page.fill("#id_username", "admin")
        page.fill("#id_password1", "a-Long-passw0rd!")
        page.fill("#id_password2", "a-Long-passw0rd!")
        page.get_by_role("button", name="Create administrator").click()
        page.wait_for_url(re.compile(r"/accounts/add/$"))

        # 2. Add the Dovecot account through the form (the form tests the connection first).
        page.fill("#id_host", "localhost")
        page.select_option("#id_security", "ssl")
        page.fill("#id_port", str(dovecot.pop3s_port))
        page.fill("#id_username", pop_user.name)
        page.fill("#id_password", pop_user.password)
        page.check("input[name=policy][value=mirror]")
        page.get_by_role("button", name="Save account").click()
        page.wait_for_url(re.compile(r"/accounts/\d+/$"))
        account = MailAccount.objects.get()
        assert account.owner.username == "admin"
        assert account.policy.startswith("mirror")
        assert "never" in page.locator("dl.facts").inner_text()

        # 3. The first sync, watched on the account page: the progress bar appears and moves.
        _slow_commits(monkeypatch, 0.8)
        outcome: dict = {}
        worker = threading.Thread(target=lambda: outcome.update(result=sync.sync_account(account.id)))
        worker.start()
        try:
            page.wait_for_function(
                "() => { const b = document.getElementById('sync-progress');"
                " return b && !b.hidden && document.getElementById('sync-progress-bar').value > 0; }",
                timeout=TIMEOUT_MS,
            )
            shown = page.locator("#sync-progress .progress-text").inner_text()
            assert re.match(r"\d of 5 messages", shown), shown
        finally:
            worker.join(timeout=60)
        assert outcome["result"].error is None, outcome["result"]
        assert outcome["result"].fetched == 5
        page.wait_for_function("() => document.getElementById('sync-progress').hidden", timeout=TIMEOUT_MS)
        page.reload(wait_until="load")
        facts = page.locator("dl.facts").inner_text()
        assert re.search(r"Messages here\s+5", facts), facts
        assert not re.search(r"Last success\s+never", facts), facts

        phone_context = browser.new_context(viewport=PHONE, storage_state=context.storage_state())
        phone = phone_context.new_page()
        phone.set_default_timeout(TIMEOUT_MS)
        screens = Screens(page, phone)
        page.goto(f"{url}/accounts/", wait_until="load")
        screens.shoot("accounts")

        # 4. The inbox, then read the message.
        page.goto(f"{url}/", wait_until="load")
        listed = page.locator("#message-list li")
        assert listed.count() == 5
        assert listed.first.locator(".subject").inner_text().startswith("Quarterly garden report")  # newest first
        screens.shoot("inbox")
        message = Message.objects.get(subject="Quarterly garden report")
        assert not message.seen
        page.get_by_role("link", name=re.compile("Quarterly garden report")).click()
        page.wait_for_url(re.compile(rf"/message/{message.id}/$"))
        assert page.locator("h1").first.inner_text().startswith("Quarterly garden report")
        assert "heliotrope" in page.locator("article").inner_text()
        screens.shoot("message")
        message.refresh_from_db()
        assert message.seen

        # 5. Star it (the message page's own button).
        page.get_by_role("button", name=re.compile(r"Star$")).click()
        page.wait_for_load_state("load")
        message.refresh_from_db()
        assert message.flagged
        page.goto(f"{url}/message/{message.id}/", wait_until="load")
        assert page.get_by_role("button", name=re.compile("Unstar")).is_visible()

        # 6. Archive it: gone from the inbox, in the archive.
        page.get_by_role("button", name="Archive").click()
        page.wait_for_load_state("load")
        message.refresh_from_db()
        assert message.folder == Folder.ARCHIVE
        page.goto(f"{url}/", wait_until="load")
        assert page.locator("#message-list li").count() == 4
        assert "Quarterly garden report" not in page.locator("#message-list").inner_text()

        # 7. Search finds it (a word of the body), highlighted.
        page.fill("#q", "heliotrope")
        page.press("#q", "Enter")
        page.wait_for_url(re.compile(r"\?q=heliotrope"))
        results = page.locator("#message-list li")
        assert results.count() == 1
        assert "Quarterly garden report" in results.first.inner_text()
        screens.shoot("search")
        page.fill("#q", "from:greta garden")
        page.press("#q", "Enter")
        page.wait_for_url(re.compile(r"\?q=from"))
        assert page.locator("#message-list li").count() == 1

        # 8. Delete it (from the message page), then empty the trash.
        page.locator("#message-list li a").first.click()
        page.wait_for_url(re.compile(rf"/message/{message.id}/$"))
        page.get_by_role("button", name="Delete").click()
        page.wait_for_load_state("load")
        message.refresh_from_db()
        assert message.folder == Folder.TRASH
        page.goto(f"{url}/folder/trash/", wait_until="load")
        assert "Quarterly garden report" in page.locator("#message-list").inner_text()
        page.get_by_role("button", name=re.compile("Empty trash")).click()
        page.wait_for_load_state("load")
        message.refresh_from_db()
        assert message.folder == Folder.PURGED
        assert message.server_state == ServerState.DELETE_PENDING  # mirror: DELE at the next sync
        assert "Quarterly garden report" not in page.content()
        # Still on the server until then.
        assert len(pop_user.messages()) == 5

        # 9. The next sync deletes it from Dovecot, and only it.
        result = sync.sync_account(account.id)
        assert result.error is None, result
        assert result.deleted_on_server == 1
        remaining = pop_user.messages()
        assert len(remaining) == 4
        assert not any(b"Quarterly garden report" in raw for raw in remaining)
        # The tombstone of mail deleted for good goes once the server copy is gone.
        assert not Message.objects.filter(id=message.id).exists()
        assert Message.objects.filter(account=account, folder=Folder.INBOX).count() == 4
        assert errors == [], errors
    finally:
        if phone_context is not None:
            phone_context.close()
        context.close()
