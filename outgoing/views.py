from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import MailAccount
from mailbox.models import Folder, Message

from . import addresses, compose, presets, send, services
from .forms import ComposeForm, SmtpSettingsForm
from .models import OutgoingAttachment, OutgoingMessage, OutgoingState, SmtpSettings

LIST_FIELDS = ("id", "subject", "to", "cc", "bcc", "state", "error", "attempts", "updated_at", "account_id", "kind")


def _own_outgoing(request: HttpRequest, outgoing_id: int) -> OutgoingMessage:
    return get_object_or_404(
        OutgoingMessage.objects.defer("raw").select_related("account"), id=outgoing_id, owner=request.user
    )


def _wants_json(request: HttpRequest) -> bool:
    return request.POST.get("action") == "autosave"


@login_required
def compose_message(request: HttpRequest, outgoing_id: int | None = None) -> HttpResponse:
    """Write a new message or edit a draft: save (also automatically, by script) or send."""
    accounts = send.sendable_accounts(request.user)
    outgoing = _own_outgoing(request, outgoing_id) if outgoing_id is not None else None
    if outgoing is not None and outgoing.state not in send.EDITABLE:
        messages.info(request, _("This message is already being sent or was sent."))
        return redirect("outgoing:outbox" if outgoing.state != OutgoingState.SENT else "mailbox:inbox")
    if not accounts:
        return redirect("outgoing:accounts")
    existing = list(outgoing.attachments.only("id", "filename", "content_type", "size")) if outgoing else []
    form_kwargs = {"accounts": accounts, "attachment_ids": [a.id for a in existing]}
    status = 200
    if request.method == "POST":
        form = ComposeForm(request.POST, request.FILES, **form_kwargs)
        action = request.POST.get("action", "save")
        if form.is_valid():
            data = form.cleaned_data
            try:
                outgoing = send.save_draft(
                    request.user,
                    outgoing,
                    account=data["account"],
                    to=data["to"],
                    cc=data["cc"],
                    bcc=data["bcc"],
                    subject=data["subject"],
                    body=data["body"],
                    add=[(f.name, f.content_type, f.read()) for f in data["attachments"]],
                    remove=data["remove"],
                )
                if action == "send":
                    send.queue(request.user, outgoing.id)
                    messages.success(request, _("Your message is being sent."))
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
        status = 400
        if outgoing is not None:  # saved (with any new files), then refused: keep editing the draft
            existing = list(outgoing.attachments.only("id", "filename", "content_type", "size"))
    else:
        form = ComposeForm(initial=_initial(request, outgoing, accounts), **form_kwargs)
    context = {
        "form": form,
        "outgoing": outgoing,
        "attachments": existing,
        "max_send_bytes": settings.WEBPOP_MAX_SEND_BYTES,
        "signatures": {a.id: compose.signature_block(a.smtp.signature) for a in accounts},
        "counts": _counts(request.user.id),
    }
    return render(request, "outgoing/compose.html", context, status=status)


def _initial(request: HttpRequest, outgoing: OutgoingMessage | None, accounts: list[MailAccount]) -> dict:
    if outgoing is not None:
        fields = ("to", "cc", "bcc", "subject", "body")
        return {"account": outgoing.account_id, **{name: getattr(outgoing, name) for name in fields}}
    account = accounts[0]
    wanted = request.GET.get("account", "")
    for candidate in accounts:
        if wanted.isdigit() and candidate.id == int(wanted):
            account = candidate
    # ?to= from a link on an address; checked like everything else when sent.
    return {"account": account.id, "to": request.GET.get("to", "")[:2000], "body": _signature(account)}


def _signature(account: MailAccount) -> str:
    block = compose.signature_block(account.smtp.signature)
    return f"\n\n{block.rstrip()}\n" if block else ""


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


@login_required
@require_POST
def reply(request: HttpRequest, message_id: int) -> HttpResponse:
    """Start a reply, reply all or forward of one of the user's messages, as a draft."""
    message = get_object_or_404(
        Message.objects.select_related("account").exclude(folder=Folder.PURGED), id=message_id, owner=request.user
    )
    kind = request.POST.get("kind", OutgoingMessage.Kind.REPLY)
    if kind not in {OutgoingMessage.Kind.REPLY, OutgoingMessage.Kind.REPLY_ALL, OutgoingMessage.Kind.FORWARD}:
        raise Http404
    try:
        outgoing = send.start_reply(request.user, message, kind)
    except OSError:
        messages.error(request, _("The stored copy of this message cannot be read."))
        return redirect("mailbox:message", message.id)
    except send.SendRefused as exc:
        messages.error(request, str(exc))
        return redirect("mailbox:message", message.id)
    return redirect("outgoing:edit", outgoing.id)


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
        send.queue(request.user, outgoing.id)
        messages.success(request, _("Sending again."))
    except compose.ComposeError as exc:
        messages.error(request, _("Fix the message first: %(error)s") % {"error": exc})
        return redirect("outgoing:edit", outgoing.id)
    except send.SendRefused as exc:
        messages.error(request, str(exc))
    return redirect("outgoing:outbox")


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


@login_required
def attachment(request: HttpRequest, outgoing_id: int, attachment_id: int) -> HttpResponse:
    row = get_object_or_404(OutgoingAttachment, id=attachment_id, message_id=outgoing_id, message__owner=request.user)
    response = HttpResponse(bytes(row.data), content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, row.filename)
    response["Content-Security-Policy"] = "sandbox"
    return response


@login_required
@require_GET
def address_suggestions(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"results": addresses.suggest(request.user.id, request.GET.get("q", ""))})


@login_required
def accounts(request: HttpRequest) -> HttpResponse:
    """Each account and whether (and as whom) it sends, with a link to its sending settings."""
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
                report = services.test(services.unsaved(account, form.cleaned_data, existing))
                status = 200 if report.ok else 400
            else:
                services.save(account, form.cleaned_data)
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
    }
    return render(request, "outgoing/settings.html", context, status=status)


def _settings_initial(account: MailAccount, existing: SmtpSettings | None) -> dict:
    if existing is not None:
        return {name: getattr(existing, name) for name in services.FIELDS}
    initial = {"from_email": account.username if "@" in account.username else ""}
    found = presets.for_account(account)
    if found:
        key, preset = found
        initial.update(preset=key, host=preset.host, port=preset.port, security=preset.security)
    return initial
