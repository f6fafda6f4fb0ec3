"""The account pages that reach into the mailbox: adding and editing an account (each save is
tested against the server first), "check now", and the messages a sync could not store.

They sit here, above both apps, so that ``accounts`` depends on nothing in ``mailbox``
(.importlinter); webpop/urls.py serves them under the ``accounts`` URL names.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from accounts import actions as account_actions
from accounts.forms import DELIVERY_FOLDERS, MailAccountEditForm, MailAccountForm
from accounts.models import MailAccount
from webpop.lib import cspolicy, ratelimit

from . import actions, folders, store, sync
from .models import FetchFailure


def _own_account(request: HttpRequest, account_id: int) -> MailAccount:
    return get_object_or_404(MailAccount, id=account_id, owner=request.user)


def _deliver_choices(request: HttpRequest) -> list[tuple[str, str]]:
    """Where new mail may go: the inbox, the archive, or one of the user's own folders."""
    return folders.target_choices(request.user.id, system=DELIVERY_FOLDERS)


@login_required
def account_add(request: HttpRequest) -> HttpResponse:
    form = MailAccountForm(request.POST or None, deliver_choices=_deliver_choices(request))
    report = wait = None
    try:
        account_actions.check_account_quota(request.user)  # say so before anyone types a password
    except ValidationError as exc:
        context = {"form": form, "report": None, "quota_error": exc.messages[0]}
        return render(request, "accounts/add.html", context, status=403)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        wait = _test_limit(request)
        report = _rate_limited(wait) if wait else _test(data, data["password"])
        if request.POST.get("action") == "save" and not wait and (report.ok or data["save_anyway"]):
            try:
                account = account_actions.create_account(
                    request.user, password=data["password"], **_settings_from(data, report)
                )
            except ValidationError as exc:
                form.add_error(None, exc)
                return render(request, "accounts/add.html", {"form": form, "report": report}, status=403)
            actions.sync_now(account)
            messages.success(
                request, gettext("Added %(name)s. The first sync has started.") % {"name": account.display_name}
            )
            return redirect("accounts:detail", account_id=account.id)
    return _form_response(request, "accounts/add.html", {"form": form, "report": report}, wait)


def _test_limit(request: HttpRequest) -> int | None:
    """Seconds to wait before the next connection test, or None (each test connects to a host the user chose)."""
    limit = settings.WEBPOP_RATELIMIT_TEST_CONNECTION
    return ratelimit.limit_request(request, "test-connection", per_user=limit, per_ip=3 * limit)


def _rate_limited(wait: int) -> sync.ConnectionReport:
    text = gettext("Too many connection tests in a short time. Nothing was saved; try again in %(seconds)d seconds.")
    return sync.ConnectionReport(ok=False, message=text % {"seconds": wait}, error_class="rate_limited")


def _form_response(request: HttpRequest, template: str, context: dict, wait: int | None) -> HttpResponse:
    report = context["report"]
    status = 429 if wait else 200 if report is None or report.ok else 422
    response = render(request, template, context, status=status)
    if wait:
        response["Retry-After"] = str(wait)
    return response


def _settings_from(data: dict, report: sync.ConnectionReport) -> dict:
    return {
        "label": data["label"],
        "host": data["host"],
        "port": data["port"],
        "security": data["security"],
        "username": data["username"],
        "policy": data["policy"],
        "poll_interval": data["poll_interval"],
        "poll_interval_max": data["poll_interval_max"],
        "deliver_to": data["deliver_to"],
        "auth_mechanism": data["auth_mechanism"],
        "tls_fingerprint": data["tls_fingerprint"],
        "max_message_bytes": data["max_message_mb"] * 1024 * 1024 if data["max_message_mb"] else None,
        # The login method the test found, so the first sync starts with it.
        "working_auth_mechanism": report.mechanism,
    }


def _test(data: dict, password: str, remembered: str = "") -> sync.ConnectionReport:
    return sync.test_connection(
        data["host"],
        data["port"],
        data["security"],
        data["username"],
        password,
        mechanism=data["auth_mechanism"],
        remembered=remembered,
        fingerprint=data["tls_fingerprint"],
    )


def _remembered(account: MailAccount, data: dict) -> str:
    """The method that worked for ``account``, while the form still names the same server and user."""
    same = all(data[name] == getattr(account, name) for name in ("host", "port", "security", "username"))
    return account.working_auth_mechanism if same else ""


@login_required
def account_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _own_account(request, account_id)
    form = MailAccountEditForm(
        request.POST or None,
        initial=MailAccountEditForm.initial_for(account),
        deliver_choices=_deliver_choices(request),
    )
    report = wait = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password = data["password"] or None
        wait = _test_limit(request)
        if wait:
            report = _rate_limited(wait)
        elif hasattr(account, "oauth_grant"):  # signs in with OAuth2: test with its token, not a password
            report = sync.test_oauth_connection(
                account,
                data["host"],
                data["port"],
                data["security"],
                data["username"],
                fingerprint=data["tls_fingerprint"],
            )
        else:
            report = _test(
                data, password if password is not None else account.get_password(), _remembered(account, data)
            )
        if request.POST.get("action") == "save" and not wait and (report.ok or data["save_anyway"]):
            account_actions.update_account(account, password=password, **_settings_from(data, report))
            messages.success(request, gettext("Saved %(name)s.") % {"name": account.display_name})
            return redirect("accounts:detail", account_id=account.id)
    context = {"form": form, "report": report, "account": account}
    return _form_response(request, "accounts/edit.html", context, wait)


@login_required
@require_POST
def failure_retry(request: HttpRequest, account_id: int, failure_id: int) -> HttpResponse:
    account = _own_account(request, account_id)
    failure = get_object_or_404(FetchFailure, id=failure_id, account=account)
    sync.retry_failure(failure)
    messages.success(request, gettext("webpop will try that message again at the next check."))
    return redirect("accounts:detail", account_id=account.id)


@cspolicy.policy(cspolicy.SANDBOX)
@login_required
def failure_raw(request: HttpRequest, account_id: int, failure_id: int) -> FileResponse:
    account = _own_account(request, account_id)
    failure = get_object_or_404(FetchFailure, id=failure_id, account=account)
    if not failure.raw_path:
        raise Http404
    try:
        fh = store.open_file(failure.raw_path)  # any storage; FileResponse closes it
    except (OSError, ValueError):  # gone, or not a mail store path
        raise Http404 from None
    response = FileResponse(fh, as_attachment=True, filename=f"quarantined-{failure.id}.eml")
    response["Content-Type"] = "application/octet-stream"
    return response


@login_required
@require_POST
def account_check_now(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _own_account(request, account_id)
    if actions.sync_now(account):
        messages.success(request, gettext("Checking %(name)s for new mail.") % {"name": account.display_name})
    else:
        messages.error(request, gettext("This account is paused; resume it first."))
    return redirect("accounts:detail", account_id=account.id)
