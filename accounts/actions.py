"""State changes on mail accounts.

Folder pages name the owner's accounts (label, host, user name) and show their policy: a change
to those, or an account added or removed, replaces the owner's page version (webpop.lib.pagecache).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from webpop.lib import pagecache

from . import signals
from .models import MailAccount, Profile
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
    check_account_quota(owner, lock=True)
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
    pagecache.touch([owner.pk])
    return account


def check_account_quota(owner, *, lock: bool = False) -> None:
    """Raise ValidationError when ``owner`` has as many POP3 accounts as their quota allows.

    With ``lock`` (inside a transaction) the profile row is locked, so two adds at once
    cannot both take the last place.
    """
    if lock:
        profile, _created = Profile.objects.select_for_update().get_or_create(user=owner)
    else:
        profile = Profile.objects.filter(user=owner).first() or Profile(user=owner)
    limit = profile.effective_max_accounts
    if limit is not None and MailAccount.objects.filter(owner=owner).count() >= limit:
        raise ValidationError(
            _("You have reached your limit of %(limit)d POP3 accounts. Remove one, or ask the administrator.")
            % {"limit": limit},
            code="account_quota",
        )


SERVER_FIELDS = MailAccount.SERVER_FIELDS


@transaction.atomic
def update_account(account: MailAccount, *, password: str | None = None, **fields) -> MailAccount:
    """Change settings; new server settings or a new password mean: try again now."""
    changed_server = password is not None or any(
        name in fields and fields[name] != getattr(account, name) for name in SERVER_FIELDS
    )
    if "policy" in fields:
        fields["policy"] = str(Policy.parse(fields["policy"]))
    if any(
        name in fields and fields[name] != getattr(account, name) for name in ("poll_interval", "poll_interval_max")
    ):
        account.current_interval = None  # the new rate applies from the next check
    for name, value in fields.items():
        setattr(account, name, value)
    if password is not None:
        account.set_password(password)
    if changed_server:
        remembered = account.working_auth_mechanism
        account.forget_server()  # learned from other settings: learn again
        if "working_auth_mechanism" in fields:
            account.working_auth_mechanism = remembered  # just learned by the form's connection test
        account.consecutive_failures = 0
        account.last_error_class = ""
        account.last_error = ""
        account.next_poll_at = timezone.now()
    account.full_clean()
    account.save()
    pagecache.touch([account.owner_id])
    return account


@transaction.atomic
def set_enabled(account: MailAccount, enabled: bool) -> None:
    updates = {"enabled": enabled}
    if enabled:
        updates["next_poll_at"] = timezone.now()
    MailAccount.objects.filter(id=account.id).update(**updates)


@transaction.atomic
def delete_account(account: MailAccount) -> int:
    """Remove the account and everything fetched from it; the server is not touched.

    The stored files of every row that goes (messages, attachments, quarantined mail)
    are released (signals.account_deleting): freed once no other row references their content.
    """
    count = account.messages.count()
    signals.account_deleting.send(sender=MailAccount, account=account)
    account.delete()  # its rows go with it
    pagecache.touch([account.owner_id])
    return count
