"""Sign in with Google / Microsoft: start, callback, confirm, reconnect."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import MailAccount
from mailbox import actions as mailbox_actions

from . import actions, client, flow, providers
from .forms import ConfirmForm
from .models import Grant

log = logging.getLogger(__name__)


def _callback_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("oauth:callback"))


def _send_to_provider(request: HttpRequest, provider: providers.Provider, account_id: int | None = None):
    auth = client.authorization_request(provider, _callback_uri(request))
    flow.remember_request(request.session, provider.key, auth, account_id=account_id)
    return redirect(auth.url)


@login_required
@require_POST
def start(request: HttpRequest, provider: str) -> HttpResponse:
    found = providers.get_configured(provider)
    if found is None:
        raise Http404
    return _send_to_provider(request, found)


@login_required
@require_POST
def reconnect(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(MailAccount, id=account_id, owner=request.user)
    grant = get_object_or_404(Grant, account=account)
    provider = providers.get_configured(grant.provider)
    if provider is None:
        messages.error(
            request, _("Sign-in with %(provider)s is not set up on this site any more.") % {"provider": grant.provider}
        )
        return redirect("accounts:detail", account_id=account.id)
    return _send_to_provider(request, provider, account_id=account.id)


@login_required
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    pending = flow.take_request(request.session, request.GET.get("state", ""))
    if pending is None:
        messages.error(request, _("This sign-in has expired or was started elsewhere. Please try again."))
        return redirect("accounts:add")
    provider = providers.get_configured(pending["provider"])
    account = None
    if pending["account"] is not None:
        account = get_object_or_404(MailAccount, id=pending["account"], owner=request.user)
    back = redirect("accounts:detail", account_id=account.id) if account else redirect("accounts:add")
    if provider is None:  # the administrator removed it meanwhile
        messages.error(request, _("Sign-in with this provider is not set up on this site any more."))
        return back
    error = request.GET.get("error")
    if error:
        if error == "access_denied":
            text = _("You did not allow webpop to read your mail at %(provider)s. Nothing was changed.")
        else:
            text = _("%(provider)s did not complete the sign-in. Nothing was changed; please try again.")
        messages.error(request, text % {"provider": provider.name})
        return back
    try:
        sign_in = actions.finish_sign_in(
            provider,
            code=request.GET.get("code", ""),
            redirect_uri=_callback_uri(request),
            code_verifier=pending["verifier"],
            nonce=pending["nonce"],
        )
    except client.ProviderUnavailable as exc:
        log.warning("oauth code exchange failed provider=%s: %s", provider.key, exc)
        messages.error(
            request,
            _("%(provider)s's sign-in service could not be reached (%(error)s). Nothing was changed; please try again.")
            % {"provider": provider.name, "error": exc},
        )
        return back
    except client.GrantRejected as exc:
        log.warning("oauth sign-in rejected provider=%s error=%s", provider.key, exc.error)
        messages.error(
            request,
            _("%(provider)s refused the sign-in (%(error)s). Nothing was changed; please try again.")
            % {"provider": provider.name, "error": exc},
        )
        return back
    if account is None:
        # The same mailbox added before: sign it in again rather than fetch everything twice.
        existing = actions.existing_grant(request.user, sign_in)
        if existing is None:
            flow.keep_sign_in(request.session, sign_in)
            return redirect("oauth:confirm")
        account = existing.account
        back = redirect("accounts:detail", account_id=account.id)
    try:
        actions.reconnect(account, sign_in)
    except actions.WrongIdentity as exc:
        messages.error(request, str(exc))
        return back
    mailbox_actions.sync_now(account)
    messages.success(request, _("Signed in again. Checking %(account)s for mail.") % {"account": account})
    return back


@login_required
def confirm(request: HttpRequest) -> HttpResponse:
    sign_in = flow.signed_in(request.session)
    provider = providers.get_configured(sign_in.provider) if sign_in else None
    if sign_in is None or provider is None:
        messages.error(request, _("This sign-in has expired. Please sign in again."))
        return redirect("accounts:add")
    form = ConfirmForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        account = actions.create_oauth_account(request.user, provider, sign_in, **form.cleaned_data)
        flow.forget_sign_in(request.session)
        mailbox_actions.sync_now(account)
        messages.success(request, _("Added %(account)s. The first sync has started.") % {"account": account})
        return redirect("accounts:detail", account_id=account.id)
    context = {"form": form, "provider": provider, "email": sign_in.email}
    return render(request, "oauth/confirm.html", context)
