"""Which spam filter judges an account's new mail, and the name rspamd knows each user by."""

from __future__ import annotations

import enum

from django.conf import settings

from accounts.models import MailAccount

from . import rspamd


class Mode(enum.StrEnum):
    RSPAMD = "rspamd"  # the site's rspamd scans every new message; "Spam" / "Not spam" train it
    PROVIDER = "provider"  # the account's provider's verdict in the headers (X-Spam-Flag and the like)
    RULES = "rules"  # only the user's own rules (mailbox/rules.py)

    @property
    def scans(self) -> bool:
        return self is not Mode.RULES


def rspamd_configured() -> bool:
    return bool(settings.WEBPOP_RSPAMD_URL)


def mode_for(account: MailAccount) -> Mode:
    if rspamd_configured():
        return Mode.RSPAMD
    if account.spam_trust_provider:
        return Mode.PROVIDER
    return Mode.RULES


def client() -> rspamd.Client:
    return rspamd.Client(
        settings.WEBPOP_RSPAMD_URL,
        controller_url=settings.WEBPOP_RSPAMD_CONTROLLER_URL,
        password=settings.WEBPOP_RSPAMD_PASSWORD,
        timeout=settings.WEBPOP_RSPAMD_TIMEOUT,
    )


def bayes_user(owner_id: int) -> str:
    """Whose Bayes statistics a message counts in: rspamd keys them by this ``Deliver-To`` (deploy/rspamd)."""
    return f"webpop-user-{owner_id}"
