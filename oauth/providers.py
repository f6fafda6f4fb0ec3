"""The OAuth2 providers webpop can sign in with, and their mail servers.

Client credentials come from the environment (WEBPOP_OAUTH_*_CLIENT_ID /
_CLIENT_SECRET) or, when unset there, from what an administrator entered in
the admin (ProviderCredentials). Defaults are the providers' public
endpoints; ``settings.WEBPOP_OAUTH_PROVIDERS`` overrides any field per
provider (a national cloud, or the local authorization server in the tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts import crypto

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    scope: str
    pop3_host: str
    pop3_port: int
    pop3_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    # The scope a grant needs to send over SMTP ("" when the provider offers no sending with the grant).
    smtp_scope: str = ""
    mechanism: str = "XOAUTH2"
    # RFC 7009 endpoint to give the refresh token back when an account is removed ("" when there is none).
    revocation_url: str = ""
    # Send the SASL response after the server's "+" instead of with AUTH (Outlook's POP3 wants this).
    sasl_two_step: bool = False
    # Accepted "iss" of the id_token; empty accepts any (Microsoft's "common" tenant issues per tenant).
    issuers: tuple[str, ...] = ()
    # Extra parameters of the authorization request (offline access, account chooser).
    authorize_params: tuple[tuple[str, str], ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def sends_with(self, granted_scope: str) -> bool:
        """Whether a grant of ``granted_scope`` (space-separated, as the token endpoint said) may send mail."""
        return bool(self.smtp_host and self.smtp_scope and self.smtp_scope in granted_scope.split())


def _credentials(key: str) -> tuple[str, str, str]:
    """``(client_id, client_secret, tenant)``: from the environment when set there, else from the admin."""
    client_id = getattr(settings, f"WEBPOP_OAUTH_{key.upper()}_CLIENT_ID", "") or ""
    if client_id:
        secret = getattr(settings, f"WEBPOP_OAUTH_{key.upper()}_CLIENT_SECRET", "") or ""
        return client_id, secret, settings.WEBPOP_OAUTH_MICROSOFT_TENANT or "common"
    from .models import ProviderCredentials

    row = ProviderCredentials.objects.filter(provider=key).first()
    if row is None:
        return "", "", "common"
    try:
        secret = row.get_client_secret()
    except crypto.DecryptionError:
        log.error("the %s client secret entered in the admin cannot be decrypted: enter it again", key)
        return "", "", "common"
    return row.client_id, secret, row.tenant or "common"


def _defaults(key: str) -> Provider | None:
    if key == "google":
        client_id, client_secret, _tenant = _credentials(key)
        return Provider(
            key="google",
            name="Google",
            client_id=client_id,
            client_secret=client_secret,
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            token_url="https://oauth2.googleapis.com/token",  # noqa: S106 (a URL)
            revocation_url="https://oauth2.googleapis.com/revoke",
            # openid email: the id_token then names the mailbox address.
            scope="https://mail.google.com/ openid email",
            pop3_host="pop.gmail.com",
            pop3_port=995,
            pop3_security="ssl",
            smtp_host="smtp.gmail.com",
            smtp_port=465,
            smtp_security="ssl",
            smtp_scope="https://mail.google.com/",
            issuers=("https://accounts.google.com", "accounts.google.com"),
            # A refresh token is only issued with offline access; consent makes Google issue a new one on reconnect.
            authorize_params=(("access_type", "offline"), ("prompt", "consent")),
        )
    if key == "microsoft":
        client_id, client_secret, tenant = _credentials(key)
        microsoft_base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
        return Provider(
            key="microsoft",
            name="Microsoft",
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=f"{microsoft_base}/authorize",
            token_url=f"{microsoft_base}/token",
            scope="https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send "
            "offline_access openid email",
            pop3_host="outlook.office365.com",
            pop3_port=995,
            pop3_security="ssl",
            smtp_host="smtp.office365.com",
            smtp_port=587,
            smtp_security="starttls",
            smtp_scope="https://outlook.office.com/SMTP.Send",
            authorize_params=(("prompt", "select_account"),),
            sasl_two_step=True,
        )
    return None


_FIELDS = {f.name for f in fields(Provider)}


def get(key: str) -> Provider | None:
    """The provider ``key`` with the site's overrides applied, or None if unknown."""
    provider = _defaults(key)
    if provider is None:
        return None
    overrides = dict(settings.WEBPOP_OAUTH_PROVIDERS.get(key) or {})
    unknown = set(overrides) - _FIELDS
    if unknown:
        raise ImproperlyConfigured(f"WEBPOP_OAUTH_PROVIDERS[{key!r}] has unknown fields: {sorted(unknown)}")
    if "authorize_params" in overrides:
        overrides["authorize_params"] = tuple(dict(overrides["authorize_params"]).items())
    if "issuers" in overrides:
        overrides["issuers"] = tuple(overrides["issuers"])
    provider = replace(provider, **overrides)
    for url in (provider.authorize_url, provider.token_url, provider.revocation_url):
        if url and not url.startswith("https://"):
            raise ImproperlyConfigured(f"OAuth endpoint {url!r} of {provider.name} must use https://.")
    return provider


def configured() -> list[Provider]:
    """Providers the administrator has set up, in display order."""
    found = (get(key) for key in ("google", "microsoft"))
    return [provider for provider in found if provider is not None and provider.configured]


def get_configured(key: str) -> Provider | None:
    provider = get(key)
    return provider if provider is not None and provider.configured else None


BUILT_IN_AUTHORIZE_ORIGINS = ("https://accounts.google.com", "https://login.microsoftonline.com")


def authorize_origins() -> list[str]:
    """Origins the sign-in forms send the browser to (for the pages' CSP form-action); no database query."""
    origins = list(BUILT_IN_AUTHORIZE_ORIGINS)
    for overrides in (settings.WEBPOP_OAUTH_PROVIDERS or {}).values():
        url = (overrides or {}).get("authorize_url", "")
        if url.startswith("https://"):
            origin = "/".join(url.split("/", 3)[:3])
            if origin not in origins:
                origins.append(origin)
    return origins
