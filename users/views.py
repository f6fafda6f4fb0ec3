"""Sign-up, invitations, and the signed-in user's security page (2FA, sessions, deletion)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from . import actions, audit, backends, notify, operators, ratelimit, signup, twofactor
from .forms import CodeForm, EmailForm, InvitationForm, PasswordConfirmForm, SignupForm
from .models import Invitation
from .operators import operator_required

# --- Sign-up ---------------------------------------------------------------------


def signup_view(request: HttpRequest) -> HttpResponse:
    mode = signup.mode()
    if request.user.is_authenticated:
        return redirect("mailbox:inbox")
    if mode != signup.OPEN:
        return render(request, "users/signup_closed.html", {"mode": mode}, status=403)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if wait := ratelimit.email_wait(request, "signup", data["email"]):
            return ratelimit.refused(request, wait)
        if signup.email_in_use(data["email"]):
            # Same answer as a new sign-up: whether an address has an account is not told to visitors.
            signup.send_already_registered(request, data["email"])
        else:
            user = signup.register(username=data["username"], email=data["email"], password=data["password1"])
            audit.record(request, audit.SIGNUP, f"user:{user.get_username()}", actor=user, mode=mode)
            signup.send_verification(request, user)
        return redirect("users:signup_sent")
    return render(request, "users/signup.html", {"form": form})


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "users/signup_sent.html")


def resend_verification(request: HttpRequest) -> HttpResponse:
    if signup.mode() != signup.OPEN:
        raise Http404
    form = EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if wait := ratelimit.email_wait(request, "verification", form.cleaned_data["email"]):
            return ratelimit.refused(request, wait)
        for user in signup.awaiting_verification(form.cleaned_data["email"]):
            signup.send_verification(request, user)
        return redirect("users:signup_sent")
    return render(request, "users/resend.html", {"form": form})


def verify_email(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """GET shows a button (mail scanners follow links); POST activates the account."""
    user = signup.user_for_verification(uidb64, token)
    if user is None:
        return render(request, "users/verify_invalid.html", status=400)
    if request.method == "POST":
        if signup.activate(user):
            audit.record(request, audit.EMAIL_VERIFIED, f"user:{user.get_username()}", actor=user)
        messages.success(request, _("Your address is confirmed. Sign in to start."))
        return redirect("login")
    return render(request, "users/verify.html", {"verified_user": user})


def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    if not signup.invitations_accepted():
        return render(request, "users/signup_closed.html", {"mode": signup.mode()}, status=403)
    try:
        invitation = signup.find_invitation(token)
    except signup.InvitationUnavailable:
        return render(request, "users/invitation_invalid.html", status=410)
    form = SignupForm(request.POST or None, fixed_email=invitation.email, unique_email=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = signup.accept_invitation(
                token, username=data["username"], email=data["email"], password=data["password1"]
            )
        except signup.InvitationUnavailable:
            return render(request, "users/invitation_invalid.html", status=410)
        except IntegrityError:  # the name was taken between the form check and now
            form.add_error("username", _("A user with that user name already exists."))
        else:
            audit.record(request, audit.SIGNUP, f"user:{user.get_username()}", actor=user, invitation=invitation.pk)
            login(request, user, backend=backends.BACKEND)
            messages.success(request, _("Welcome to webpop. Add your first POP3 account."))
            return redirect("accounts:add")
    return render(request, "users/signup.html", {"form": form, "invitation": invitation})


# --- Operators: invitations ------------------------------------------------------------

NEW_INVITATION = "users_new_invitation_url"


@operator_required(operators.MANAGE_INVITATIONS)
def invitations(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST or None, initial={"days": settings.WEBPOP_INVITATION_DAYS})
    if request.method == "POST" and form.is_valid():
        invitation, token = signup.create_invitation(
            request.user, email=form.cleaned_data["email"], days=form.cleaned_data["days"]
        )
        audit.record(request, audit.INVITATION_CREATED, f"invitation:{invitation.pk}", email=invitation.email)
        if invitation.email:
            signup.send_invitation(request, invitation, token)
            messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
        # Shown once, on the page this redirects to (a reload then makes no second invitation).
        request.session[NEW_INVITATION] = signup.invitation_url(request, token)
        return redirect("users:invitations")
    context = {
        "form": form,
        "created_url": request.session.pop(NEW_INVITATION, None),
        "invitations": Invitation.objects.select_related("created_by", "used_by")[:200],
        "mode": signup.mode(),
    }
    return render(request, "users/invitations.html", context)


@operator_required(operators.MANAGE_INVITATIONS)
@require_POST
def revoke_invitation(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=invitation_id)
    if signup.revoke_invitation(invitation):
        audit.record(request, audit.INVITATION_REVOKED, f"invitation:{invitation.pk}")
        messages.success(request, _("Invitation revoked."))
    else:
        messages.error(request, _("That invitation was already used."))
    return redirect("users:invitations")


# --- The signed-in user's security page -------------------------------------------------


@login_required
def security(request: HttpRequest) -> HttpResponse:
    current = actions.session_id(request.session.session_key)
    sessions = actions.sessions_of(request.user)
    context = {
        "has_2fa": twofactor.has_device(request.user),
        "backup_codes_left": twofactor.backup_codes_left(request.user),
        "sessions": sessions,
        "current": current,
        "activity": audit.recent_for(request.user),
    }
    return render(request, "users/security.html", context)


@login_required
def twofactor_setup(request: HttpRequest) -> HttpResponse:
    device = twofactor.pending_totp(request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if twofactor.confirm_totp(device, form.cleaned_data["token"]):
            device.refresh_from_db()
            otp_login(request, device)
            codes = twofactor.new_backup_codes(request.user)
            audit.record(request, audit.TWOFACTOR_ENABLED, f"user:{request.user.get_username()}")
            notify.security_notice(request, request.user, _("two-factor sign-in was turned on"))
            messages.success(request, _("Two-factor sign-in is on."))
            return render(request, "users/backup_codes.html", {"codes": codes})
        wait = twofactor.wait_seconds(request.user, device)
        message = _("That code is not right. Check the time on your phone and try the newest code.")
        if wait:  # each wrong code doubles the delay before the next one
            message += " " + _("Wait %(n)d seconds before the next try.") % {"n": wait}
        form.add_error("token", message)
    context = {"form": form, "qr_svg": twofactor.qr_svg(device), "secret": twofactor.secret_text(device)}
    return render(request, "users/twofactor_setup.html", context)


@login_required
def twofactor_disable(request: HttpRequest) -> HttpResponse:
    form = PasswordConfirmForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        twofactor.disable(request.user)
        audit.record(request, audit.TWOFACTOR_DISABLED, f"user:{request.user.get_username()}")
        notify.security_notice(request, request.user, _("two-factor sign-in was turned off"))
        messages.success(request, _("Two-factor sign-in is off."))
        return redirect("users:security")
    return render(request, "users/confirm_password.html", {"form": form, "purpose": "disable_2fa"})


@login_required
def backup_codes(request: HttpRequest) -> HttpResponse:
    if not twofactor.has_device(request.user):
        return redirect("users:twofactor_setup")
    form = PasswordConfirmForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        codes = twofactor.new_backup_codes(request.user)
        audit.record(request, audit.BACKUP_CODES, f"user:{request.user.get_username()}")
        return render(request, "users/backup_codes.html", {"codes": codes})
    return render(request, "users/confirm_password.html", {"form": form, "purpose": "backup_codes"})


@login_required
@require_POST
def end_session(request: HttpRequest, session_id: str) -> HttpResponse:
    if session_id == actions.session_id(request.session.session_key):
        messages.error(request, _("To end this session, sign out."))
    elif actions.end_session(request.user, session_id):
        audit.record(request, audit.SESSION_ENDED, f"user:{request.user.get_username()}")
        messages.success(request, _("That session is signed out."))
    else:
        raise Http404
    return redirect("users:security")


@login_required
@require_POST
def end_other_sessions(request: HttpRequest) -> HttpResponse:
    count = actions.end_other_sessions(request.user, request.session.session_key)
    audit.record(request, audit.SESSION_ENDED, f"user:{request.user.get_username()}", count=count)
    messages.success(request, _("Signed out %(count)d other sessions.") % {"count": count})
    return redirect("users:security")


@login_required
def delete_account(request: HttpRequest) -> HttpResponse:
    form = PasswordConfirmForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)
        actions.delete_user(user, request=request, actor=user)
        messages.success(request, _("Your account and all of its mail are deleted."))
        return redirect("login")
    context = {"form": form, "purpose": "delete_account", "accounts": request.user.mail_accounts.count()}
    return render(request, "users/confirm_password.html", context)
