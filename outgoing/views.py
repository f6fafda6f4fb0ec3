from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts import autoconfig
from accounts.models import MailAccount
from mailbox import damage
from mailbox.models import Attachment, Folder, Message
from webpop.lib import cspolicy, ratelimit

from . import actions, compose, identities, presets, rich, richtext, send
from .forms import ComposeForm, IdentityForm, SendingSetupForm, SmtpSettingsForm
from .models import Identity, OutgoingAttachment, OutgoingMessage, OutgoingState, SmtpSettings
from .templatetags import undo_send

LIST_FIELDS = ("id", "subject", "to", "cc", "bcc", "state", "error", "attempts", "updated_at", "account_id", "kind")


def _own_outgoing(request: HttpRequest, outgoing_id: int) -> OutgoingMessage:
    return get_object_or_404(
        OutgoingMessage.objects.defer("raw").select_related("account"), id=outgoing_id, owner=request.user
    )


def _wants_json(request: HttpRequest) -> bool:
    return request.POST.get("action") == "autosave"


@login_required
def compose_message(request: HttpRequest, outgoing_id: int | None = None) -> HttpResponse:
    """Write a new message or edit a draft: save (also automatically, by script) or send.

    The first message from an account that cannot send yet carries the account's sending settings beside the
    text (``setup``): Test tries them in place, Send saves them and sends. Whatever happens, what was typed stays.
    """
    if request.method == "GET":  # OAuth2 accounts send with their grant: no setup for them
        actions.configure_automatic(request.user)
    accounts = send.sendable_accounts(request.user)
    outgoing = _own_outgoing(request, outgoing_id) if outgoing_id is not None else None
    if outgoing is not None and outgoing.state not in send.EDITABLE:
        messages.info(request, _("This message is already being sent or was sent."))
        return redirect("outgoing:outbox" if outgoing.state != OutgoingState.SENT else "mailbox:inbox")
    setup_account = _setup_account(request, outgoing, accounts)
    if not accounts and setup_account is None:  # no account at all
        return redirect("outgoing:accounts")
    existing = _files(outgoing) if outgoing else []
    own_identities = identities.of_user(request.user)
    form_kwargs = {
        "accounts": accounts + ([setup_account] if setup_account else []),
        "identities": own_identities,
        "attachment_ids": [a.id for a in existing],
        "choose_identity": setup_account is None,
    }
    form_kwargs["rich"] = bool(outgoing.body_html) if outgoing else rich.preferred_format(request.user.id) == "rich"
    page = {"status": 200, "setup": None, "report": None}
    if request.method == "POST":
        form = ComposeForm(request.POST, request.FILES, **form_kwargs)
        action = request.POST.get("action", "save")
        if setup_account is not None:
            page["setup"] = SendingSetupForm(request.POST)
            if action in ("test", "send"):
                return _setup_post(request, form, page["setup"], outgoing, setup_account, action == "send")
        if form.is_valid():
            try:
                outgoing = _save_draft(request, form, outgoing)
                if action == "send":
                    outgoing = actions.queue(request.user, outgoing.id)
                    _announce_send(request, outgoing)
                    return redirect(_after_send(outgoing))
            except compose.ComposeError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            except send.SendRefused as exc:
                form.add_error(None, str(exc))
            else:
                if _wants_json(request):
                    return JsonResponse({"id": outgoing.id, "url": reverse("outgoing:edit", args=[outgoing.id])})
                messages.success(request, _("Draft saved."))
                return redirect("outgoing:edit", outgoing.id)
        if _wants_json(request):
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        page["status"] = 400
    else:
        form = ComposeForm(initial=_initial(request, outgoing, accounts, own_identities, setup_account), **form_kwargs)
    return _compose_page(request, form, outgoing, setup_account, **page)


