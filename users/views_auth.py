"""Sign-in with an optional second factor, and password change/reset with audit records."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from . import actions, audit, notify, ratelimit, signup, twofactor
from .backends import BACKEND
from .forms import CodeForm, FirstRunForm

PENDING = "users_2fa_pending"
PENDING_SECONDS = 300
MAX_CODE_TRIES = 5


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(signup_mode=signup.mode(), **kwargs)

    def form_valid(self, form):
        user = form.get_user()
        if not twofactor.has_device(user):
            return super().form_valid(form)
        # Password right: not signed in until the second factor is given too.
        self.request.session[PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "next": self.get_success_url(),
            "at": time.time(),
            "tries": 0,
        }
        return redirect("login_otp")


def _safe_next(request: HttpRequest, url: str | None) -> str:
    if url and url_has_allowed_host_and_scheme(url, {request.get_host()}, require_https=request.is_secure()):
        return url
    return reverse("mailbox:inbox")


def login_otp(request: HttpRequest) -> HttpResponse:
    """Second sign-in step; also re-asks a signed-in session that never gave it (the admin site)."""
    pending = request.session.get(PENDING)
    if request.user.is_authenticated:
        user = request.user
        next_url = _safe_next(request, request.GET.get("next"))
        if request.user.is_verified() or not twofactor.has_device(user):
            return redirect(next_url)
    elif pending and time.time() - pending["at"] < PENDING_SECONDS:
        user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
        next_url = _safe_next(request, pending["next"])
        if user is None:
            return _restart(request)
    else:
        return _restart(request)

    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = twofactor.verify(user, form.cleaned_data["token"])
        if device is not None:
            if not request.user.is_authenticated:
                request.session.pop(PENDING, None)
                login(request, user, backend=pending["backend"])
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = twofactor.backup_codes_left(user)
                messages.warning(request, _("You used a backup code; %(left)d are left.") % {"left": left})
            return redirect(next_url)
        audit.record(request, audit.LOGIN_2FA_FAILED, f"user:{user.get_username()}", actor=user)
        if pending is not None and not request.user.is_authenticated:
            pending["tries"] += 1
            request.session[PENDING] = pending
            if pending["tries"] >= MAX_CODE_TRIES:
                return _restart(request, _("Too many wrong codes. Sign in again."))
        wait = twofactor.wait_seconds(user)
        message = _("That code is not right (or was already used). Try the newest one.")
        if wait:  # each wrong code doubles the delay before the next one
            message += " " + _("Wait %(n)d seconds before the next try.") % {"n": wait}
        form.add_error("token", message)
    return render(request, "registration/login_otp.html", {"form": form, "user_name": user.get_username()})


def _restart(request: HttpRequest, message: str | None = None) -> HttpResponse:
    request.session.pop(PENDING, None)
    if request.user.is_authenticated:
        logout(request)
    messages.error(request, message or _("Your sign-in expired. Sign in again."))
    return redirect("login")


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin site signs in through the same page (and second factor) as everyone.

    The admin sends a signed-in user it does not admit here too: sending them back would
    go round for ever, so they are told no (403) instead.
    """
    target = _safe_next(request, request.GET.get("next") or reverse("admin:index"))
    if request.user.is_authenticated:
        if not admin.site.has_permission(request):
            raise PermissionDenied
        return redirect(target)
    return redirect(f"{reverse('login')}?{urlencode({'next': target})}")


class PasswordChangeView(auth_views.PasswordChangeView):
    success_url = reverse_lazy("users:security")

    def form_valid(self, form):
        response = super().form_valid(form)
        # Django already invalidates the other sessions; remove them from the list as well.
        actions.end_other_sessions(self.request.user, self.request.session.session_key)
        audit.record(self.request, audit.PASSWORD_CHANGED, f"user:{self.request.user.get_username()}")
        notify.security_notice(self.request, self.request.user, _("your password was changed"))
        messages.success(self.request, _("Password changed. Your other sessions were signed out."))
        return response


class PasswordResetView(auth_views.PasswordResetView):
    def form_valid(self, form):
        if wait := ratelimit.email_wait(self.request, "password_reset", form.cleaned_data["email"]):
            return ratelimit.refused(self.request, wait)
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.user
        actions.end_other_sessions(user, None)
        audit.record(self.request, audit.PASSWORD_RESET, f"user:{user.get_username()}", actor=user)
        notify.security_notice(self.request, user, _("your password was reset by e-mail"))
        return response


def first_run(request: HttpRequest) -> HttpResponse:
    """Create the first administrator; only while no user exists."""
    User = get_user_model()
    if User.objects.exists():
        raise Http404
    form = FirstRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Re-check under the transaction: two people racing to set up get one admin.
            if User.objects.select_for_update().exists():
                raise Http404
            user = form.save(commit=False)
            user.is_staff = True
            user.is_superuser = True
            user.save()
        login(request, user, backend=BACKEND)
        messages.success(request, _("Welcome to webpop. Add your first POP3 account."))
        return redirect("accounts:add")
    return render(request, "users/first_run.html", {"form": form})
