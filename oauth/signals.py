"""When an account signed in with OAuth2 is removed, its refresh token is given back to the provider."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from accounts import crypto

from . import providers
from .models import Grant

log = logging.getLogger(__name__)


@receiver(pre_delete, sender=Grant)
def revoke_on_delete(sender, instance: Grant, **kwargs) -> None:
    if instance.revoked_at is not None:
        return  # the provider already dropped it
    try:
        refresh_token = instance.get_refresh_token()
    except crypto.DecryptionError:
        return
    key, account_id = instance.provider, instance.account_id
    # After the commit only: a rolled-back removal keeps a working grant.
    transaction.on_commit(lambda: revoke_quietly(key, refresh_token, account_id))


def revoke_quietly(key: str, refresh_token: str, account_id: int) -> None:
    """Best effort: the account is gone either way; the user can still remove webpop at the provider."""
    provider = providers.get_configured(key)
    if provider is None:
        return
    from . import client  # the HTTP client (authlib, requests) loads only when it is used

    try:
        client.revoke(provider, refresh_token)
    except client.OAuthClientError as exc:
        log.warning("could not revoke the oauth grant of removed account=%s provider=%s: %s", account_id, key, exc)
    else:
        log.info("revoked the oauth grant of removed account=%s provider=%s", account_id, key)
