"""In Chromium: reply to a message synced from Dovecot; the reply reaches the SMTP server and is in Sent.

The Celery worker is not running here: the send task runs in the web process when the web
enqueues it (``apply``), so the real task, SMTP session and filing in Sent all happen.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest

from accounts.models import Profile
from mailbox import sync
from mailbox.models import Folder, Message
from outgoing import send, tasks
from outgoing.models import OutgoingMessage, OutgoingState
from tests.browser import session_cookie
from tests.factories import build_message
from tests.test_accessibility import _check

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot]
TIMEOUT_MS = 15_000
SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"


def test_reply_to_a_synced_message_reaches_the_server_and_sent(
    browser_context, live_server, alice, pop_user, dovecot_account, smtp_account, smtp_server, monkeypatch
):
    pop_user.deliver(
        build_message(
            "Dinner on Saturday?",
            "Are you free on Saturday evening?\nBring Dan.\n",
            sender="Carol Jones <carol@example.net>",
            to="alice@example.org, Dan <dan@example.net>",
            message_id="<dinner.1@example.net>",
        )
    )
    account = smtp_account(dovecot_account(policy="keep"))
    assert sync.sync_account(account.id).fetched == 1
    original = Message.objects.get(account=account, folder=Folder.INBOX)
    # Undo send has its own journey (test_undo_send_browser), rich text too (test_richtext_browser).
    Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 0, "compose_format": "plain"})
    monkeypatch.setattr(tasks.send_outgoing, "delay", lambda outgoing_id: tasks.send_outgoing.apply(args=[outgoing_id]))

    context = browser_context({"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # script errors in compose.js and friends

    page.goto(f"{live_server.url}/message/{original.id}/")
    page.get_by_role("button", name="Reply", exact=True).click()
    page.wait_for_url(re.compile(r"/compose/\d+/$"))
    assert page.locator("#id_to").input_value() == "Carol Jones <carol@example.net>"
    assert page.locator("#id_subject").input_value() == "Re: Dinner on Saturday?"
    assert "> Are you free on Saturday evening?" in page.locator("#id_body").input_value()

    # Cc from the address suggestions (Dan is in the synced message's To).
    cc = page.locator("#id_cc")
    cc.click()
    cc.press_sequentially("da", delay=30)
    suggestion = page.locator("#address-suggestions li", has_text="dan@example.net")
    suggestion.wait_for()
    cc.press("ArrowDown")
    cc.press("Enter")
    assert cc.input_value() == "Dan <dan@example.net>, "

    body = page.locator("#id_body")
    body.focus()
    body.press("Control+Home")
    body.type("Yes, see you at 8!")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "compose-reply-desktop.png"), full_page=True)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(f"{live_server.url}/message/{original.id}/")
    assert page.get_by_text("Your message is being sent.").is_visible()

    # At the SMTP server: a reply in the thread, to Carol and Dan.
    [got] = smtp_server.received
    assert got.rcpt_tos == ["carol@example.net", "dan@example.net"]
    sent_mail = email.message_from_bytes(got.data, policy=email.policy.default)
    assert sent_mail["In-Reply-To"] == "<dinner.1@example.net>"
    assert sent_mail["References"] == "<dinner.1@example.net>"
    assert sent_mail["From"] == "Alice Example <alice@example.org>"
    text = sent_mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Yes, see you at 8!")
    assert "> Are you free on Saturday evening?\n> Bring Dan." in text

    # In Sent, in the browser.
    page.locator("#sidebar").get_by_role("link", name="Sent", exact=True).click()
    page.wait_for_url(f"{live_server.url}/folder/sent/")
    page.get_by_text("Re: Dinner on Saturday?").first.click()
    page.wait_for_url(re.compile(r"/message/\d+/$"))
    assert "Yes, see you at 8!" in page.locator(".plain-body").inner_text()
    sent = Message.objects.get(folder=Folder.SENT)
    assert page.url.endswith(f"/message/{sent.id}/")
    assert sent.thread_id == Message.objects.get(id=original.id).thread_id
    assert OutgoingMessage.objects.get().state == OutgoingState.SENT
    assert errors == []
    context.close()


def test_sending_pages_have_no_serious_or_critical_violations(browser, axe, live_server, alice, smtp_account):
    account = smtp_account()
    draft = send.save_draft(
        alice, None, account=account, to="bob@example.net", subject="Draft", add=[("a.txt", "text/plain", b"a")]
    )
    failed = send.save_draft(alice, None, account=account, to="bob@example.net", subject="Bounced")
    OutgoingMessage.objects.filter(id=failed.id).update(
        state=OutgoingState.FAILED, error="The server refused the message: 550 5.1.1 No such user"
    )
    cookie = session_cookie(alice)
    pages = {  # the new-message page and Drafts share these pages' markup
        "draft": f"/compose/{draft.id}/",
        "outbox": "/compose/outbox/",
        "sending-settings": "/compose/settings/",
        "account-sending": f"/compose/settings/{account.id}/",
    }
    problems = []
    for name, path in pages.items():
        problems += _check(browser, axe, live_server.url + path, name, cookie)
    assert problems == [], "axe-core found serious/critical violations:\n" + "\n".join(problems)


def test_choosing_another_sender_swaps_the_signature(browser_context, live_server, alice, smtp_account):
    from tests.factories import make_account

    home = smtp_account(signature="Alice at home")
    work = smtp_account(
        make_account(alice, username="alice@work.example"), from_email="alice@work.example", signature="Alice\nACME Ltd"
    )
    Profile.objects.update_or_create(user=alice, defaults={"compose_format": "plain"})  # rich: test_richtext_browser
    context = browser_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{live_server.url}/compose/?account={home.id}")
    body = page.locator("#id_body")
    assert body.input_value() == "\n\n-- \nAlice at home\n"
    body.focus()
    body.press("Control+Home")
    body.type("Hello")
    page.locator("#id_identity").select_option(str(work.identities.get(is_default=True).id))
    assert body.input_value() == "Hello\n\n-- \nAlice\nACME Ltd\n"
    context.close()


def test_a_message_being_written_is_saved_as_its_draft_while_typing(browser_context, live_server, alice, smtp_account):
    smtp_account()
    Profile.objects.update_or_create(user=alice, defaults={"compose_format": "plain"})  # rich: test_richtext_browser
    context = browser_context({"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/compose/")
    page.locator("#id_subject").fill("Saved while typing")
    page.locator("#id_body").press_sequentially("Half a thought", delay=10)
    # Saved within the autosave interval (5 s); the page's address becomes the draft's own.
    page.wait_for_url(re.compile(r"/compose/\d+/$"))
    assert page.locator("#autosave-status").inner_text() == "Draft saved"
    drafts = OutgoingMessage.objects.filter(owner=alice, state=OutgoingState.DRAFT)
    assert [(d.subject, d.body) for d in drafts] == [("Saved while typing", "Half a thought")]
    assert page.url.endswith(f"/compose/{drafts[0].id}/")
    assert errors == []
    context.close()
