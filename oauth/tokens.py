"""Access tokens for accounts that sign in with OAuth2 (POP3 here, SMTP for sending).

``access_token_for(account)`` is the one entry point: it returns a token that
is valid for at least another minute, refreshing it with the stored refresh
token when needed. The refresh happens with the grant row locked, so two
workers that find the token expired at the same moment refresh it once and
both get the new one (providers that rotate refresh tokens would otherwise
revoke the whole grant on the second, reused refresh token).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, NamedTuple

from django.db import transaction
from django.utils import timezone

from accounts.models import MailAccount

from . import providers
from .models import Grant

if TYPE_CHECKING:
    from . import client

log = logging.getLogger(__name__)

# Refresh when the cached token expires within this margin (a POP3 session starts within it).
EXPIRY_MARGIN = dt.timedelta(seconds=60)


class ReconnectRequired(Exception):
    """The provider no longer honours the grant (revoked, expired, password changed): sign in again."""


class TokenUnavailable(Exception):
    """The token endpoint could not be reached or answered nonsense: try again later."""


def access_token_for(account: MailAccount) -> str:
    """A valid access token for ``account``'s grant; refreshes it (once across workers) when due."""
    grant = Grant.objects.filter(account_id=account.id).first()
    if grant is None:
        raise ReconnectRequired(f"{account.display_name} is not signed in with OAuth2.")
    if grant.revoked_at is not None:
        raise ReconnectRequired(_revoked_text(grant))
    if _fresh(grant):
        return grant.get_access_token()
    revoked = None
    with transaction.atomic():
        grant = Grant.objects.select_for_update().get(pk=grant.pk)
        if grant.revoked_at is not None:
            raise ReconnectRequired(_revoked_text(grant))
        if _fresh(grant):  # another worker refreshed it while we waited for the lock
            return grant.get_access_token()
        provider = providers.get(grant.provider)
        if provider is None or not provider.configured:
            raise TokenUnavailable(f"Sign-in with {grant.provider} is no longer configured on this site.")
        from . import client  # the HTTP client (authlib, requests) loads only when a token is refreshed

        try:
            tokens = client.refresh(provider, grant.get_refresh_token())
        except client.GrantRejected as exc:
            # Only answers about this user's grant revoke it; a client problem (invalid_client) is the admin's.
            if exc.error not in {"invalid_grant", "invalid_scope", "consent_required", "interaction_required"}:
                raise TokenUnavailable(f"{provider.name} refused to refresh the access token ({exc.error}).") from None
            revoked = mark_revoked(grant, exc.error)
        except client.ProviderUnavailable as exc:
            raise TokenUnavailable(f"{provider.name}: {exc}.") from None
        else:
            store_tokens(grant, tokens)
            log.info("refreshed oauth access token account=%s provider=%s", account.id, grant.provider)
            return tokens.access_token
    # Outside the block: the revocation is committed before we tell the caller.
    raise ReconnectRequired(_revoked_text(revoked))


def _fresh(grant: Grant) -> bool:
    expires = grant.access_token_expires_at
    return bool(grant.access_token_encrypted and expires and expires > timezone.now() + EXPIRY_MARGIN)


def expiry_of(tokens: client.TokenSet) -> dt.datetime:
    return dt.datetime.fromtimestamp(tokens.expires_at, tz=dt.UTC)


def store_tokens(grant: Grant, tokens: client.TokenSet) -> None:
    grant.set_access_token(tokens.access_token, expiry_of(tokens))
    if tokens.refresh_token:
        grant.set_refresh_token(tokens.refresh_token)
    grant.refreshed_at = timezone.now()
    grant.save(
        update_fields=["access_token_encrypted", "access_token_expires_at", "refresh_token_encrypted", "refreshed_at"]
    )


def mark_revoked(grant: Grant, reason: str) -> Grant:
    grant.revoked_at = timezone.now()
    grant.revoked_reason = reason[:200]
    grant.access_token_encrypted = ""
    grant.access_token_expires_at = None
    grant.save(update_fields=["revoked_at", "revoked_reason", "access_token_encrypted", "access_token_expires_at"])
    log.warning("oauth grant revoked account=%s provider=%s reason=%s", grant.account_id, grant.provider, reason)
    return grant


def _revoked_text(grant: Grant) -> str:
    name = getattr(providers.get(grant.provider), "name", grant.provider)
    return f"{name} no longer accepts webpop's access to {grant.email}."


def discard_access_token(account: MailAccount) -> None:
    """The mail server refused the cached token: the next use refreshes it (and learns if the grant is gone)."""
    Grant.objects.filter(account_id=account.id).update(access_token_encrypted="", access_token_expires_at=None)


class OAuthLogin(NamedTuple):
    mechanism: str  # XOAUTH2 or OAUTHBEARER
    two_step: bool  # the SASL response after the server's "+", not with AUTH


def oauth_login(account: MailAccount) -> OAuthLogin | None:
    """How ``account`` logs in with its grant; None for a password account."""
    row = Grant.objects.filter(account_id=account.id).values_list("mechanism", "provider").first()
    if row is None:
        return None
    provider = providers.get(row[1])
    return OAuthLogin(row[0], bool(provider and provider.sasl_two_step))
