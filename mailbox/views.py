from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.models import MailAccount

from . import mime, store, sync
from .models import Attachment, Folder, Message

PAGE_SIZE = 50


@login_required
def inbox(request: HttpRequest, folder: str = Folder.INBOX) -> HttpResponse:
    if folder not in Folder.values:
        raise Http404
    rows = (
        Message.objects.filter(owner=request.user, folder=folder)
        .order_by("-date", "-id")
        .only("id", "subject", "from_name", "from_email", "snippet", "date", "seen", "flagged", "has_attachments")
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    accounts = MailAccount.objects.filter(owner=request.user).only(
        "id", "last_error_class", "label", "host", "username"
    )
    return render(
        request,
        "mailbox/inbox.html",
        {
            "page": page,
            "folder": folder,
            "folder_label": Folder(folder).label,
            "folders": Folder.choices,
            "accounts": accounts,
        },
    )


def _own_message(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(Message.objects.select_related("account"), id=message_id, owner=request.user)


@login_required
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _own_message(request, message_id)
    parsed = None
    try:
        with store.open_file(message.raw_path) as fh:
            parsed = mime.parse_file(fh)
        body = parsed.text_body or parsed.html_body
        body_is_html = not parsed.text_body and bool(parsed.html_body)
    except OSError:
        body, body_is_html = "", False
        messages.error(request, "The stored copy of this message cannot be read.")
    if not message.seen:
        Message.objects.filter(id=message.id).update(seen=True)
    return render(
        request,
        "mailbox/message.html",
        {
            "message": message,
            "body": body,
            "body_is_html": body_is_html,
            "attachments": message.attachments.all(),
            "folders": Folder.choices,
        },
    )


@login_required
@require_POST
def message_delete(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _own_message(request, message_id)
    sync.delete_messages(request.user.id, [message.id])
    messages.success(request, "Moved to Trash.")
    return redirect("mailbox:inbox")


@login_required
def message_raw(request: HttpRequest, message_id: int) -> FileResponse:
    message = _own_message(request, message_id)
    try:
        fh = store.open_file(message.raw_path)  # FileResponse closes it
    except OSError:
        raise Http404 from None
    response = FileResponse(fh, as_attachment=True, filename=f"message-{message.id}.eml", content_type="message/rfc822")
    response["Content-Security-Policy"] = "sandbox"
    return response


@login_required
def attachment_download(request: HttpRequest, attachment_id: int) -> FileResponse:
    attachment = get_object_or_404(Attachment, id=attachment_id, message__owner=request.user)
    try:
        fh = store.open_file(attachment.stored_path)  # FileResponse closes it
    except OSError:
        raise Http404 from None
    # Always a download, never rendered in our origin (nosniff is global).
    response = FileResponse(
        fh, as_attachment=True, filename=attachment.filename, content_type="application/octet-stream"
    )
    response["Content-Security-Policy"] = "sandbox"
    return response
