"""Every URL pattern of the project, with arguments built from alice's objects.

Used by tests/test_isolation.py (bob and anonymous visitors against alice's
objects) and tests/test_security_headers.py (headers on every page).

Adding a URL: add ONE line to ``COVERAGE`` below, naming how its arguments come
from alice's objects (``World``) and which methods the view accepts:

    "app:name": obj(lambda w: {"thing_id": w.thing.id}, methods="GET"),   # one object of alice's
    "app:name": own(),                                                   # the user's own list / form
    "app:name": operator(operators.VIEW_DASHBOARD),                      # for holders of a permission only

or add it to ``PUBLIC`` when it is meant to work without logging in (with the
arguments a visitor would use: a link from an e-mail, or a forged one).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.views_prefs import save_preferences
from contacts import actions as contact_actions
from mailbox import actions, folders, rules
from mailbox.models import (
    BulkJob,
    FetchFailure,
    ImportJob,
    Message,
    RemoteImagePreference,
    Rule,
    SavedSearch,
    UserFolder,
)
from mailbox.views_html import asset_token, ensure_rendered
from oauth.models import Grant
from outgoing import actions as outgoing_actions
from outgoing import identities, send
from outgoing.models import OutgoingAttachment, OutgoingMessage
from push.models import PushSettings, PushSubscription
from tests.factories import build_message, make_account, store_message
from users import actions as user_actions
from users import operators, signup, twofactor
from users.models import Invitation
from users.sessions import SessionStore

PNG = bytes.fromhex(  # one red pixel, a whole PNG (its thumbnail is made from it)
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f00050001ff89993d1d0000000049454e44ae426082"
)
# Text that only alice's objects contain: none of it may appear in a page served to anyone else.
SECRETS = (
    "Alice-Secret-Subject",
    "alice-secret-body",
    "alice-secret-pop-user",
    "alice-secret-host.example",
    "Alice Secret Label",
    "Alice Secret Folder",
    "alice-secret-rule",
    "alice-secret-plan.pdf",
    "news@alice-secret.example",
    "alice-secret-draft-notes.txt",  # a file attached to her draft
    "alice-secret-smtp-user",
    "alice-secret-smtp-password",  # never shown to anyone, alice included
    "alice-secret-signature",
    "AliceSecretBrowser",  # the browser of her session
    "staff-secret-inviter",  # the staff member who created the invitation
    "alice-secret-archive.mbox",  # a file she imported
    "Alice Secret List",  # the mailing list her message came from
    "alice-secret-token",  # in the list's unsubscribe link
    "alice-secret-push-endpoint",  # the push service's URL of her browser (a capability)
    "AliceSecretPushBrowser",  # the browser she turned notifications on in
    "Alice Secret Search",  # the name of a search she saved
    "alice-secret-query",
    "Alice Secret Contact",  # a person in her address book, with an address and notes
    "alice-secret-contact@example.net",
    "alice-secret-contact-notes",
)


@dataclass
class World:
    """alice's objects of every kind a URL can name, and a few of bob's (so bob's pages are not empty)."""

    alice: object
    bob: object
    account: object
    message: Message
    trashed: Message
    attachment: object
    inline_image: object
    folder: UserFolder
    rule: Rule
    failure: FetchFailure
    bob_message: Message
    oauth_account: object = None  # a second account of alice's that signs in with OAuth2
    signer: object = None  # whose signature the signed (token) URLs carry: bob's unless a test says otherwise
    bob_account: object = None  # bob's account, which can send: his compose form accepts his own account only
    draft: OutgoingMessage | None = None  # alice's draft, sent from ``account`` (which has sending settings)
    draft_attachment: OutgoingAttachment | None = None
    draft_picture: OutgoingAttachment | None = None  # a picture in the draft's rich text
    failed: OutgoingMessage | None = None  # a message of alice's the server refused: in her Outbox
    session_id: str = ""  # one of alice's sessions (the 64-character hash the sessions page names it by)
    invitation: Invitation | None = None  # created by a staff member (site-wide: only operators revoke it)
    invitation_token: str = ""
    newcomer: object = None  # signed up, e-mail address not yet confirmed
    authenticator: TOTPDevice | None = None  # alice signs in with a second factor (and has backup codes)
    import_job: ImportJob | None = None  # an import of alice's, finished with a refused message
    push_subscription: PushSubscription | None = None  # a browser of alice's notified of new mail
    snoozed: Message | None = None  # in her Snoozed view
    saved_search: SavedSearch | None = None
    bulk_job: BulkJob | None = None  # "Select all N" of alice's: her Inbox archived in the background
    calendar_file: object = None  # the .ics of an invitation alice received
    contact: object = None  # in her address book
    alias: object = None  # a second address alice's ``account`` sends as


def _alices_message() -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "Newsletter <news@alice-secret.example>"
    msg["To"] = "alice@example.org"
    msg["Subject"] = "Alice-Secret-Subject"
    msg["Date"] = "Thu, 26 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = "<alice-secret@alice-secret.example>"
    msg["List-Id"] = "Alice Secret List <news.alice-secret.example>"
    # Refused at once when posted to: no network in tests.
    msg["List-Unsubscribe"] = "<https://192.0.2.1/unsubscribe/alice-secret-token>, <mailto:news@alice-secret.example>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("alice-secret-body in plain text")
    msg.add_alternative(
        '<p>alice-secret-body</p><img src="cid:logo@alice-secret.example" alt="logo">'
        '<img src="http://192.0.2.1/pixel.png" alt="pixel">',  # refused at once: no network in tests
        subtype="html",
    )
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@alice-secret.example>", filename="logo.png")
    msg.add_attachment(b"%PDF-1.4 alice", maintype="application", subtype="pdf", filename="alice-secret-plan.pdf")
    return msg.as_bytes()


def build_world(alice, bob) -> World:
    account = make_account(
        alice, host="alice-secret-host.example", username="alice-secret-pop-user", label="Alice Secret Label"
    )
    message = store_message(account, _alices_message(), "alice-1")
    ensure_rendered(message)  # as alice's first view does: the remote-image list the proxy serves from
    message.refresh_from_db()
    trashed = store_message(account, build_message("Alice-Secret-Subject in the trash", "x"), "alice-2")
    actions.move(alice.id, [trashed.id], "trash")
    folder = folders.create(alice.id, "Alice Secret Folder")
    rule = rules.create(alice.id, field="subject", contains="alice-secret-rule", action="move", folder=folder.slug)
    failure = FetchFailure.objects.create(
        account=account, uidl="alice-3", size=10, attempts=3, error="boom", raw_path=message.raw_path,
        subject="Alice-Secret-Subject", quarantined_at=message.received_at,
    )  # fmt: skip
    RemoteImagePreference.objects.create(owner=alice, sender="news@alice-secret.example")
    save_preferences(alice, time_zone="Europe/Paris", conversations=False)
    attachments = list(message.attachments.all())
    oauth_account = make_account(alice, host="pop.gmail.com", username="alice-secret-pop-user@gmail.com")
    grant = Grant(account=oauth_account, provider="google", email="alice-secret-pop-user@gmail.com")
    grant.set_refresh_token("alice-secret-refresh-token")
    grant.save()
    bob_account = make_account(bob, host="pop.bob.example", username="bob-pop", label="Bob")
    bob_message = store_message(bob_account, build_message("Bob's own", "hello bob"), "bob-1")
    outgoing_actions.save(
        account,
        _smtp_form(
            host="smtp.alice-secret-host.example", username="alice-secret-smtp-user",
            password="alice-secret-smtp-password", from_email="alice@alice-secret-host.example",
            signature="alice-secret-signature",
        ),
    )  # fmt: skip
    outgoing_actions.save(bob_account, _smtp_form(host="smtp.bob.example", from_email="bob@bob.example"))
    alias = identities.save(
        alice, account, None, {"address": "alias@alice-secret-host.example", "signature": "alice-secret-signature"}
    )
    draft = send.save_draft(
        alice, None, account=account, to="Friend <friend@example.net>", subject="Alice-Secret-Subject in a draft",
        body="alice-secret-body of a draft", add=[("alice-secret-draft-notes.txt", "text/plain", b"notes")],
    )  # fmt: skip
    draft_picture = outgoing_actions.add_image(alice, draft.id, "alice-secret-photo.png", PNG)
    failed = send.save_draft(
        alice, None, account=account, to="friend@example.net", subject="Alice-Secret-Subject not sent",
        body="alice-secret-body the server refused",
    )  # fmt: skip
    outgoing_actions.queue(alice, failed.id)
    send.give_up(failed.id)  # as after the last retry
    staff = get_user_model().objects.create_user("staff-secret-inviter", "staff@example.org", is_staff=True)
    invitation, invitation_token = signup.create_invitation(staff)
    newcomer = signup.register(username="newcomer", email="newcomer@example.net", password="newcomer-Password-1")
    authenticator = TOTPDevice.objects.create(user=alice, name="Alice's phone", confirmed=True)
    twofactor.new_backup_codes(alice)
    import_job = ImportJob.objects.create(
        owner=alice, account=account, folder=folder.slug, state="done", total_bytes=100, bytes_done=100, imported=1,
        refused=1, files=[{"name": "alice-secret-archive.mbox", "path": "imports/x-0", "size": 100}],
        refusals=[{"file": "alice-secret-archive.mbox", "number": 2, "reason": "empty", "detail": ""}],
    )  # fmt: skip
    PushSettings.objects.create(user=alice, content="sender")
    push_subscription = PushSubscription.objects.create(
        owner=alice, session_id=_alices_session(alice), endpoint=ALICE_PUSH_ENDPOINT, p256dh=ALICE_PUSH_P256DH,
        auth=ALICE_PUSH_AUTH, vapid_public="BAlice", language="en",
        user_agent="Mozilla/5.0 AliceSecretPushBrowser/1.0",
    )  # fmt: skip
    snoozed = store_message(account, build_message("Alice-Secret-Subject asleep", "x"), "alice-4")
    actions.snooze(alice.id, [snoozed.id], timezone.now() + dt.timedelta(days=2))
    saved_search = actions.save_search(alice.id, "Alice Secret Search", "subject:alice-secret-query")
    bulk_job = actions.start_bulk_job(alice.id, {"folder": folder.slug}, "move", "archive")
    invite = store_message(
        account,
        build_message("Alice-Secret-Subject invitation", "x", attachments=[("invite.ics", "text/calendar", ALICE_ICS)]),
        "alice-5",
    )
    contact, _taken = contact_actions.create(
        alice.id,
        contact_actions.Card(
            name="Alice Secret Contact", emails=["alice-secret-contact@example.net"], notes="alice-secret-contact-notes"
        ),
    )
    return World(
        alice=alice,
        bob=bob,
        account=account,
        message=message,
        trashed=trashed,
        attachment=next(a for a in attachments if a.filename == "alice-secret-plan.pdf"),
        inline_image=next(a for a in attachments if a.content_type == "image/png"),
        folder=folder,
        rule=rule,
        failure=failure,
        bob_message=bob_message,
        oauth_account=oauth_account,
        signer=bob,
        bob_account=bob_account,
        draft=draft,
        alias=alias,
        draft_attachment=draft.attachments.get(content_id=""),
        draft_picture=draft_picture,
        failed=OutgoingMessage.objects.get(id=failed.id),
        session_id=_alices_session(alice),
        invitation=invitation,
        invitation_token=invitation_token,
        newcomer=newcomer,
        authenticator=authenticator,
        import_job=import_job,
        push_subscription=push_subscription,
        snoozed=snoozed,
        saved_search=saved_search,
        bulk_job=bulk_job,
        calendar_file=invite.attachments.get(),
        contact=contact,
    )


ALICE_ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
    b"UID:alice-secret-uid@example.net\r\nSEQUENCE:0\r\nDTSTAMP:20261126T090000Z\r\nDTSTART:20261203T140000Z\r\n"
    b"SUMMARY:Alice-Secret-Subject meeting\r\nORGANIZER:mailto:carol@example.net\r\n"
    b"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:alice@alice-secret-host.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


ALICE_PUSH_ENDPOINT = "https://push.example.net/alice-secret-push-endpoint"
# A P-256 public key (any valid point): a subscription bob might copy.
ALICE_PUSH_AUTH = "aWNlLWNyZWFtLXNlY3JldA"
ALICE_PUSH_P256DH = "BKA7w0h2zaBKuNT4i5ftiDvvs7YFXLlHDIpo2FvfFZASe459dvo9JmaKzAc4KshJy0i4cBVFgzU7zfVuKjnGJ14"


def _push_posts(w: World) -> list[dict]:
    # bob sends alice's browser's subscription as his own.
    return [{"endpoint": ALICE_PUSH_ENDPOINT, "p256dh": ALICE_PUSH_P256DH, "auth": ALICE_PUSH_AUTH, "key": "x"}]


def _smtp_form(**overrides) -> dict:
    data = {
        "host": "smtp.example.net", "port": 587, "security": "starttls", "auth": "separate", "username": "sender",
        "password": "sender-password", "from_name": "", "from_email": "sender@example.net", "signature": "",
    }  # fmt: skip
    data.update(overrides)
    return data


def _alices_session(alice) -> str:
    """A signed-in session of alice's in another browser, as the session middleware records it."""
    session = SessionStore()
    session.ip, session.user_agent = "198.51.100.7", "Mozilla/5.0 AliceSecretBrowser/1.0"
    session[SESSION_KEY] = str(alice.pk)
    session[BACKEND_SESSION_KEY] = "users.backends.CachedModelBackend"
    session[HASH_SESSION_KEY] = alice.get_session_auth_hash()
    session.create()
    return user_actions.session_id(session.session_key)


# --- Coverage ---------------------------------------------------------------------------------

Builder = Callable[[World], dict]


@dataclass(frozen=True)
class Case:
    # "object": names one of alice's objects; "own": the user's own list or form; "operator": a page or
    # action for holders of ``permission`` only (403 for everyone else); "token": a signed URL
    kind: str
    args: Builder = field(default=lambda w: {})
    methods: str = "GET"  # what the view accepts: "GET", "POST" or "GET POST"
    queries: Callable[[World], list[dict]] = field(default=lambda w: [{}])
    posts: Callable[[World], list[dict]] = field(default=lambda w: [{}])
    permission: str = ""


def obj(args: Builder, *, methods: str = "GET", queries=None, posts=None) -> Case:
    return Case("object", args, methods, queries or (lambda w: [{}]), posts or (lambda w: [{}]))


def own(*, args: Builder | None = None, methods: str = "GET", queries=None, posts=None) -> Case:
    return Case("own", args or (lambda w: {}), methods, queries or (lambda w: [{}]), posts or (lambda w: [{}]))


def operator(permission: str, args: Builder | None = None, *, methods: str = "GET", queries=None, posts=None) -> Case:
    """Operators' pages and actions act on every user's objects: the permission decides, not ownership."""
    return Case(
        "operator", args or (lambda w: {}), methods, queries or (lambda w: [{}]), posts or (lambda w: [{}]), permission
    )


def token(args: Builder) -> Case:
    return Case("token", args, "GET")


def _account(w: World) -> dict:
    return {"account_id": w.account.id}


def _message(w: World) -> dict:
    return {"message_id": w.message.id}


def _failure(w: World) -> dict:
    return {"account_id": w.account.id, "failure_id": w.failure.id}


def _account_form(w: World) -> dict:
    return {
        "label": "Bob was here", "host": "pop.bob.example", "security": "ssl", "port": "995", "username": "bob",
        "password": "bob-secret", "policy": "delete", "poll_interval": "60", "deliver_to": w.folder.slug,
        "action": "save", "save_anyway": "on",
    }  # fmt: skip


def _bulk(w: World) -> list[dict]:
    ids = [w.message.id, w.trashed.id]
    actions_ = ["read", "unread", "star", "unstar", "archive", "inbox", "spam", "trash", "forever"]
    return (
        [{"action": a, "ids": ids} for a in actions_]
        + [{"action": "move", "folder": w.folder.slug, "ids": ids}]
        # "Select all N" naming alice's account or folder, or moving into her folder.
        + [{"action": a, "scope": "all", "criteria": f"folder=inbox&account={w.account.id}"} for a in actions_]
        + [{"action": "archive", "scope": "all", "criteria": f"folder={w.folder.slug}"}]
        + [{"action": "move", "folder": w.folder.slug, "scope": "all", "criteria": "folder=inbox"}]
    )


def _draft(w: World) -> dict:
    return {"outgoing_id": w.draft.id}


def _compose(account_id: int, **extra) -> dict:
    return {"account": account_id, "to": "bob@bob.example", "subject": "Bob was here", "body": "hi", **extra}


def _setup(**extra) -> dict:
    """The sending setup of a first message (outgoing/_send_setup.html), pointed at a server of bob's choosing."""
    fields = {"host": "smtp.bob.example", "port": "587", "security": "starttls", "auth": "same",
              "from_email": "bob@bob.example"}  # fmt: skip
    return {f"smtp-{name}": value for name, value in fields.items()} | extra


def _compose_posts(w: World) -> list[dict]:
    # Sending from alice's account, or dropping her draft's file from a draft of bob's own; setting up sending
    # for (and sending from) alice's account that cannot send yet.
    return [
        _compose(w.account.id),
        _compose(w.account.id, action="send"),
        _compose(w.bob_account.id, remove=[w.draft_attachment.id]),
        _compose(w.account.id, action="autosave"),
        _compose(w.bob_account.id, identity=w.alias.id),
        _compose(w.oauth_account.id, **_setup(action="test")),
        _compose(w.oauth_account.id, **_setup(action="send")),
    ]


def _edit_posts(w: World) -> list[dict]:
    # Overwriting alice's draft, moving it to bob's account, sending it, or removing its file; testing or sending
    # it with a sending setup for her account that cannot send yet.
    return [
        _compose(w.account.id),
        _compose(w.bob_account.id, action="send"),
        _compose(w.bob_account.id, action="autosave", remove=[w.draft_attachment.id]),
        _compose(w.bob_account.id, identity=w.alias.id, action="send"),
        _compose(w.oauth_account.id, **_setup(action="test")),
        _compose(w.oauth_account.id, **_setup(action="send")),
    ]


def _smtp_posts(w: World) -> list[dict]:
    form = {"host": "smtp.bob.example", "security": "starttls", "port": "587", "auth": "same",
            "from_email": "bob@bob.example", "from_name": "Bob"}  # fmt: skip
    return [{**form, "action": "save"}, {**form, "action": "test"}]


def _identity_posts(w: World) -> list[dict]:
    return [{"address": "bob@bob.example", "name": "Bob", "signature": "bob", "signature_placement": "below"}]


ALICE_PASSWORD = "alice-Password-1"


def _confirm_posts(w: World) -> list[dict]:
    # Empty, and alice's password: it must not pass for bob.
    return [{}, {"password": ALICE_PASSWORD}]


def _password_posts(w: World) -> list[dict]:
    new = {"new_password1": "Bob-Took-Over-9", "new_password2": "Bob-Took-Over-9"}
    return [{}, {"old_password": ALICE_PASSWORD, **new}]


def _import(w: World) -> list[dict]:
    upload = SimpleUploadedFile("x.eml", build_message("Bob imports into alice's account"), "message/rfc822")
    return [{"account": w.account.id, "folder": w.folder.slug, "files": upload}]


def _snooze_posts(w: World) -> list[dict]:
    # Snoozing her mail, waking it (snoozed again), and the page to pick a time for it.
    ids = [w.message.id, w.snoozed.id, w.trashed.id]
    return [
        {"ids": ids, "until": (timezone.now() + dt.timedelta(days=1)).isoformat()},
        {"ids": ids, "until": (timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"), "picking": "1"},
        {"ids": ids, "pick": "1"},
    ]


def _contact(w: World) -> dict:
    return {"contact_id": w.contact.id}


def _contact_posts(w: World) -> list[dict]:
    # Overwriting her contact (bob's own book may hold any address: her secret one would show in his pages).
    return [{"name": "Bob was here", "emails": "bobs-friend@example.net", "notes": "bob"}]


def _vcard_posts(w: World) -> list[dict]:
    card = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Bob was here\r\nEMAIL:bobs-friend@example.net\r\nEND:VCARD\r\n"
    return [{"file": SimpleUploadedFile("bob.vcf", card.encode(), "text/vcard")}]


def _saved_search(w: World) -> dict:
    return {"search_id": w.saved_search.id}


COVERAGE: dict[str, Case] = {
    "accounts:list": own(),
    "accounts:add": own(methods="GET POST", posts=lambda w: [_account_form(w)]),
    "accounts:suggest": own(queries=lambda w: [{"address": "me@fastmail.com"}]),
    "accounts:preferences": own(methods="GET POST", posts=lambda w: [{"time_zone": "Asia/Tokyo"}]),
    "accounts:browser_time_zone": own(methods="POST", posts=lambda w: [{"time_zone": "Asia/Tokyo"}]),
    "accounts:detail": obj(_account),
    "accounts:check_now": obj(_account, methods="POST"),
    "accounts:edit": obj(_account, methods="GET POST", posts=lambda w: [_account_form(w)]),
    "accounts:toggle": obj(_account, methods="POST"),
    "accounts:delete": obj(_account, methods="GET POST"),
    "accounts:status": obj(_account),
    "accounts:failure_retry": obj(_failure, methods="POST"),
    "accounts:failure_raw": obj(_failure),
    "spam:account": obj(_account, methods="POST", posts=lambda w: [{"trust": "on", "authserv_id": "mx.bob.example"}]),
    "spam:thresholds": own(methods="POST", posts=lambda w: [{"spam_score": "5", "probable_score": "3"}]),
    "spam:not_spam": obj(lambda w: {"message_id": w.message.id}, methods="POST"),
    "mailbox:inbox": own(queries=lambda w: [{}, {"account": w.account.id}, {"q": "secret"}]),
    "mailbox:folder": own(args=lambda w: {"folder": w.folder.slug}, queries=lambda w: [{}, {"q": "in:trash"}]),
    "mailbox:bulk": own(methods="POST", posts=_bulk),
    "mailbox:undo": own(methods="POST"),
    "mailbox:counts": own(),
    "mailbox:empty_trash": own(methods="POST"),
    "mailbox:source": obj(_message),
    "mailbox:export": own(queries=lambda w: [{"folder": "inbox"}, {"folder": "trash"}, {"q": "secret"}]),
    "mailbox:message": obj(_message, queries=lambda w: [{}, {"earlier": "all"}]),
    "mailbox:message_part": obj(_message, methods="POST", queries=lambda w: [{}, {"view": "text"}]),
    "mailbox:delete": obj(_message, methods="POST"),
    "mailbox:row_action": obj(
        _message,
        methods="POST",
        posts=lambda w: [{"action": a} for a in ("star", "unstar", "read", "archive", "trash")],
    ),
    "mailbox:sender_tab": obj(_message, methods="POST", posts=lambda w: [{"tab": "promotions"}, {"tab": "primary"}]),
    "mailbox:raw": obj(_message),
    "mailbox:attachment": obj(lambda w: {"attachment_id": w.attachment.id}),
    "mailbox:attachment_preview": obj(lambda w: {"attachment_id": w.attachment.id}),
    "mailbox:attachment_image": obj(lambda w: {"attachment_id": w.inline_image.id, "size": "thumb"}),
    "mailbox:attachments_zip": obj(_message),
    "mailbox:calendar_ics": obj(lambda w: {"attachment_id": w.calendar_file.id}),
    "mailbox:calendar_answer": obj(
        lambda w: {"attachment_id": w.calendar_file.id},
        methods="POST",
        posts=lambda w: [{"uid": "alice-secret-uid@example.net", "recurrence_id": "", "answer": "ACCEPTED"}],
    ),
    "mailbox:message_body": obj(_message, queries=lambda w: [{}, {"images": "1"}]),
    # Signed URLs the cookie-less message frame loads: bob can only sign for himself.
    "mailbox:cid_image": token(
        lambda w: {
            "message_id": w.message.id,
            "token": asset_token(w.signer.id, w.message.id, False),
            "attachment_id": w.inline_image.id,
        }
    ),
    "mailbox:proxied_image": token(
        lambda w: {"message_id": w.message.id, "token": asset_token(w.signer.id, w.message.id, True), "index": 0}
    ),
    "mailbox:remote_images_sender": obj(
        _message, methods="POST", posts=lambda w: [{"action": "always"}, {"action": "never"}]
    ),
    "mailbox:remote_image_settings": own(
        methods="GET POST", posts=lambda w: [{"remove": "news@alice-secret.example"}, {"everyone": "on"}]
    ),
    "mailbox:folders": own(methods="GET POST", posts=lambda w: [{"name": "Bob's folder"}]),
    "mailbox:folder_rename": obj(lambda w: {"folder_id": w.folder.id}, methods="POST", posts=lambda w: [{"name": "B"}]),
    "mailbox:folder_delete": obj(lambda w: {"folder_id": w.folder.id}, methods="POST"),
    "mailbox:rules": own(
        methods="GET POST",
        posts=lambda w: [
            {"field": "subject", "contains": "x", "action": "move", "folder": w.folder.slug, "account": w.account.id}
        ],
    ),
    "mailbox:rule_delete": obj(lambda w: {"rule_id": w.rule.id}, methods="POST"),
    "mailbox:rule_run": obj(lambda w: {"rule_id": w.rule.id}, methods="POST"),
    "mailbox:import": own(methods="GET POST", posts=_import),
    "mailbox:import_job": obj(lambda w: {"job_id": w.import_job.id}),
    "mailbox:import_status": obj(lambda w: {"job_id": w.import_job.id}),
    # Printing a message, or its whole conversation.
    "mailbox:print": obj(_message, queries=lambda w: [{}, {"view": "text"}]),
    "mailbox:print_conversation": obj(_message),
    # Unsubscribing from the list a message came from: confirmed with a POST, either way it offers.
    "unsubscribe:confirm": obj(
        _message, methods="GET POST", posts=lambda w: [{"method": "one_click"}, {"method": "mailto"}]
    ),
    "unsubscribe:status": obj(_message),
    # Virtual views (All mail holds the others' rows), snooze and saved searches (mailbox/views_virtual.py).
    "mailbox:view": own(
        args=lambda w: {"slug": "all"}, queries=lambda w: [{}, {"view": "messages"}, {"account": w.account.id}]
    ),
    "mailbox:snooze": own(methods="POST", posts=_snooze_posts),
    "mailbox:saved_searches": own(methods="POST", posts=lambda w: [{"q": "secret", "name": "Bob's search"}]),
    "mailbox:saved_search_rename": obj(_saved_search, methods="POST", posts=lambda w: [{"name": "Bob was here"}]),
    "mailbox:saved_search_delete": obj(_saved_search, methods="POST"),
    # "Select all N": counting a list, a background job's progress (mailbox/views_bulk.py).
    "mailbox:bulk_count": own(
        queries=lambda w: [{"folder": "inbox"}, {"folder": "inbox", "account": w.account.id}, {"folder": w.folder.slug}]
    ),
    "mailbox:bulk_status": obj(lambda w: {"job_id": w.bulk_job.id}),
    "oauth:start": own(args=lambda w: {"provider": "google"}, methods="POST"),
    "oauth:callback": own(queries=lambda w: [{}, {"state": "forged", "code": "x"}]),
    "oauth:confirm": own(methods="GET POST"),
    "oauth:reconnect": obj(lambda w: {"account_id": w.oauth_account.id}, methods="POST"),
    # The operators' dashboard: each page and action asks for its permission; everyone else gets 403.
    "ops:dashboard": operator(operators.VIEW_DASHBOARD),
    "ops:accounts": operator(operators.VIEW_DASHBOARD, queries=lambda w: [{}, {"health": "error"}]),
    "ops:users": operator(operators.VIEW_DASHBOARD),
    "ops:account_sync": operator(operators.ACT_ON_ACCOUNTS, _account, methods="POST"),
    "ops:account_pause": operator(
        operators.ACT_ON_ACCOUNTS, _account, methods="POST", posts=lambda w: [{"pause": "1"}, {"pause": "0"}]
    ),
    "ops:user_active": operator(
        operators.DISABLE_USERS,
        lambda w: {"user_id": w.alice.id},
        methods="POST",
        posts=lambda w: [{"active": "0"}, {"active": "1"}],
    ),
    "ops:failure_retry": operator(operators.ACT_ON_ACCOUNTS, lambda w: {"failure_id": w.failure.id}, methods="POST"),
    # Writing and sending mail (outgoing/).
    "outgoing:compose": own(
        methods="GET POST",
        queries=lambda w: [
            {},
            {"account": w.account.id},
            {"to": "friend@example.net"},
            {"account": w.account.id, "to": "news@example.net", "subject": "unsubscribe", "body": "unsubscribe"},
        ],
        posts=_compose_posts,
    ),
    "outgoing:edit": obj(_draft, methods="GET POST", posts=_edit_posts),
    "outgoing:retry": obj(lambda w: {"outgoing_id": w.failed.id}, methods="POST"),
    # Undo names a message of Alice's; the failed one is past its window (the walk checks access, not timing).
    "outgoing:undo": obj(lambda w: {"outgoing_id": w.failed.id}, methods="POST"),
    "outgoing:discard": obj(_draft, methods="POST"),
    "outgoing:attachment": obj(lambda w: {"outgoing_id": w.draft.id, "attachment_id": w.draft_attachment.id}),
    "outgoing:image": obj(lambda w: {"outgoing_id": w.draft.id, "attachment_id": w.draft_picture.id}),
    "outgoing:image_upload": obj(
        _draft, methods="POST", posts=lambda w: [{"file": SimpleUploadedFile("x.png", PNG, content_type="image/png")}]
    ),
    # Converts what is posted; reads nothing stored.
    "outgoing:convert": own(methods="POST", posts=lambda w: [{"html": "<b>bob's</b>"}, {"text": "bob's"}]),
    "outgoing:reply": obj(
        _message, methods="POST", posts=lambda w: [{"kind": "reply"}, {"kind": "reply_all"}, {"kind": "forward"}]
    ),
    "outgoing:drafts": own(),
    "outgoing:outbox": own(),
    "outgoing:accounts": own(),
    "outgoing:settings": obj(_account, methods="GET POST", posts=_smtp_posts),
    "outgoing:smtp_suggest": obj(_account),
    "outgoing:identity_add": obj(_account, methods="GET POST", posts=_identity_posts),
    "outgoing:identity": obj(
        lambda w: {"account_id": w.account.id, "identity_id": w.alias.id}, methods="GET POST", posts=_identity_posts
    ),
    "outgoing:identity_delete": obj(lambda w: {"identity_id": w.alias.id}, methods="POST"),
    # The address book (contacts/): the user's own contacts, suggestions from them only, vCard in and out.
    "contacts:list": own(queries=lambda w: [{}, {"q": "alice"}, {"q": "secret", "order": "name"}]),
    "contacts:add": own(methods="GET POST", posts=_contact_posts),
    "contacts:detail": obj(_contact),
    "contacts:edit": obj(_contact, methods="GET POST", posts=_contact_posts),
    "contacts:delete": obj(_contact, methods="POST"),
    # Contacts, then addresses from the user's own mail (alice's correspondent is news@alice-secret.example).
    "contacts:suggest": own(
        queries=lambda w: [{"q": "alice"}, {"q": "secret"}, {"q": "alice-secret-contact@"}, {"q": "news"}]
    ),
    "contacts:import": own(methods="GET POST", posts=_vcard_posts),
    "contacts:export": own(queries=lambda w: [{}, {"version": "3.0"}]),
    "contacts:seed": own(methods="POST"),
    # The signed-in user's own security page, password and sessions (users/).
    "password_change": own(methods="GET POST", posts=_password_posts),
    "users:security": own(),
    "users:twofactor_setup": own(methods="GET POST", posts=lambda w: [{"token": "123456"}]),
    "users:twofactor_disable": own(methods="GET POST", posts=_confirm_posts),
    "users:backup_codes": own(methods="GET POST", posts=_confirm_posts),
    "users:end_session": obj(lambda w: {"session_id": w.session_id}, methods="POST"),
    "users:end_other_sessions": own(methods="POST"),
    "users:delete_account": own(methods="GET POST", posts=_confirm_posts),
    # Invitations are the site's: for holders of the permission only; everyone else gets 403.
    "users:invitations": operator(
        operators.MANAGE_INVITATIONS, methods="GET POST", posts=lambda w: [{"email": "", "days": "3"}]
    ),
    "users:revoke_invitation": operator(
        operators.MANAGE_INVITATIONS, lambda w: {"invitation_id": w.invitation.id}, methods="POST"
    ),
    # New-mail notifications (push/): this browser's subscription, the user's choice, one browser of theirs.
    "push:subscribe": own(methods="POST", posts=_push_posts),
    "push:unsubscribe": own(methods="POST", posts=lambda w: [{"endpoint": ALICE_PUSH_ENDPOINT}]),
    "push:content": own(methods="POST", posts=lambda w: [{"content": "count"}]),
    "push:remove": obj(lambda w: {"subscription_id": w.push_subscription.id}, methods="POST"),
}


def uid(user) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


def _no_args(w: World) -> dict:
    return {}


# Work without logging in (anonymous visitors are not sent to the login page), with the arguments a
# visitor has: links from e-mail are forged (a visitor without the e-mail); an invitation link is
# handed out, so its real token is used.
_PUBLIC_PAGES = [
    "healthz", "readyz", "metrics", "first_run", "login", "login_otp", "logout", "admin:login", "admin:logout",
    "admin/login/",  # the admin's sign-in: sends everyone to the one sign-in page (with its second factor)
    "password_reset", "password_reset_done", "password_reset_complete",
    "users:signup", "users:signup_sent", "users:resend",
    "set_language",  # Django's: the language cookie, for visitors too (POST with CSRF)
    # The installable app's files, the same for everyone: browsers fetch the manifest without cookies.
    "push:service_worker", "push:manifest", "push:offline",
]  # fmt: skip
PUBLIC: dict[str, Builder] = {
    **dict.fromkeys(_PUBLIC_PAGES, _no_args),
    "password_reset_confirm": lambda w: {"uidb64": uid(w.alice), "token": "cz1xyz-0123456789abcdef0123"},
    "users:verify": lambda w: {"uidb64": uid(w.newcomer), "token": "cz1xyz-0123456789abcdef0123"},
    "users:invitation": lambda w: {"token": w.invitation_token},
}


def is_admin(key: str) -> bool:
    """Django's admin: staff only, checked by the admin site itself for every one of its URLs."""
    return key.startswith(("admin:", "admin/"))


# --- Walking the URL configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # "namespace:name", or the route text for unnamed patterns
    route: str  # the full route text, for messages and unnamed patterns
    named: bool
    view: Callable | None = None  # the view function the pattern calls


def routes() -> Iterator[Route]:
    def walk(patterns, prefix: str, namespace: str | None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                if pattern.name:
                    key = f"{namespace}:{pattern.name}" if namespace else pattern.name
                    yield Route(key, route, True, pattern.callback)
                else:
                    yield Route(route, route, False, pattern.callback)

    yield from walk(get_resolver().url_patterns, "", None)


_PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def url_for(route: Route, kwargs: dict) -> str:
    if route.named:
        return reverse(route.key, kwargs=kwargs)
    # Unnamed (admin) patterns: fill each parameter in the route text.
    path = _PARAM.sub(lambda m: str(kwargs.get(m.group(1) or m.group(2), "1")), route.route)
    return "/" + path.replace("^", "").replace("$", "")


def admin_kwargs(route: Route, w: World) -> dict:
    names = [m.group(1) or m.group(2) for m in _PARAM.finditer(route.route)]
    values = {"app_label": "accounts", "url": "nothing-here/"}
    return {name: values.get(name, str(w.account.id)) for name in names}


# --- Whose rows are whose ----------------------------------------------------------------------


def _owner_lookup(model) -> str | None:
    """How rows of ``model`` lead to the user who owns them."""
    if model._meta.label in OWNER_FIELDS:
        return OWNER_FIELDS[model._meta.label]
    names = {f.name for f in model._meta.get_fields()}
    for lookup, first in (("owner", "owner"), ("user", "user"), ("account__owner", "account"),
                          ("message__owner", "message"), ("device__user", "device")):  # fmt: skip
        if first in names:
            return lookup
    return None


# Rows whose owner is named otherwise. Audit events are the actor's: requests of bob's write
# events of his, and none may be written in alice's name.
OWNER_FIELDS = {"users.AuditEvent": "actor"}

# Rows that belong to the site, not to a user (staff edit them in the admin). No request of a
# user who is not staff may change them: the snapshot holds them too.
SITE_WIDE = {"oauth.ProviderCredentials", "users.Invitation"}

# Rows of background work that belong to nobody: files released by deletions (their content may be
# shared between users, and the rows that referenced them are gone). Any request may add some; the
# sweep frees only what no row of anyone's references, so they cannot touch another user's mail.
# The Inbox tabs' backfill is one row for all mail stored before tabs.
# Marks of damaged files likewise (content shared by users): a page marks only a file it found damaged.
OWNERLESS = {"mailbox.FileToFree", "mailbox.DamagedFile", "spam.ScanHour", "spam.ServiceHealth", "mailbox.TabBackfill"}

# Fields compared of rows that change as their owner uses them: a session's data and expiry are
# written back by the user's own requests; which sessions the user has is what nobody else may change.
SNAPSHOT_FIELDS = {"users.Session": ("session_key", "user_id", "created_at")}

# The apps whose rows belong to users (django_otp's: the second-factor devices and backup codes).
OWNED_APPS = ("accounts", "mailbox", "oauth", "outgoing", "unsubscribe", "users", "otp_totp", "otp_static")
OWNED_APPS = (
    "accounts", "mailbox", "oauth", "outgoing", "users", "otp_totp", "otp_static", "push", "contacts", "spam",
)  # fmt: skip


def owned_models() -> list[tuple[type[models.Model], str]]:
    found = []
    for app in OWNED_APPS:
        for model in apps.get_app_config(app).get_models():
            if model._meta.label in SITE_WIDE | OWNERLESS:
                continue
            lookup = _owner_lookup(model)
            assert lookup, f"{model.__name__}: tell tests/urlwalk.py how its rows lead to their owner"
            found.append((model, lookup))
    return found


def snapshot(user) -> dict:
    """Every row of ``user``'s, field by field (the user row itself included), and the site-wide rows."""
    rows = {"user": list(get_user_model().objects.filter(id=user.id).values())}
    for model, lookup in owned_models():
        fields = SNAPSHOT_FIELDS.get(model._meta.label, ())
        rows[model._meta.label] = list(model.objects.filter(**{lookup: user}).order_by("pk").values(*fields))
    for label in sorted(SITE_WIDE):
        rows[label] = list(apps.get_model(label).objects.order_by("pk").values())
    return rows


def cross_owner_rows(user) -> list[str]:
    """Rows of ``user``'s that point at another user's objects (e.g. a rule on someone else's account)."""
    found = []
    for model, lookup in owned_models():
        for relation in model._meta.get_fields():
            if not (relation.many_to_one and relation.concrete) or relation.name == lookup.split("__")[0]:
                continue
            target_lookup = _owner_lookup(relation.related_model)
            if target_lookup is None or relation.related_model is get_user_model():
                continue
            rows = model.objects.filter(**{lookup: user}).exclude(**{f"{relation.name}__{target_lookup}": user})
            rows = rows.exclude(**{f"{relation.name}__isnull": True})
            found += [f"{model.__name__} {pk} → {relation.name}" for pk in rows.values_list("pk", flat=True)]
    return found
