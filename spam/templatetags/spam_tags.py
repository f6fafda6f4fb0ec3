"""The spam filter's parts of other apps' pages: the account page's panel, the Preferences section."""

from __future__ import annotations

from django import template

from .. import filtering
from ..forms import ProviderTrustForm, ThresholdsForm
from ..models import SpamSettings

register = template.Library()


@register.inclusion_tag("spam/account_panel.html", takes_context=True)
def spam_account_panel(context, account) -> dict:
    """Which filter judges this account's new mail, and (without rspamd) whether it trusts its provider."""
    initial = {"trust": account.spam_trust_provider, "authserv_id": account.spam_authserv_id}
    return {
        "csrf_token": context.get("csrf_token"),
        "account": account,
        "mode": filtering.mode_for(account).value,
        "form": ProviderTrustForm(initial=initial),
    }


@register.inclusion_tag("spam/preferences_section.html", takes_context=True)
def spam_preferences_section(context) -> dict:
    """The user's thresholds for rspamd's scores; nothing when the site has no rspamd."""
    if not filtering.rspamd_configured():
        return {"shown": False}
    saved = SpamSettings.objects.filter(user_id=context["request"].user.id).first()
    initial = {"spam_score": saved.spam_score, "probable_score": saved.probable_score} if saved else {}
    return {"shown": True, "csrf_token": context.get("csrf_token"), "form": ThresholdsForm(initial=initial)}
