"""Export a folder, a virtual view or a search result as an mbox file, streamed."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.utils import timezone, translation

from . import mbox, search, virtual
from .models import Folder, Message


@login_required
def export_mbox(request: HttpRequest) -> StreamingHttpResponse:
    folder = request.GET.get("folder", "")
    view = virtual.VIEWS.get(request.GET.get("view", ""))
    query = request.GET.get("q", "").strip()
    rows = Message.objects.filter(owner=request.user).exclude(raw_path="")
    if query:
        try:
            rows = search.apply(rows, search.parse(query))
        except search.SearchError:
            raise Http404 from None
        name = "search"
    elif view is not None:
        rows = rows.filter(view.condition)
        name = view.slug
    elif folder in Folder.values:
        rows = rows.filter(folder=folder)
        name = folder
    else:
        raise Http404
    rows = rows.order_by("date", "id").only("id", "raw_path", "sha256", "from_email", "subject", "date")
    pieces = mbox.export(rows.iterator(chunk_size=200), translation.get_language())  # streamed after the view
    response = StreamingHttpResponse(pieces, content_type="application/mbox")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="webpop-{name}-{stamp}.mbox"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
