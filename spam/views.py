"""The user's spam settings and "Not spam" on a marked message. Thin: check the owner, call spam/actions.py."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from accounts.models import MailAccount
from mailbox.models import Folder, Message

from . import actions
from .forms import ProviderTrustForm, ThresholdsForm


@login_required
@require_POST
def account_filter(request: HttpRequest, account_id: int) -> HttpResponse:
    """Whether an account of the user's trusts its provider's verdict (the account page's form)."""
    account = get_object_or_404(MailAccount, id=account_id, owner=request.user)
    form = ProviderTrustForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        actions.set_provider_trust(request.user.id, account.id, trust=data["trust"], authserv_id=data["authserv_id"])
        messages.success(request, gettext("Spam filtering saved."))
    else:
        messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
    return redirect(reverse("accounts:detail", args=[account.id]) + "#spam-filter")


@login_required
@require_POST
def thresholds(request: HttpRequest) -> HttpResponse:
    form = ThresholdsForm(request.POST)
    if form.is_valid():
        actions.set_thresholds(request.user.id, form.cleaned_data["spam_score"], form.cleaned_data["probable_score"])
        messages.success(request, gettext("Spam filtering saved."))
    else:
        messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
    return redirect(reverse("accounts:preferences") + "#spam-filter")


@login_required
@require_POST
def not_spam(request: HttpRequest, message_id: int) -> HttpResponse:
    """ "Not spam" on a message the filter marked as probably spam: unmarked, and its sender trusted."""
    message = get_object_or_404(Message.objects.exclude(folder=Folder.PURGED), id=message_id, owner=request.user)
    actions.mark_not_spam(request.user.id, [message.id])
    messages.success(request, gettext("Marked as not spam. Mail from this sender will not be filtered as spam."))
    return redirect("mailbox:message", message_id=message.id)