def _compose_page(
    request: HttpRequest,
    form: ComposeForm,
    outgoing: OutgoingMessage | None,
    setup_account: MailAccount | None,
    *,
    setup: SendingSetupForm | None = None,
    report: actions.TestReport | None = None,
    status: int = 200,
) -> HttpResponse:
    own_identities = identities.of_user(request.user)
    context = {
        "form": form,
        "outgoing": outgoing,
        "attachments": _files(outgoing) if outgoing else [],
        "max_send_bytes": settings.WEBPOP_MAX_SEND_BYTES,
        # For the page's script: the signature each From choice brings (swapped while the user has not edited it).
        "signatures": {i.id: compose.signature_block(i.signature) for i in own_identities},
        "signatures_html": {i.id: compose.signature_html_block(i.signature_html, i.signature) for i in own_identities},
        "counts": _counts(request.user.id),
    }
    if setup_account is not None:
        context.update(_setup_context(request, setup_account, setup, report))
    response = render(request, "outgoing/compose.html", context, status=status)
    if setup_account is not None:
        response["Cache-Control"] = "private, no-store"  # a password typed into the setup may be on it
    return response


def _save_draft(request: HttpRequest, form: ComposeForm, outgoing: OutgoingMessage | None) -> OutgoingMessage:
    data = form.cleaned_data
    return send.save_draft(
        request.user,
        outgoing,
        account=data["account"],
        to=data["to"],
        cc=data["cc"],
        bcc=data["bcc"],
        subject=data["subject"],
        body=data["body"],
        body_html=data["body_html"] if data["format"] == "rich" else None,
        add=[(f.name, f.content_type, f.read()) for f in data["attachments"]],
        remove=data["remove"],
        compose_key=data["compose_key"] if outgoing is None else "",
        identity=data["identity"],
    )


# --- The first message from an account: its sending settings in the editor ----------------------------------


def _setup_account(
    request: HttpRequest, outgoing: OutgoingMessage | None, sendable: list[MailAccount]
) -> MailAccount | None:
    """The account this editor sets sending up for: the message's, when that account cannot send yet.

    A form names its account (hidden field); a new message the one asked for (?account=), else, when no
    account can send, the user's first. None: the message goes out through settings that exist.
    """
    unconfigured = MailAccount.objects.filter(owner=request.user, smtp__isnull=True)
    named = request.POST.get("account", "") if request.method == "POST" else ""
    if named.isdigit() and "identity" not in request.POST:
        return unconfigured.filter(id=int(named)).first()
    if outgoing is not None:
        return unconfigured.filter(id=outgoing.account_id).first()
    wanted = request.GET.get("account", "")
    found = unconfigured.filter(id=int(wanted)).first() if wanted.isdigit() else None
    if found is None and not sendable:
        found = unconfigured.order_by("id").first()
    return found


def _setup_context(
    request: HttpRequest, account: MailAccount, setup: SendingSetupForm | None, report: actions.TestReport | None
) -> dict:
    first = {**presets.initial_for(account), "from_name": request.user.get_full_name()}
    if hasattr(account, "oauth_grant"):  # signs in with a grant that does not cover sending: a login of its own
        first["auth"] = "separate"
    address = account.username if "@" in account.username else ""
    # The domain's own records are asked by the page's script, only when no preset knows the provider.
    lookup = first["source"] == "guess" and autoconfig.domain_of(address) is not None
    return {
        "setup": setup or SendingSetupForm(initial=first),
        "setup_account": account,
        "setup_source": first,
        "setup_domain": autoconfig.domain_of(address) if lookup else "",
        "setup_suggest_url": reverse("outgoing:smtp_suggest", args=[account.id]) if lookup else "",
        "setup_oauth": hasattr(account, "oauth_grant"),
        "report": report,
        # A new message may start from another account instead (one that sends, or another to set up).
        "other_accounts": list(MailAccount.objects.filter(owner=request.user).exclude(id=account.id)[:20]),
    }


