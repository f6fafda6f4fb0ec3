"""The rich text editor's requests: pictures into a draft's text and back out, and switching formats."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from webpop.lib import cspolicy

from . import actions, rich, richtext
from .models import OutgoingAttachment, OutgoingMessage

MAX_CONVERT_CHARS = 2_000_000


@login_required
@require_POST
def image_upload(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    """A picture dropped or pasted into a draft's text: stored with the draft; answers where the editor shows it."""
    get_object_or_404(OutgoingMessage.objects.only("id"), id=outgoing_id, owner=request.user)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "no file"}, status=400)
    try:
        picture = actions.add_image(request.user, outgoing_id, upload.name, upload.read())
    except rich.ImageRefused as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"id": picture.id, "url": rich.image_path(outgoing_id, picture.id)})


@cspolicy.policy(cspolicy.ASSET)
@login_required
def image(request: HttpRequest, outgoing_id: int, attachment_id: int) -> HttpResponse:
    """A picture in a draft's text, for the editor: only the raster types ``rich.add_image`` takes."""
    row = get_object_or_404(
        OutgoingAttachment.objects.exclude(content_id=""),
        id=attachment_id,
        message_id=outgoing_id,
        message__owner=request.user,
    )
    if row.content_type not in rich.INLINE_TYPES:
        raise Http404
    response = HttpResponse(bytes(row.data), content_type=row.content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_POST
def convert(request: HttpRequest) -> HttpResponse:
    """Switching the editor's format: ``html`` → its text version, or ``text`` → HTML. Nothing is stored."""
    if "html" in request.POST:
        html = richtext.clean(request.POST["html"][:MAX_CONVERT_CHARS])
        return JsonResponse({"text": richtext.html_to_text(html)})
    return JsonResponse({"html": richtext.text_to_html(request.POST.get("text", "")[:MAX_CONVERT_CHARS])})
