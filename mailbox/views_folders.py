"""User folders: list with counts, create, rename, delete (mail goes back to the Inbox)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST

from . import folders, views
from .models import Message, UserFolder


@login_required
def folder_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            folder = folders.create(request.user.id, request.POST.get("name", ""))
        except folders.FolderError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, gettext("Created “%(name)s”.") % {"name": folder.name})
        return redirect("mailbox:folders")
    rows = folders.user_folders(request.user.id)
    totals = dict(
        Message.objects.filter(owner=request.user, folder__in=[f.slug for f in rows])
        .values_list("folder")
        .annotate(n=Count("id"))
    )
    return render(request, "mailbox/folders.html", {"rows": [(f, totals.get(f.slug, 0)) for f in rows]})


def _own_folder(request: HttpRequest, folder_id: int) -> UserFolder:
    return get_object_or_404(UserFolder, id=folder_id, owner=request.user)


@login_required
@require_POST
def folder_rename(request: HttpRequest, folder_id: int) -> HttpResponse:
    folder = _own_folder(request, folder_id)
    views.rename(request, folder, folders.rename, folders.FolderError)
    return redirect("mailbox:folders")


@login_required
@require_POST
def folder_delete(request: HttpRequest, folder_id: int) -> HttpResponse:
    folder = _own_folder(request, folder_id)
    name = folder.name
    moved = folders.delete(folder)
    text = ngettext(
        "Deleted “%(name)s”; its %(count)d message is back in the Inbox.",
        "Deleted “%(name)s”; its %(count)d messages are back in the Inbox.",
        moved,
    )
    messages.success(request, text % {"name": name, "count": moved})
    return redirect("mailbox:folders")
