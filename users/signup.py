"""Sign-up: the site's mode, invitation links and e-mail verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from . import backends
from .models import Invitation

CLOSED, INVITE, OPEN = "closed", "invite", "open"


def mode() -> str:
    return settings.WEBPOP_SIGNUP


def invitations_accepted() -> bool:
    return mode() in (INVITE, OPEN)


class InvitationUnavailable(Exception):
    """The link was used, revoked or has expired."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def create_invitation(created_by, *, email: str = "", days: int | None = None) -> tuple[Invitation, str]:
    """A new invitation and its token (shown once: only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        token_hash=_hash(token),
        email=email,
        created_by=created_by,
        expires_at=timezone.now() + dt.timedelta(days=days or settings.WEBPOP_INVITATION_DAYS),
    )
    return invitation, token


def find_invitation(token: str) -> Invitation:
    invitation = Invitation.objects.filter(token_hash=_hash(token)).first()
    if invitation is None or invitation.used_at or invitation.expires_at <= timezone.now():
        raise InvitationUnavailable
    return invitation


@transaction.atomic
def accept_invitation(token: str, *, username: str, email: str, password: str):
    """Claim the invitation (once, however many people race for it) and create the user."""
    now = timezone.now()
    invitation = Invitation.objects.filter(token_hash=_hash(token)).first()
    if invitation is None:
        raise InvitationUnavailable
    claimed = Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
    if claimed != 1:
        raise InvitationUnavailable
    user = get_user_model().objects.create_user(username, invitation.email or email, password)
    Invitation.objects.filter(pk=invitation.pk).update(used_by=user)
    return user


@transaction.atomic
def revoke_invitation(invitation: Invitation) -> bool:
    """Expire an unused invitation now; False when it was already used."""
    return bool(Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(expires_at=timezone.now()))


def invitation_url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("users:invitation", args=[token]))


def send_invitation(request: HttpRequest, invitation: Invitation, token: str) -> None:
    context = {"url": invitation_url(request, token), "invitation": invitation, "site": request.get_host()}
    _send(invitation.email, "users/email/invitation_subject.txt", "users/email/invitation.txt", context)


# --- Open sign-up with e-mail verification -----------------------------------------


class VerificationTokenGenerator(PasswordResetTokenGenerator):
    """Valid until the account is active (single use) and for PASSWORD_RESET_TIMEOUT at most."""

    key_salt = "users.signup.VerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        # last_login: a user an administrator deactivated later cannot reactivate themselves.
        login = "" if user.last_login is None else user.last_login.replace(microsecond=0, tzinfo=None)
        return f"{user.pk}{user.is_active}{login}{user.email}{user.password}{timestamp}"


verification_tokens = VerificationTokenGenerator()


@transaction.atomic
def register(*, username: str, email: str, password: str):
    """An inactive user who can sign in once they follow the link e-mailed to them."""
    user = get_user_model().objects.create_user(username, email, password)
    user.is_active = False
    user.save(update_fields=["is_active"])
    return user


def email_in_use(email: str) -> bool:
    return get_user_model().objects.filter(email__iexact=email).exists()


def send_verification(request: HttpRequest, user) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    url = request.build_absolute_uri(reverse("users:verify", args=[uid, verification_tokens.make_token(user)]))
    context = {"url": url, "user": user, "site": request.get_host()}
    _send(user.email, "users/email/verify_subject.txt", "users/email/verify.txt", context)


def awaiting_verification(email: str):
    """Users with this address who signed up and never verified it."""
    return get_user_model().objects.filter(email__iexact=email, is_active=False, last_login__isnull=True)


def send_already_registered(request: HttpRequest, email: str) -> None:
    """Someone signed up with an address that has an account: tell its owner, not the visitor."""
    context = {"reset_url": request.build_absolute_uri(reverse("password_reset")), "site": request.get_host()}
    _send(email, "users/email/already_registered_subject.txt", "users/email/already_registered.txt", context)


def user_for_verification(uidb64: str, token: str):
    """The inactive user the link is for, or None when the link is wrong, used or expired."""
    try:
        pk = urlsafe_base64_decode(uidb64).decode()
        user = get_user_model().objects.get(pk=pk, is_active=False)
    except (ValueError, TypeError, OverflowError, get_user_model().DoesNotExist):
        return None
    return user if verification_tokens.check_token(user, token) else None


@transaction.atomic
def activate(user) -> bool:
    activated = bool(get_user_model().objects.filter(pk=user.pk, is_active=False).update(is_active=True))
    backends.forget([user.pk])
    return activated


def _send(to: str, subject_template: str, body_template: str, context: dict) -> None:
    subject = "".join(render_to_string(subject_template, context).splitlines())
    send_mail(subject, render_to_string(body_template, context), None, [to])
