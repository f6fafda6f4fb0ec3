"""State changes on mail accounts."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import MailAccount
from .policy import Policy


@transaction.atomic
def create_account(
    owner,
    *,
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    policy: str = "keep",
    label: str = "",
    poll_interval: int = 300,
) -> MailAccount:
    account = MailAccount(
        owner=owner,
        label=label,
        host=host.strip().lower(),
        port=port,
        security=security,
        username=username,
        policy=str(Policy.parse(policy)),  # one spelling per policy
        poll_interval=poll_interval,
        next_poll_at=timezone.now(),
    )
    account.set_password(password)
    account.full_clean()
    account.save()
    return account
