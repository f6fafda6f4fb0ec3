"""What staff can do from the dashboard; each action is logged as one structured line.

They reuse the functions the rest of webpop uses (accounts.services, the sync
task, sync.retry_failure) so the dashboard never has its own rules.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from accounts import services
from accounts.models import MailAccount
from mailbox import sync, tasks
from mailbox.models import FetchFailure
from users import backends

log = logging.getLogger("webpop.audit")


class ActionRefused(Exception):
    """The action makes no sense for this object (e.g. staff disabling themselves)."""


def _audit(actor: AbstractBaseUser, action: str, **target) -> None:
    details = " ".join(f"{key}={value}" for key, value in target.items())
    log.info("ops action=%s actor_id=%s actor=%s %s", action, actor.pk, actor.get_username(), details)


def sync_now(actor: AbstractBaseUser, account: MailAccount) -> None:
    if not account.enabled:
        raise ActionRefused("paused")
    tasks.sync_account.delay(account.id)
    _audit(actor, "sync_now", account_id=account.id)


def set_paused(actor: AbstractBaseUser, account: MailAccount, paused: bool) -> None:
    services.set_enabled(account, not paused)
    _audit(actor, "pause_account" if paused else "resume_account", account_id=account.id)


@transaction.atomic
def set_user_active(actor: AbstractBaseUser, user: AbstractBaseUser, active: bool) -> None:
    """Disabled users cannot sign in (their sessions stop working) and their accounts are not polled."""
    if user.pk == actor.pk and not active:
        raise ActionRefused("self")
    type(user).objects.filter(pk=user.pk).update(is_active=active)
    backends.forget([user.pk])  # an update sends no signal; the cached copy must not keep them signed in
    if active:  # polling resumes now rather than after the backoff the pause left
        MailAccount.objects.filter(owner_id=user.pk, enabled=True).update(next_poll_at=timezone.now())
    _audit(actor, "enable_user" if active else "disable_user", user_id=user.pk)


def retry_quarantined(actor: AbstractBaseUser, failure: FetchFailure) -> None:
    sync.retry_failure(failure)
    _audit(actor, "retry_quarantined", failure_id=failure.id, account_id=failure.account_id)
