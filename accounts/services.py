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
    **extra,
) -> MailAccount:
    """``extra``: optional settings such as auth_mechanism, tls_fingerprint, max_message_bytes."""
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
        **extra,
    )
    account.set_password(password)
    account.full_clean()
    account.save()
    return account


SERVER_FIELDS = ("host", "port", "security", "username", "auth_mechanism", "tls_fingerprint")


@transaction.atomic
def update_account(account: MailAccount, *, password: str | None = None, **fields) -> MailAccount:
    """Change settings; new server settings or a new password mean: try again now."""
    changed_server = password is not None or any(
        name in fields and fields[name] != getattr(account, name) for name in SERVER_FIELDS
    )
    if "policy" in fields:
        fields["policy"] = str(Policy.parse(fields["policy"]))
    for name, value in fields.items():
        setattr(account, name, value)
    if password is not None:
        account.set_password(password)
    if changed_server:
        account.consecutive_failures = 0
        account.last_error_class = ""
        account.last_error = ""
        account.next_poll_at = timezone.now()
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def set_enabled(account: MailAccount, enabled: bool) -> None:
    updates = {"enabled": enabled}
    if enabled:
        updates["next_poll_at"] = timezone.now()
    MailAccount.objects.filter(id=account.id).update(**updates)


@transaction.atomic
def delete_account(account: MailAccount) -> int:
    """Remove the account and everything fetched from it; the server is not touched."""
    from mailbox import store
    from mailbox.models import Message

    count = store.purge_messages(Message.objects.filter(account=account))
    account.delete()
    return count
