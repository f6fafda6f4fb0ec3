"""What operators can do from the dashboard; each action is logged as one structured line.

They reuse the functions the rest of webpop uses (accounts.actions, mailbox.actions, the sync
task, sync.retry_failure) so the dashboard never has its own rules. Each checks
the actor's permission itself (not only the view), and nobody but a superuser
changes a superuser's user or accounts.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts import actions as account_actions
from accounts.models import MailAccount
from mailbox import actions as mailbox_actions
from mailbox import sync
from mailbox.models import FetchFailure
from users import backends, operators

log = logging.getLogger("webpop.audit")


class ActionRefused(Exception):
    """The action is not done to this object: ``reason`` is "self", "superuser" or "paused"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _require(actor: AbstractBaseUser, permission: str) -> None:
    if not actor.has_perm(permission):
        raise PermissionDenied(permission)


def _protect(actor: AbstractBaseUser, user_id: int) -> None:
    """Only a superuser changes a superuser (or their accounts): permissions never reach above their holder."""
    if actor.is_superuser:
        return
    if get_user_model().objects.filter(pk=user_id, is_superuser=True).exists():
        raise ActionRefused("superuser")


def _audit(actor: AbstractBaseUser, action: str, **target) -> None:
    details = " ".join(f"{key}={value}" for key, value in target.items())
    log.info("ops action=%s actor_id=%s actor=%s %s", action, actor.pk, actor.get_username(), details)


def sync_now(actor: AbstractBaseUser, account: MailAccount) -> None:
    _require(actor, operators.ACT_ON_ACCOUNTS)
    if not mailbox_actions.sync_now(account):
        raise ActionRefused("paused")
    _audit(actor, "sync_now", account_id=account.id)


def set_paused(actor: AbstractBaseUser, account: MailAccount, paused: bool) -> None:
    _require(actor, operators.ACT_ON_ACCOUNTS)
    _protect(actor, account.owner_id)
    account_actions.set_enabled(account, not paused)
    _audit(actor, "pause_account" if paused else "resume_account", account_id=account.id)


@transaction.atomic
def set_user_active(actor: AbstractBaseUser, user: AbstractBaseUser, active: bool) -> None:
    """Disabled users cannot sign in (their sessions stop working) and their accounts are not polled.

    Nobody disables themselves (so the last superuser cannot be shut out by their own hand), and
    only a superuser disables or re-enables a superuser.
    """
    _require(actor, operators.DISABLE_USERS)
    if user.pk == actor.pk and not active:
        raise ActionRefused("self")
    rows = get_user_model().objects.filter(pk=user.pk)
    if not actor.is_superuser:
        rows = rows.filter(is_superuser=False)  # in the update itself: no window between check and change
    if not rows.update(is_active=active):
        raise ActionRefused("superuser")
    backends.forget([user.pk])  # an update sends no signal; the cached copy must not keep them signed in
    if active:  # polling resumes now rather than after the backoff the pause left
        MailAccount.objects.filter(owner_id=user.pk, enabled=True).update(next_poll_at=timezone.now())
    _audit(actor, "enable_user" if active else "disable_user", user_id=user.pk)


def retry_quarantined(actor: AbstractBaseUser, failure: FetchFailure) -> None:
    _require(actor, operators.ACT_ON_ACCOUNTS)
    sync.retry_failure(failure)
    mailbox_actions.free_released_after_commit()  # its kept bytes, released by the retry
    _audit(actor, "retry_quarantined", failure_id=failure.id, account_id=failure.account_id)