def _setup_post(
    request: HttpRequest,
    form: ComposeForm,
    setup: SendingSetupForm,
    outgoing: OutgoingMessage | None,
    account: MailAccount,
    sending: bool,
) -> HttpResponse:
    """Test or Send with the settings beside the message. The draft is saved first (with the files chosen), so
    nothing typed is lost, whatever the test says; without script the page comes back with all of it."""
    report = None
    if form.is_valid():
        try:
            outgoing = _save_draft(request, form, outgoing)
        except send.SendRefused as exc:  # e.g. files over the limit
            form.add_error(None, str(exc))
    ready = setup.is_valid() and not form.errors and (outgoing is not None or not sending)
    wait = _test_limit(request) if ready else None
    if wait:
        report = actions.TestReport(False, _rate_limited_text(wait), "rate_limited")
    elif ready and not sending:
        report = actions.test(actions.unsaved(account, setup.cleaned_data, None))
    elif ready:
        try:
            report, queued = actions.first_send(request.user, outgoing, setup.cleaned_data)
        except compose.ComposeError as exc:  # the message itself: nothing was saved or tried
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        except actions.NotQueued as exc:
            messages.success(request, _("Sending settings saved."))
            messages.error(request, str(exc))
            return redirect("outgoing:edit", outgoing.id)
        else:
            if queued is not None:
                messages.success(request, _("Sending settings saved."))
                _announce_send(request, queued)
                return redirect(_after_send(queued))
    if not sending and request.headers.get("X-Requested-With") == "fetch":
        return JsonResponse(
            {
                "ok": bool(report and report.ok),
                "headline": report.headline if report else "",
                "detail": report.message if report else "",
                "url": reverse("outgoing:edit", args=[outgoing.id]) if outgoing else "",
                "invalid": report is None,  # errors to show next to their fields: the page posts itself
            },
            status=400 if report is None else 429 if report.error_class == "rate_limited" else 200,  # a failed test too
        )
    status = 200 if report and report.ok and not sending else 400
    return _compose_page(request, form, outgoing, account, setup=setup, report=report, status=status)


def _test_limit(request: HttpRequest) -> int | None:
    """Seconds to wait before the next connection test, or None (each test connects to a host the user chose)."""
    limit = settings.WEBPOP_RATELIMIT_TEST_CONNECTION
    return ratelimit.limit_request(request, "test-connection", per_user=limit, per_ip=3 * limit)


def _rate_limited_text(wait: int) -> str:
    return _("Too many connection tests in a short time; try again in %(seconds)d seconds.") % {"seconds": wait}


@login_required
def smtp_suggest(request: HttpRequest, account_id: int) -> JsonResponse:
    """The SMTP servers the account's mail domain publishes (SRV records, autoconfig), for the first message's
    setup; asked by the page's script, so a slow domain never holds up the editor."""
    account = get_object_or_404(MailAccount, id=account_id, owner=request.user)
    limit = settings.WEBPOP_RATELIMIT_SUGGEST
    wait = ratelimit.limit_request(request, "suggest", per_user=limit, per_ip=3 * limit)
    if wait:
        error = _("Too many lookups; try again in %(seconds)d seconds.") % {"seconds": wait}
        response = JsonResponse({"suggestions": [], "error": error}, status=429)
        response["Retry-After"] = str(wait)
        return response
    address = account.username if "@" in account.username else ""
    found = autoconfig.suggest_smtp(address) if address and presets.for_account(account) is None else []
    fields = ("host", "port", "security", "source", "name")
    return JsonResponse({"suggestions": [{name: getattr(s, name) for name in fields} for s in found]})


def _files(outgoing: OutgoingMessage) -> list[OutgoingAttachment]:
    """The files attached (not the pictures in the text)."""
    return list(outgoing.attachments.filter(content_id="").only("id", "filename", "content_type", "size"))


def _main_identity(own_identities: list[Identity], account_id: int) -> Identity | None:
    return next((i for i in own_identities if i.account_id == account_id and i.is_default), None)


