"""State changes: an account signed in with OAuth2, and signing in again."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import actions as account_actions
from accounts.models import MailAccount
from outgoing import actions as outgoing_actions

from . import client, tokens
from .models import Grant
from .providers import Provider


@dataclass
class SignIn:
    """What the callback learned: who signed in and their tokens (kept encrypted in the session until saved)."""

    provider: str
    email: str
    subject: str
    tokens: client.TokenSet


def finish_sign_in(provider: Provider, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> SignIn:
    """Exchange the authorization code (proving PKCE) and learn which mailbox signed in.

    Raises ``client.GrantRejected`` or ``client.ProviderUnavailable``; nothing is stored here.
    """
    token_set = client.exchange_code(provider, code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
    claims = client.id_token_claims(provider, token_set.id_token, nonce=nonce)
    return SignIn(provider.key, client.mailbox_address(claims), str(claims.get("sub", "")), token_set)


class WrongIdentity(Exception):
    """Reconnect signed in as someone other than the account's mailbox."""


@transaction.atomic
def create_oauth_account(
    owner, provider: Provider, sign_in: SignIn, *, policy: str = "keep", label: str = "", deliver_to: str = "inbox"
) -> MailAccount:
    account = account_actions.create_account(
        owner,
        host=provider.pop3_host,
        port=provider.pop3_port,
        security=provider.pop3_security,
        username=sign_in.email,
        password="",  # never used: the account logs in with its grant
        policy=policy,
        label=label or sign_in.email,
        deliver_to=deliver_to,
    )
    grant = Grant(
        account=account,
        provider=provider.key,
        mechanism=provider.mechanism,
        subject=sign_in.subject,
        email=sign_in.email,
        scope=sign_in.tokens.scope or provider.scope,
    )
    grant.set_refresh_token(sign_in.tokens.refresh_token)
    grant.set_access_token(sign_in.tokens.access_token, tokens.expiry_of(sign_in.tokens))
    grant.refreshed_at = timezone.now()
    grant.save()
    outgoing_actions.configure_oauth(account)  # sends with the same grant: no SMTP step
    return account


def existing_grant(owner, sign_in: SignIn) -> Grant | None:
    """``owner``'s grant for the mailbox that just signed in, if they added it before."""
    grants = Grant.objects.filter(account__owner=owner, provider=sign_in.provider).select_related("account")
    return grants.filter(email__iexact=sign_in.email).order_by("id").first()


@transaction.atomic
def reconnect(account: MailAccount, sign_in: SignIn) -> Grant:
    """Replace a revoked or failing grant with a fresh sign-in as the same mailbox; poll again now."""
    grant = Grant.objects.select_for_update().get(account=account)
    same = (grant.subject and grant.subject == sign_in.subject) or grant.email.lower() == sign_in.email.lower()
    if grant.provider != sign_in.provider or not same:
        raise WrongIdentity(f"You signed in as {sign_in.email}, but this account is {grant.email}.")
    grant.set_refresh_token(sign_in.tokens.refresh_token)
    grant.set_access_token(sign_in.tokens.access_token, tokens.expiry_of(sign_in.tokens))
    grant.scope = sign_in.tokens.scope or grant.scope
    grant.subject = grant.subject or sign_in.subject
    grant.refreshed_at = timezone.now()
    grant.revoked_at = None
    grant.revoked_reason = ""
    grant.save()
    MailAccount.objects.filter(id=account.id).update(
        consecutive_failures=0, last_error_class="", last_error="", next_poll_at=timezone.now()
    )
    outgoing_actions.configure_oauth(account)  # the new grant may cover sending where the old one did not
    return grant
