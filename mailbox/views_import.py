"""Upload .eml / .mbox files into a folder, filed under one of the user's accounts."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from accounts.models import MailAccount

from . import folders, importer
from .models import Folder

# Multipart framing around the files; a larger declared body is refused before it is read.
_FRAMING = 64 * 1024


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


class _UploadLimit(FileUploadHandler):
    """Stops reading the upload once its files pass the limit (for bodies without a usable length)."""

    def __init__(self, request: HttpRequest, limit: int):
        super().__init__(request)
        self.limit, self.total, self.exceeded = limit, 0, False

    def receive_data_chunk(self, raw_data: bytes, start: int):
        self.total += len(raw_data)
        if self.total > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int):
        return None


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    form = ImportForm(owner=request.user)
    error = gettext("That upload is larger than the limit of %(mb)d MB: import it in parts.") % {
        "mb": limit // (1024 * 1024)
    }
    return render(request, "mailbox/import.html", {"form": form, "error": error, "limit": limit}, status=413)


@login_required
@csrf_exempt  # the size limit must be in place before the body is read; CSRF is checked in _import_view
def import_mail(request: HttpRequest) -> HttpResponse:
    limit = settings.WEBPOP_IMPORT_MAX_BYTES
    handler = None
    if request.method == "POST":
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit + _FRAMING:
            return _too_large(request, limit)
        handler = _UploadLimit(request, limit)
        request.upload_handlers.insert(0, handler)
    return _import_view(request, limit, handler)


@csrf_protect
def _import_view(request: HttpRequest, limit: int, handler: _UploadLimit | None) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None, owner=request.user)
    if handler is not None and handler.exceeded:
        return _too_large(request, limit)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        report = importer.import_files(data["account"], data["folder"], [(f.name, f) for f in data["files"]])
        (messages.warning if report.failed else messages.success)(request, report.summary())
        target = data["folder"]
        return redirect("mailbox:inbox") if target == Folder.INBOX else redirect("mailbox:folder", folder=target)
    return render(request, "mailbox/import.html", {"form": form, "limit": limit}, status=400 if form.errors else 200)