def _initial(
    request: HttpRequest,
    outgoing: OutgoingMessage | None,
    accounts: list[MailAccount],
    own_identities: list[Identity],
    setup_account: MailAccount | None = None,
) -> dict:
    if outgoing is not None:
        fields = ("to", "cc", "bcc", "subject", "body")
        identity = outgoing.identity_id or getattr(_main_identity(own_identities, outgoing.account_id), "id", None)
        return {
            "account": outgoing.account_id,
            "identity": identity,
            **{name: getattr(outgoing, name) for name in fields},
            "body_html": rich.editor_html(outgoing) if outgoing.body_html else "",
        }
    compose_key = uuid.uuid4().hex  # this page's saves all reach one row
    account = setup_account or accounts[0]
    wanted = request.GET.get("account", "")
    for candidate in accounts if setup_account is None else []:
        if wanted.isdigit() and candidate.id == int(wanted):
            account = candidate
    # ?to= from a link on an address, ?subject= and ?body= from a list's mailto: unsubscribe link;
    # checked like everything else when sent.
    body = request.GET.get("body", "")[:10000]
    identity = _main_identity(own_identities, account.id)
    start_html = compose.new_html(identity.signature_html if identity else "", _signature_of(account, identity))
    return {
        "compose_key": compose_key,
        "account": account.id,
        "identity": identity.id if identity else None,
        "to": request.GET.get("to", "")[:2000],
        "subject": request.GET.get("subject", "")[:1000],
        "body": body + _signature(account, identity) if body else _signature(account, identity),
        "body_html": richtext.text_to_html(body) + start_html if body else start_html,
    }


def _signature_of(account: MailAccount, identity: Identity | None) -> str:
    return identities.signature_text(identity, account.smtp if _has_smtp(account) else None)


def _signature(account: MailAccount, identity: Identity | None) -> str:
    block = compose.signature_block(_signature_of(account, identity))
    return f"\n\n{block.rstrip()}\n" if block else ""


def _announce_send(request: HttpRequest, outgoing: OutgoingMessage) -> None:
    """The banner after Send: with an Undo while the message waits (see outgoing/templatetags/undo_send.py)."""
    left = (outgoing.next_attempt_at - timezone.now()).total_seconds() if outgoing.next_attempt_at else 0
    if left <= 0:
        messages.success(request, _("Your message is being sent."))
        return
    request.session[undo_send.SESSION_KEY] = outgoing.id
    seconds = round(left)
    messages.success(
        request,
        ngettext("Sending in %(n)d second.", "Sending in %(n)d seconds.", seconds) % {"n": seconds},
        extra_tags="undo-send",
    )


def _after_send(outgoing: OutgoingMessage) -> str:
    if outgoing.source_id:
        return reverse("mailbox:message", args=[outgoing.source_id])
    return reverse("mailbox:folder", args=[Folder.SENT])


def _counts(owner_id: int) -> dict[str, int]:
    rows = OutgoingMessage.objects.filter(owner_id=owner_id)
    return {
        "drafts": rows.filter(state=OutgoingState.DRAFT).count(),
        "outbox": rows.filter(state__in=[OutgoingState.FAILED, OutgoingState.QUEUED, OutgoingState.SENDING]).count(),
    }


REPLY_KINDS = {OutgoingMessage.Kind.REPLY, OutgoingMessage.Kind.REPLY_ALL, OutgoingMessage.Kind.FORWARD}


@login_required
@require_POST
def reply(request: HttpRequest, message_id: int) -> HttpResponse:
    """Start a reply, reply all or forward of one of the user's messages, as a draft, and open it.

    One draft each: the button pressed again, a form resubmitted by a reload, or a second tab open the draft
    already being written (its own URL, which a reload then keeps).
    """
    message = get_object_or_404(
        Message.objects.select_related("account").exclude(folder=Folder.PURGED), id=message_id, owner=request.user
    )
    kind = request.POST.get("kind", OutgoingMessage.Kind.REPLY)
    if kind not in REPLY_KINDS:
        raise Http404
    actions.configure_automatic(request.user)  # an OAuth2 account answers from itself, not from another
    try:
        outgoing = send.start_reply(request.user, message, kind)
    except damage.DamagedFileError as exc:
        damage.mark(exc.relpath, _sha_of(message, exc.relpath), exc.kind)  # the draft's transaction rolled back
        messages.error(request, _damaged_notice(message, exc.relpath))
        return redirect("mailbox:message", message.id)
    except OSError:
        messages.error(request, _("The stored copy of this message cannot be read."))
        return redirect("mailbox:message", message.id)
    except send.SendRefused as exc:
        messages.error(request, str(exc))
        return redirect("mailbox:message", message.id)
    return redirect("outgoing:edit", outgoing.id)


