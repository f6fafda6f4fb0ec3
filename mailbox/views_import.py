"""Upload .eml / .mbox files to import into a folder, and follow the import on its own page.

The request only keeps the upload and queues the job (``actions.start_import``):
the files stream to temp files in the mail store as the body arrives (no copy
in memory, none on disk later) and a worker imports them (mailbox/importer.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers, StopUpload
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from accounts.models import MailAccount

from . import actions, folders, store
from .models import Folder, ImportJob

# Multipart framing around the files; a larger declared body is refused before it is read.
_FRAMING = 64 * 1024
RECENT_JOBS = 20


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".eml,.mbox,.mbx,message/rfc822"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        items = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


class ImportForm(forms.Form):
    files = MultipleFileField(label=_(".eml or .mbox files"))
    account = forms.ModelChoiceField(
        queryset=MailAccount.objects.none(), empty_label=None, label=_("File under account")
    )
    folder = forms.ChoiceField(choices=(), label=_("Into folder"))

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = MailAccount.objects.filter(owner=owner)
        self.fields["folder"].choices = folders.target_choices(owner.id)
        self.fields["folder"].initial = Folder.INBOX


class SpooledUpload(UploadedFile):
    """An uploaded file in the store's temp folder; closing it removes it unless it was moved away."""

    def temporary_file_path(self) -> str:
        return self.file.name

    def close(self) -> None:
        self.file.close()
        Path(self.file.name).unlink(missing_ok=True)


class SpoolUploads(FileUploadHandler):
    """Writes each uploaded file straight to a temp file in the mail store, where it is moved from later.

    No other handler sees the data (no copy in memory or in /tmp), and reading
    stops once the files pass ``limit`` (for bodies without a usable length).
    """

    def __init__(self, request: HttpRequest, limit: int):
        super().__init__(request)
        self.limit, self.total, self.exceeded = limit, 0, False
        self.current = None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.current = store.temp_file()
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.total += len(raw_data)
        if self.total > self.limit:
            self.exceeded = True
            self._drop()
            raise StopUpload(connection_reset=False)
        self.current.write(raw_data)
        return None  # kept here: no later handler gets it

    def file_complete(self, file_size: int) -> SpooledUpload:
        fh, self.current = self.current, None
        fh.flush()
        os.fsync(fh.fileno())  # the job row will point at it: durable before it is committed
        fh.seek(0)
        return SpooledUpload(fh, self.file_name, self.content_type, file_size, self.charset, self.content_type_extra)

    def upload_interrupted(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self.current is not None:
            self.current.close()
            Path(self.current.name).unlink(missing_ok=True)
            self.current = None


def _page(request: HttpRequest, form: ImportForm, limit: int, *, error: str = "", status: int = 200) -> HttpResponse:
    jobs = ImportJob.objects.filter(owner=request.user).select_related("account")[:RECENT_JOBS]
    context = {"form": form, "limit": limit, "error": error, "jobs": jobs}
    return render(request, "mailbox/import.html", context, status=status)


def _busy(request: HttpRequest, limit: int) -> HttpResponse:
    error = gettext("You have %(count)d imports waiting or running: upload more when one of them has finished.") % {
        "count": actions.MAX_ACTIVE_IMPORTS
    }
    return _page(request, ImportForm(owner=request.user), limit, error=error, status=429)


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    error = gettext("That upload is larger than the limit of %(mb)d MB: import it in parts.") % {
        "mb": limit // (1024 * 1024)
    }
    return _page(request, ImportForm(owner=request.user), limit, error=error, status=413)


@login_required
@csrf_exempt  # the upload handler must be in place before the body is read; CSRF is checked in _import_view
def import_mail(request: HttpRequest) -> HttpResponse:
    limit = settings.WEBPOP_IMPORT_MAX_BYTES
    handler = None
    if request.method == "POST":
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit + _FRAMING:
            return _too_large(request, limit)
        if actions.import_slots_left(request.user.id) <= 0:  # before the body is read
            return _busy(request, limit)
        handler = SpoolUploads(request, limit)
        request.upload_handlers = [handler]
    return _import_view(request, limit, handler)


@csrf_protect
def _import_view(request: HttpRequest, limit: int, handler: SpoolUploads | None) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None, owner=request.user)
    if handler is not None and handler.exceeded:
        return _too_large(request, limit)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        files = [(f.name, Path(f.temporary_file_path()), f.size) for f in data["files"]]
        try:
            job = actions.start_import(request.user, data["account"], data["folder"], files)
        except actions.ImportsBusy:  # another upload of the user's took the last slot meanwhile
            return _busy(request, limit)
        return redirect("mailbox:import_job", job_id=job.id)
    return _page(request, form, limit, status=400 if form.errors else 200)


def _own_job(request: HttpRequest, job_id: int) -> ImportJob:
    return get_object_or_404(ImportJob.objects.select_related("account"), id=job_id, owner=request.user)


@login_required
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _own_job(request, job_id)
    label = folders.label_for(request.user.id, job.folder)
    context = {
        "job": job,
        "folder": label or gettext("a folder since deleted"),
        "folder_url": _folder_url(job.folder) if label else "",
        "error": describe_error(job),
        "refusals": [(describe_item(r), describe_refusal(r)) for r in job.refusals],
        "unlisted": max(job.refused - len(job.refusals), 0),
        "done_mb": f"{job.bytes_done / 1048576:.1f}",
        "total_mb": f"{job.total_bytes / 1048576:.1f}",
    }
    return render(request, "mailbox/import_job.html", context)


def _folder_url(folder: str) -> str:
    return reverse("mailbox:inbox") if folder == Folder.INBOX else reverse("mailbox:folder", args=[folder])


@login_required
def import_status(request: HttpRequest, job_id: int) -> JsonResponse:
    job = _own_job(request, job_id)
    fields = ("state", "bytes_done", "total_bytes", "imported", "duplicates", "refused")
    return JsonResponse({**{name: getattr(job, name) for name in fields}, "active": job.active})


def describe_item(refusal: dict) -> str:
    if refusal.get("number"):
        return gettext("%(file)s, message %(number)d") % {"file": refusal["file"], "number": refusal["number"]}
    return refusal.get("file", "")


def describe_refusal(refusal: dict) -> str:
    reason = refusal.get("reason")
    if reason == "too_large":
        return gettext("larger than this account's limit of %(limit)s (%(size)s)") % {
            "limit": filesizeformat(refusal.get("limit", 0)),
            "size": filesizeformat(refusal.get("size", 0)),
        }
    if reason == "empty":
        return gettext("empty")
    if reason == "no_messages":
        return gettext("no messages found: not an mbox file?")
    return gettext("could not be stored: %(error)s") % {"error": refusal.get("detail", "")}


def describe_error(job: ImportJob) -> str:
    """Why a failed import stopped, and what the user can do."""
    if job.state != ImportJob.State.FAILED:
        return ""
    again = gettext(
        "What was imported is kept: import the same file again to add the rest (messages already here are skipped)."
    )
    if job.error_class == "quota":
        text = gettext("Your storage is full.")
    elif job.error_class == "upload":
        text = gettext("The uploaded file %(name)s is missing or damaged.") % {"name": job.error}
    elif job.error_class == "stopped":
        text = gettext("The import stopped %(count)d times before it could finish (its worker was stopped).") % {
            "count": job.attempts
        }
    else:
        text = gettext("An unexpected error stopped the import (%(error)s).") % {"error": job.error}
    return f"{text} {again}"
