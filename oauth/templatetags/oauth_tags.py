"""Hooks into the accounts pages: sign-in buttons and an account's OAuth2 status."""

from __future__ import annotations

from django import template

from .. import providers
from ..models import Grant

register = template.Library()


@register.inclusion_tag("oauth/buttons.html", takes_context=True)
def oauth_buttons(context) -> dict:
    """ "Sign in with …" for each provider the administrator has configured (nothing otherwise)."""
    return {"providers": providers.configured(), "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("oauth/account_panel.html", takes_context=True)
def oauth_account_panel(context, account) -> dict:
    """How an OAuth2 account signs in and, when the grant is revoked or refused, a Reconnect button."""
    grant = Grant.objects.filter(account_id=account.id).first()
    provider = providers.get(grant.provider) if grant else None
    return {
        "account": account,
        "grant": grant,
        "provider_name": provider.name if provider else (grant.provider if grant else ""),
        "show_reconnect": bool(grant and (grant.needs_reconnect or account.last_error_class == "auth")),
        "csrf_token": context.get("csrf_token"),
    }