def _sha_of(message: Message, relpath: str) -> str:
    if relpath == message.raw_path:
        return message.sha256
    return (
        Attachment.objects.filter(message=message, stored_path=relpath).values_list("sha256", flat=True).first() or ""
    )


def _damaged_notice(message: Message, relpath: str) -> str:
    if relpath == message.raw_path:
        return _(
            "The original of this message is damaged (its stored file is missing or changed), so it cannot be "
            "quoted or forwarded. The administrator can restore it from a backup or fetch it again."
        )
    name = Attachment.objects.filter(message=message, stored_path=relpath).values_list("filename", flat=True).first()
    return _(
        "The attachment “%(name)s” of this message is damaged (its stored file is missing or changed), so the "
        "message cannot be forwarded with it. The administrator can restore it from a backup."
    ) % {"name": name or _("(no name)")}


@login_required
def drafts(request: HttpRequest) -> HttpResponse:
    rows = (
        OutgoingMessage.objects.filter(owner=request.user, state=OutgoingState.DRAFT)
        .select_related("account")
        .only(*LIST_FIELDS, "account__label", "account__username", "account__host")[:500]
    )
    return render(request, "outgoing/drafts.html", {"rows": rows, "counts": _counts(request.user.id)})


@login_required
def outbox(request: HttpRequest) -> HttpResponse:
    rows = (
        OutgoingMessage.objects.filter(
            owner=request.user, state__in=[OutgoingState.FAILED, OutgoingState.QUEUED, OutgoingState.SENDING]
        )
        .select_related("account")
        .only(*LIST_FIELDS, "account__label", "account__username", "account__host")[:500]
    )
    return render(request, "outgoing/outbox.html", {"rows": rows, "counts": _counts(request.user.id)})


