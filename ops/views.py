"""The operators' dashboard and /metrics, each behind its own permission (users.operators). Thin."""

from __future__ import annotations

import datetime as dt
import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.models import MailAccount
from mailbox.models import FetchFailure
from spam import dashboard as spam_dashboard
from users import operators
from users.operators import operator_required

from . import actions, charts, disk, heartbeats, metrics, queue, stats


@operator_required(operators.VIEW_DASHBOARD)
@require_GET
@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    week = stats.hourly_activity(24 * 7, now)
    day = week[-24:]
    health = stats.health_counts()
    spam = spam_dashboard.summary(now)
    disks = disk.volumes()
    context = {
        "disks": disks,
        "disks_low": [v for v in disks if v.low],
        "alert_percent": settings.WEBPOP_DISK_ALERT_FREE_PERCENT,
        "alert_mb": settings.WEBPOP_DISK_ALERT_FREE_MB,
        "now": now,
        "users": stats.user_counts(),
        "health": [(key, label, health[key]) for key, label in stats.HEALTH.items()],
        "accounts_total": sum(health.values()),
        "queue_depth": queue.queue_depth(),
        "workers": heartbeats.workers(now),
        "heartbeat_seconds": heartbeats.interval(),
        "charts": [
            (_("Syncs per hour, last 24 hours"), charts.hourly_chart([(b.start, b.syncs) for b in day]), "syncs-24h"),
            (
                _("Messages ingested per hour, last 24 hours"),
                charts.hourly_chart([(b.start, b.fetched) for b in day]),
                "fetched-24h",
            ),
            (
                _("Syncs per hour, last 7 days"),
                charts.hourly_chart([(b.start, b.syncs) for b in week], daily_ticks=True),
                "syncs-7d",
            ),
            (
                _("Messages ingested per hour, last 7 days"),
                charts.hourly_chart([(b.start, b.fetched) for b in week], daily_ticks=True),
                "fetched-7d",
            ),
        ],
        "errors_24h": stats.errors_by_class(now - dt.timedelta(hours=24)),
        "errors_7d": stats.errors_by_class(now - dt.timedelta(days=7)),
        "slowest": stats.slowest_servers(now - dt.timedelta(days=7)),
        "storage": stats.users_by_storage(limit=20),
        "storage_total": stats.total_storage(),
        "quarantined": stats.quarantined(limit=20),
        "quarantined_count": stats.quarantined_count(),
        "damaged_files": sum(stats.damaged_counts().values()),
        "problem_accounts": stats.accounts_list().exclude(health__in=("ok", "new", "paused"))[:20],
        "spam": spam,
        "spam_chart": charts.hourly_chart([(hour, counts.scanned) for hour, counts in spam.hourly]),
    }
    return render(request, "ops/dashboard.html", context)


@operator_required(operators.VIEW_DASHBOARD)
@require_GET
@never_cache
def account_list(request: HttpRequest) -> HttpResponse:
    health = request.GET.get("health", "")
    q = request.GET.get("q", "").strip()[:100]
    page = Paginator(stats.accounts_list(health=health, q=q), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "ops/accounts.html",
        {"page": page, "health": health, "q": q, "health_choices": list(stats.HEALTH.items())},
    )


@operator_required(operators.VIEW_DASHBOARD)
@require_GET
@never_cache
def user_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:100]
    page = Paginator(stats.users_with_storage(q), 50).get_page(request.GET.get("page"))
    return render(request, "ops/users.html", {"users": stats.storage_rows(page.object_list), "page": page, "q": q})


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(default)


@operator_required(operators.ACT_ON_ACCOUNTS)
@require_POST
def account_sync(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(MailAccount, id=account_id)
    try:
        actions.sync_now(request.user, account)
        messages.success(request, _("Sync of %(account)s queued.") % {"account": account.display_name})
    except actions.ActionRefused:
        messages.error(request, _("%(account)s is paused; resume it first.") % {"account": account.display_name})
    return _back(request, reverse("ops:accounts"))


@operator_required(operators.ACT_ON_ACCOUNTS)
@require_POST
def account_pause(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(MailAccount, id=account_id)
    pause = request.POST.get("pause") == "1"
    try:
        actions.set_paused(request.user, account, pause)
    except actions.ActionRefused:
        messages.error(request, _("Only a superuser can pause or resume a superuser's accounts."))
    else:
        if pause:
            messages.success(request, _("%(account)s is paused.") % {"account": account.display_name})
        else:
            messages.success(request, _("%(account)s is polled again.") % {"account": account.display_name})
    return _back(request, reverse("ops:accounts"))


@operator_required(operators.DISABLE_USERS)
@require_POST
def user_active(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=user_id)
    active = request.POST.get("active") == "1"
    try:
        actions.set_user_active(request.user, user, active)
    except actions.ActionRefused as refused:
        if refused.reason == "self":
            messages.error(request, _("You cannot disable your own user."))
        else:
            messages.error(request, _("Only a superuser can disable or enable a superuser."))
    else:
        if active:
            messages.success(request, _("%(user)s can sign in again.") % {"user": user.get_username()})
        else:
            messages.success(
                request, _("%(user)s is disabled: no sign-in, no polling.") % {"user": user.get_username()}
            )
    return _back(request, reverse("ops:users"))


@operator_required(operators.ACT_ON_ACCOUNTS)
@require_POST
def failure_retry(request: HttpRequest, failure_id: int) -> HttpResponse:
    failure = get_object_or_404(FetchFailure, id=failure_id, quarantined_at__isnull=False)
    actions.retry_quarantined(request.user, failure)
    messages.success(request, _("The message will be fetched again on the next sync."))
    return _back(request, reverse("ops:dashboard"))


@require_GET
@never_cache
def prometheus(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape: a bearer token (WEBPOP_METRICS_TOKEN) or a session with the metrics permission."""
    user = request.user
    allowed = user.is_authenticated and user.has_perm(operators.VIEW_METRICS)
    token = settings.WEBPOP_METRICS_TOKEN
    if not allowed and token:
        given = request.headers.get("Authorization", "")
        scheme, _sep, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            allowed = True
        else:
            response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="webpop metrics"'
            return response
    if not allowed:
        raise Http404
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
