"""Calendar invitations: answer one (POST, the message's owner only) and download its .ics as received."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from outgoing.send import SendRefused
from webpop.lib import cspolicy

from . import attachments, invitations, store
from .models import Attachment

CONFIRMATIONS = {
    "ACCEPTED": lambda: gettext("You accepted. Your answer is on its way to the organiser."),
    "TENTATIVE": lambda: gettext("You answered “maybe”. Your answer is on its way to the organiser."),
    "DECLINED": lambda: gettext("You declined. Your answer is on its way to the organiser."),
}


def _own_calendar(request: HttpRequest, attachment_id: int) -> Attachment:
    attachment = get_object_or_404(Attachment, id=attachment_id, message__owner=request.user)
    if attachments.kind_of(attachment.filename, attachment.content_type).preview != "calendar":
        raise Http404
    return attachment


@login_required
@require_POST
def calendar_answer(request: HttpRequest, attachment_id: int) -> HttpResponse:
    attachment = _own_calendar(request, attachment_id)
    answer = request.POST.get("answer", "")
    try:
        invitations.answer(
            request.user, attachment.id, request.POST.get("uid", ""), request.POST.get("recurrence_id", ""), answer
        )
    except (invitations.AnswerRefused, SendRefused) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, CONFIRMATIONS[answer]())
    return redirect("mailbox:message", message_id=attachment.message_id)


@cspolicy.policy(cspolicy.SANDBOX)
@login_required
def calendar_ics(request: HttpRequest, attachment_id: int) -> FileResponse:
    """The calendar file as it arrived, for the user's calendar app: text/calendar, as a download."""
    attachment = _own_calendar(request, attachment_id)
    try:
        fh = store.open_file(attachment.stored_path)  # FileResponse closes it
    except OSError:
        raise Http404 from None
    response = FileResponse(fh, as_attachment=True, filename="invite.ics", content_type="text/calendar")
    return response