@login_required
@require_POST
def retry(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    outgoing = _own_outgoing(request, outgoing_id)
    try:
        actions.queue(request.user, outgoing.id, delay=0)  # a second try of what the server refused: no Undo window
        messages.success(request, _("Sending again."))
    except compose.ComposeError as exc:
        messages.error(request, _("Fix the message first: %(error)s") % {"error": exc})
        return redirect("outgoing:edit", outgoing.id)
    except send.SendRefused as exc:
        messages.error(request, str(exc))
    return redirect("outgoing:outbox")


@login_required
@require_POST
def undo(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    """The banner's Undo: back to the editor while the message waits; after that, say it is too late."""
    outgoing = _own_outgoing(request, outgoing_id)
    request.session.pop(undo_send.SESSION_KEY, None)
    if actions.undo(request.user, outgoing.id):
        messages.info(request, _("Sending undone. The message is back in the editor."))
        return redirect("outgoing:edit", outgoing.id)
    outgoing.refresh_from_db(fields=["state"])
    if outgoing.state == OutgoingState.DRAFT:  # undone already (a second click, another tab)
        return redirect("outgoing:edit", outgoing.id)
    if outgoing.state == OutgoingState.SENT:
        messages.error(request, _("Too late to undo: the message has already been sent."))
    else:
        messages.error(request, _("Too late to undo: the message is already being sent."))
    return redirect(_after_send(outgoing) if outgoing.state == OutgoingState.SENT else reverse("outgoing:outbox"))


@login_required
@require_POST
def discard(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    outgoing = _own_outgoing(request, outgoing_id)
    was_draft = outgoing.state == OutgoingState.DRAFT
    if send.discard(request.user, outgoing.id):
        messages.success(request, _("Discarded."))
    else:
        messages.error(request, _("This message is being sent and cannot be discarded now."))
    return redirect("outgoing:drafts" if was_draft else "outgoing:outbox")


@cspolicy.policy(cspolicy.SANDBOX)
@login_required
def attachment(request: HttpRequest, outgoing_id: int, attachment_id: int) -> HttpResponse:
    row = get_object_or_404(OutgoingAttachment, id=attachment_id, message_id=outgoing_id, message__owner=request.user)
    response = HttpResponse(bytes(row.data), content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, row.filename)
    return response


@login_required
def accounts(request: HttpRequest) -> HttpResponse:
    """Each account and whether (and as whom) it sends, with a link to its sending settings."""
    actions.configure_automatic(request.user)
    rows = list(MailAccount.objects.filter(owner=request.user).select_related("smtp"))
    configured = [a for a in rows if _has_smtp(a)]
    return render(
        request,
        "outgoing/accounts.html",
        {"accounts": [(a, a.smtp if _has_smtp(a) else None) for a in rows], "ready": bool(configured)},
    )


def _has_smtp(account: MailAccount) -> bool:
    try:
        return account.smtp is not None
    except SmtpSettings.DoesNotExist:
        return False


@login_required
def smtp_settings(request: HttpRequest, account_id: int) -> HttpResponse:
    """An account's sending settings: server, login, identity; "Test" connects and logs in without sending."""
    account = get_object_or_404(MailAccount, id=account_id, owner=request.user)
    existing = SmtpSettings.objects.filter(account=account).first()
    report = None
    status = 200
    if request.method == "POST":
        form = SmtpSettingsForm(request.POST, existing=existing)
        if form.is_valid():
            if request.POST.get("action") == "test":
                report = actions.test(actions.unsaved(account, form.cleaned_data, existing))
                status = 200 if report.ok else 400
            else:
                actions.save(account, form.cleaned_data)
                messages.success(request, _("Sending settings saved."))
                return redirect("outgoing:accounts")
        else:
            status = 400
    else:
        form = SmtpSettingsForm(initial=_settings_initial(account, existing), existing=existing)
    context = {
        "form": form,
        "account": account,
        "existing": existing,
        "report": report,
        "presets": presets.as_data(),
        "identities": identities.of_account(account) if existing else [],
    }
    return render(request, "outgoing/settings.html", context, status=status)


def _settings_initial(account: MailAccount, existing: SmtpSettings | None) -> dict:
    if existing is not None:
        return {name: getattr(existing, name) for name in actions.FIELDS}
    initial = {"from_email": account.username if "@" in account.username else ""}
    found = presets.for_account(account)
    if found:
        key, preset = found
        initial.update(preset=key, host=preset.host, port=preset.port, security=preset.security)
    return initial


@login_required
def identity_edit(request: HttpRequest, account_id: int, identity_id: int | None = None) -> HttpResponse:
    """Add an address the account sends as, or edit one: its name, signature and where the signature goes."""
    account = get_object_or_404(MailAccount, id=account_id, owner=request.user)
    identity = get_object_or_404(Identity, id=identity_id, account=account) if identity_id is not None else None
    if not _has_smtp(account):
        return redirect("outgoing:settings", account.id)
    status = 200
    if request.method == "POST":
        form = IdentityForm(request.POST)
        if form.is_valid():
            try:
                identities.save(request.user, account, identity, form.cleaned_data)
            except identities.IdentityRefused as exc:
                form.add_error("address", str(exc))
            else:
                messages.success(request, _("Sending address saved."))
                return redirect("outgoing:settings", account.id)
        status = 400
    else:
        fields = ("address", "name", "signature", "signature_html", "signature_placement")
        # Rich when it is, else as the user writes (a text signature stays text until switched).
        rich_start = bool(identity and identity.signature_html) or (
            not (identity and identity.signature) and rich.preferred_format(request.user.id) == "rich"
        )
        initial = {name: getattr(identity, name) for name in fields} if identity else None
        form = IdentityForm(initial=initial, rich=rich_start)
    context = {"form": form, "account": account, "identity": identity}
    return render(request, "outgoing/identity.html", context, status=status)


@login_required
@require_POST
def identity_delete(request: HttpRequest, identity_id: int) -> HttpResponse:
    identity = get_object_or_404(Identity, id=identity_id, account__owner=request.user)
    if identities.delete(request.user, identity.id):
        messages.success(request, _("Sending address deleted."))
    else:
        messages.error(request, _("The account's main address cannot be deleted."))
    return redirect("outgoing:settings", identity.account_id)
