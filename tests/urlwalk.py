"""Every URL pattern of the project, with arguments built from alice's objects.

Used by tests/test_isolation.py (bob and anonymous visitors against alice's
objects) and tests/test_security_headers.py (headers on every page).

Adding a URL: add ONE line to ``COVERAGE`` below, naming how its arguments come
from alice's objects (``World``) and which methods the view accepts:

    "app:name": obj(lambda w: {"thing_id": w.thing.id}, methods="GET"),   # one object of alice's
    "app:name": own(),                                                   # the user's own list / form
    "app:name": staff(),                                                 # a page for staff only

or add it to ``PUBLIC`` when it is meant to work without logging in (with the
arguments a visitor would use: a link from an e-mail, or a forged one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.views_prefs import save_preferences
from mailbox import actions, folders, rules
from mailbox.models import FetchFailure, Message, RemoteImagePreference, Rule, UserFolder
from mailbox.views_html import asset_token, ensure_rendered
from oauth.models import Grant
from outgoing import send
from outgoing import services as outgoing_services
from outgoing.models import OutgoingAttachment, OutgoingMessage
from tests.factories import build_message, make_account, store_message
from users import services as user_services
from users import signup, twofactor
from users.models import Invitation
from users.sessions import SessionStore

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
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
    failed: OutgoingMessage | None = None  # a message of alice's the server refused: in her Outbox
    session_id: str = ""  # one of alice's sessions (the 64-character hash the sessions page names it by)
    invitation: Invitation | None = None  # created by a staff member (site-wide: only staff revoke it)
    invitation_token: str = ""
    newcomer: object = None  # signed up, e-mail address not yet confirmed
    authenticator: TOTPDevice | None = None  # alice signs in with a second factor (and has backup codes)


def _alices_message() -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "Newsletter <news@alice-secret.example>"
    msg["To"] = "alice@example.org"
    msg["Subject"] = "Alice-Secret-Subject"
    msg["Date"] = "Thu, 26 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = "<alice-secret@alice-secret.example>"
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
    outgoing_services.save(
        account,
        _smtp_form(
            host="smtp.alice-secret-host.example", username="alice-secret-smtp-user",
            password="alice-secret-smtp-password", from_email="alice@alice-secret-host.example",
            signature="alice-secret-signature",
        ),
    )  # fmt: skip
    outgoing_services.save(bob_account, _smtp_form(host="smtp.bob.example", from_email="bob@bob.example"))
    draft = send.save_draft(
        alice, None, account=account, to="Friend <friend@example.net>", subject="Alice-Secret-Subject in a draft",
        body="alice-secret-body of a draft", add=[("alice-secret-draft-notes.txt", "text/plain", b"notes")],
    )  # fmt: skip
    failed = send.save_draft(
        alice, None, account=account, to="friend@example.net", subject="Alice-Secret-Subject not sent",
        body="alice-secret-body the server refused",
    )  # fmt: skip
    send.queue(alice, failed.id)
    send.give_up(failed.id)  # as after the last retry
    staff = get_user_model().objects.create_user("staff-secret-inviter", "staff@example.org", is_staff=True)
    invitation, invitation_token = signup.create_invitation(staff)
    newcomer = signup.register(username="newcomer", email="newcomer@example.net", password="newcomer-Password-1")
    authenticator = TOTPDevice.objects.create(user=alice, name="Alice's phone", confirmed=True)
    twofactor.new_backup_codes(alice)
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
        draft_attachment=draft.attachments.get(),
        failed=OutgoingMessage.objects.get(id=failed.id),
        session_id=_alices_session(alice),
        invitation=invitation,
        invitation_token=invitation_token,
        newcomer=newcomer,
        authenticator=authenticator,
    )


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
    return user_services.session_id(session.session_key)


# --- Coverage ---------------------------------------------------------------------------------

Builder = Callable[[World], dict]


@dataclass(frozen=True)
class Case:
    # "object": names one of alice's objects; "own": the user's own list or form; "staff": a page for staff
    # only (404 for everyone else); "token": a signed URL
    kind: str
    args: Builder = field(default=lambda w: {})
    methods: str = "GET"  # what the view accepts: "GET", "POST" or "GET POST"
    queries: Callable[[World], list[dict]] = field(default=lambda w: [{}])
    posts: Callable[[World], list[dict]] = field(default=lambda w: [{}])


def obj(args: Builder, *, methods: str = "GET", queries=None, posts=None) -> Case:
    return Case("object", args, methods, queries or (lambda w: [{}]), posts or (lambda w: [{}]))


def own(*, args: Builder | None = None, methods: str = "GET", queries=None, posts=None) -> Case:
    return Case("own", args or (lambda w: {}), methods, queries or (lambda w: [{}]), posts or (lambda w: [{}]))


def staff(*, methods: str = "GET", queries=None, posts=None) -> Case:
    return Case("staff", lambda w: {}, methods, queries or (lambda w: [{}]), posts or (lambda w: [{}]))


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
    return [{"action": a, "ids": ids} for a in actions_] + [{"action": "move", "folder": w.folder.slug, "ids": ids}]


def _draft(w: World) -> dict:
    return {"outgoing_id": w.draft.id}


def _compose(account_id: int, **extra) -> dict:
    return {"account": account_id, "to": "bob@bob.example", "subject": "Bob was here", "body": "hi", **extra}


def _compose_posts(w: World) -> list[dict]:
    # Sending from alice's account, or dropping her draft's file from a draft of bob's own.
    return [
        _compose(w.account.id),
        _compose(w.account.id, action="send"),
        _compose(w.bob_account.id, remove=[w.draft_attachment.id]),
        _compose(w.account.id, action="autosave"),
    ]


def _edit_posts(w: World) -> list[dict]:
    # Overwriting alice's draft, moving it to bob's account, sending it, or removing its file.
    return [
        _compose(w.account.id),
        _compose(w.bob_account.id, action="send"),
        _compose(w.bob_account.id, action="autosave", remove=[w.draft_attachment.id]),
    ]


def _smtp_posts(w: World) -> list[dict]:
    form = {"host": "smtp.bob.example", "security": "starttls", "port": "587", "auth": "same",
            "from_email": "bob@bob.example", "from_name": "Bob"}  # fmt: skip
    return [{**form, "action": "save"}, {**form, "action": "test"}]


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


COVERAGE: dict[str, Case] = {
    "accounts:list": own(),
    "accounts:add": own(methods="GET POST", posts=lambda w: [_account_form(w)]),
    "accounts:suggest": own(queries=lambda w: [{"address": "me@fastmail.com"}]),
    "accounts:preferences": own(methods="GET POST", posts=lambda w: [{"time_zone": "Asia/Tokyo"}]),
    "accounts:detail": obj(_account),
    "accounts:check_now": obj(_account, methods="POST"),
    "accounts:edit": obj(_account, methods="GET POST", posts=lambda w: [_account_form(w)]),
    "accounts:toggle": obj(_account, methods="POST"),
    "accounts:delete": obj(_account, methods="GET POST"),
    "accounts:status": obj(_account),
    "accounts:failure_retry": obj(_failure, methods="POST"),
    "accounts:failure_raw": obj(_failure),
    "mailbox:inbox": own(queries=lambda w: [{}, {"account": w.account.id}, {"q": "secret"}]),
    "mailbox:folder": own(args=lambda w: {"folder": w.folder.slug}, queries=lambda w: [{}, {"q": "in:trash"}]),
    "mailbox:bulk": own(methods="POST", posts=_bulk),
    "mailbox:undo": own(methods="POST"),
    "mailbox:counts": own(),
    "mailbox:empty_trash": own(methods="POST"),
    "mailbox:source": obj(_message),
    "mailbox:export": own(queries=lambda w: [{"folder": "inbox"}, {"folder": "trash"}, {"q": "secret"}]),
    "mailbox:message": obj(_message),
    "mailbox:delete": obj(_message, methods="POST"),
    "mailbox:raw": obj(_message),
    "mailbox:attachment": obj(lambda w: {"attachment_id": w.attachment.id}),
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
    "oauth:start": own(args=lambda w: {"provider": "google"}, methods="POST"),
    "oauth:callback": own(queries=lambda w: [{}, {"state": "forged", "code": "x"}]),
    "oauth:confirm": own(methods="GET POST"),
    "oauth:reconnect": obj(lambda w: {"account_id": w.oauth_account.id}, methods="POST"),
    # The operators' dashboard: staff only (they act on every user's objects); everyone else gets 404.
    "ops:dashboard": staff(),
    "ops:accounts": staff(queries=lambda w: [{}, {"health": "error"}]),
    "ops:users": staff(),
    "ops:account_sync": obj(_account, methods="POST"),
    "ops:account_pause": obj(_account, methods="POST"),
    "ops:user_active": obj(lambda w: {"user_id": w.alice.id}, methods="POST"),
    "ops:failure_retry": obj(lambda w: {"failure_id": w.failure.id}, methods="POST"),
    # Writing and sending mail (outgoing/).
    "outgoing:compose": own(
        methods="GET POST",
        queries=lambda w: [{}, {"account": w.account.id}, {"to": "friend@example.net"}],
        posts=_compose_posts,
    ),
    "outgoing:edit": obj(_draft, methods="GET POST", posts=_edit_posts),
    "outgoing:retry": obj(lambda w: {"outgoing_id": w.failed.id}, methods="POST"),
    "outgoing:discard": obj(_draft, methods="POST"),
    "outgoing:attachment": obj(lambda w: {"outgoing_id": w.draft.id, "attachment_id": w.draft_attachment.id}),
    "outgoing:reply": obj(
        _message, methods="POST", posts=lambda w: [{"kind": "reply"}, {"kind": "reply_all"}, {"kind": "forward"}]
    ),
    "outgoing:drafts": own(),
    "outgoing:outbox": own(),
    # Completes addresses from the user's own mail only (alice's correspondent is news@alice-secret.example).
    "outgoing:addresses": own(queries=lambda w: [{"q": "news"}, {"q": "alice"}, {"q": "friend"}]),
    "outgoing:accounts": own(),
    "outgoing:settings": obj(_account, methods="GET POST", posts=_smtp_posts),
    # The signed-in user's own security page, password and sessions (users/).
    "password_change": own(methods="GET POST", posts=_password_posts),
    "users:security": own(),
    "users:twofactor_setup": own(methods="GET POST", posts=lambda w: [{"token": "123456"}]),
    "users:twofactor_disable": own(methods="GET POST", posts=_confirm_posts),
    "users:backup_codes": own(methods="GET POST", posts=_confirm_posts),
    "users:end_session": obj(lambda w: {"session_id": w.session_id}, methods="POST"),
    "users:end_other_sessions": own(methods="POST"),
    "users:delete_account": own(methods="GET POST", posts=_confirm_posts),
    # Staff only: invitations are the site's; everyone else gets 404.
    "users:invitations": staff(methods="GET POST", posts=lambda w: [{"email": "", "days": "3"}]),
    "users:revoke_invitation": obj(lambda w: {"invitation_id": w.invitation.id}, methods="POST"),
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
                    yield Route(key, route, True)
                else:
                    yield Route(route, route, False)

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

# Fields compared of rows that change as their owner uses them: a session's data and expiry are
# written back by the user's own requests; which sessions the user has is what nobody else may change.
SNAPSHOT_FIELDS = {"users.Session": ("session_key", "user_id", "created_at")}

# The apps whose rows belong to users (django_otp's: the second-factor devices and backup codes).
OWNED_APPS = ("accounts", "mailbox", "oauth", "outgoing", "users", "otp_totp", "otp_static")


def owned_models() -> list[tuple[type[models.Model], str]]:
    found = []
    for app in OWNED_APPS:
        for model in apps.get_app_config(app).get_models():
            if model._meta.label in SITE_WIDE:
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
