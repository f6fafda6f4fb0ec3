"""Account pages that need only the account: list, detail, pause, delete, settings lookup, sync status.

Adding, editing (each tested against the server), "check now" and quarantined messages reach into
the mailbox: mailbox/views_accounts.py, under the same "accounts" URL names.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST

from webpop.lib import ratelimit

from . import actions, autoconfig
from .models import MailAccount


def _own_account(request: HttpRequest, account_id: int) -> MailAccount:
    return get_object_or_404(MailAccount, id=account_id, owner=request.user)


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = MailAccount.objects.filter(owner=request.user).order_by("label", "id")
    return render(request, "accounts/list.html", {"accounts": accounts})


@login_required
@require_POST
def account_toggle(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _own_account(request, account_id)
    actions.set_enabled(account, not account.enabled)
    text = gettext("Paused %(name)s.") if account.enabled else gettext("Resumed %(name)s.")
    messages.success(request, text % {"name": account.display_name})
    return redirect("accounts:detail", account_id=account.id)


@login_required
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _own_account(request, account_id)
    if request.method == "POST":
        name = account.display_name
        count = actions.delete_account(account)
        text = ngettext(
            "Removed %(name)s and its %(count)d message. The server was not touched.",
            "Removed %(name)s and its %(count)d messages. The server was not touched.",
            count,
        )
        messages.success(request, text % {"name": name, "count": count})
        return redirect("accounts:list")
    return render(request, "accounts/delete.html", {"account": account, "count": account.messages.count()})


@login_required
def account_suggest(request: HttpRequest) -> JsonResponse:
    """Settings for an e-mail address: a preset, SRV records or the domain's autoconfig."""
    limit = settings.WEBPOP_RATELIMIT_SUGGEST
    wait = ratelimit.limit_request(request, "suggest", per_user=limit, per_ip=3 * limit)
    if wait:
        error = gettext("Too many lookups; try again in %(seconds)d seconds.") % {"seconds": wait}
        response = JsonResponse({"suggestions": [], "error": error}, status=429)
        response["Retry-After"] = str(wait)
        return response
    address = request.GET.get("address", "")[:320]
    suggestions = autoconfig.suggest(address)
    return JsonResponse({"suggestions": [s.as_dict() for s in suggestions]})


@login_required
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _own_account(request, account_id)
    context = {
        "account": account,
        "message_count": account.messages.count(),
        "failures": list(account.fetch_failures.all()[:100]),
        "runs": list(account.sync_runs.all()[:10]),
    }
    return render(request, "accounts/detail.html", context)


@login_required
def account_status(request: HttpRequest, account_id: int) -> JsonResponse:
    account = _own_account(request, account_id)
    return JsonResponse(
        {
            "syncing": account.is_syncing,
            "progress_done": account.progress_done,
            "progress_total": account.progress_total,
            "progress_bytes": account.progress_bytes,
            "last_success_at": account.last_success_at.isoformat() if account.last_success_at else None,
            "last_error_class": account.last_error_class,
            "last_error": account.last_error,
        }
    )
