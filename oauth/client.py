"""Talking to a provider's authorization server (authlib's requests client).

Every call verifies TLS: the system CAs plus ``WEBPOP_OAUTH_CA_FILE``. Errors
come out as two kinds a caller can act on: ``GrantRejected`` (the provider
said no: invalid_grant, access_denied and the like) and ``ProviderUnavailable``
(network, TLS, a 5xx or a reply that is not a token).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from django.conf import settings
from requests.adapters import HTTPAdapter

from .providers import Provider


class OAuthClientError(Exception):
    """Base of the errors below; the message is safe to show (no tokens in it)."""


class GrantRejected(OAuthClientError):
    def __init__(self, error: str, description: str = ""):
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}" if description else error)


class ProviderUnavailable(OAuthClientError):
    pass


@dataclass
class TokenSet:
    access_token: str
    expires_at: float  # Unix time
    refresh_token: str = ""
    scope: str = ""
    id_token: str = ""


@dataclass
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str
    nonce: str


class _TLSAdapter(HTTPAdapter):
    """Verifies with our SSL context: the system CAs plus the configured extra CA file."""

    def __init__(self, context: ssl.SSLContext):
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)


@lru_cache(maxsize=4)
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def _session(provider: Provider, *, redirect_uri: str | None = None) -> OAuth2Session:
    session = OAuth2Session(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 (a method name)
        revocation_endpoint_auth_method="client_secret_post",
        default_timeout=settings.WEBPOP_OAUTH_TIMEOUT,
    )
    session.verify = True
    session.mount("https://", _TLSAdapter(_ssl_context(settings.WEBPOP_OAUTH_CA_FILE)))
    return session


def authorization_request(provider: Provider, redirect_uri: str) -> AuthorizationRequest:
    """Where to send the user's browser: an authorization-code request with PKCE (S256), state and nonce."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
    nonce = secrets.token_urlsafe(24)
    with _session(provider, redirect_uri=redirect_uri) as session:
        url, _state = session.create_authorization_url(
            provider.authorize_url, state=state, code_verifier=verifier, nonce=nonce, **dict(provider.authorize_params)
        )
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier, nonce=nonce)


def exchange_code(provider: Provider, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    """The token request of the authorization-code grant, proving PKCE with the verifier."""
    with _session(provider, redirect_uri=redirect_uri) as session:
        token = _call(
            lambda: session.fetch_token(
                provider.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
            )
        )
    result = _token_set(token)
    if not result.refresh_token:
        raise GrantRejected("no_refresh_token", f"{provider.name} did not grant offline access.")
    return result


def refresh(provider: Provider, refresh_token: str) -> TokenSet:
    with _session(provider) as session:
        token = _call(lambda: session.refresh_token(provider.token_url, refresh_token=refresh_token))
    result = _token_set(token)
    result.refresh_token = result.refresh_token or refresh_token  # providers may or may not rotate it
    return result


def revoke(provider: Provider, refresh_token: str) -> None:
    """Give a refresh token back (RFC 7009), so the provider's list of apps no longer shows webpop."""
    if not provider.revocation_url:
        return
    url, hint = provider.revocation_url, "refresh_token"
    with _session(provider) as session:
        response = _call(lambda: session.revoke_token(url, token=refresh_token, token_type_hint=hint))
    if response.status_code >= 400:
        raise ProviderUnavailable(f"the sign-in server answered HTTP {response.status_code}")


def _call(request):
    try:
        return request()
    except OAuthError as exc:
        raise GrantRejected(exc.error or "error", exc.description or "") from None
    except requests.exceptions.SSLError:
        raise ProviderUnavailable("the sign-in server's TLS certificate is not trusted") from None
    except requests.exceptions.Timeout:
        raise ProviderUnavailable("the sign-in server did not answer in time") from None
    except requests.exceptions.HTTPError as exc:
        raise ProviderUnavailable(f"the sign-in server answered HTTP {exc.response.status_code}") from None
    except requests.exceptions.RequestException as exc:
        raise ProviderUnavailable(f"cannot reach the sign-in server ({type(exc).__name__})") from None
    except ValueError:
        raise ProviderUnavailable("the sign-in server's answer was not a token") from None


def _token_set(token: dict) -> TokenSet:
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderUnavailable("the sign-in server's answer had no access token")
    expires_at = token.get("expires_at")
    if not isinstance(expires_at, int | float):
        expires_in = token.get("expires_in")
        expires_at = time.time() + (float(expires_in) if isinstance(expires_in, int | float | str) else 3600)
    return TokenSet(
        access_token=access,
        expires_at=float(expires_at),
        refresh_token=str(token.get("refresh_token") or ""),
        scope=str(token.get("scope") or ""),
        id_token=str(token.get("id_token") or ""),
    )


def id_token_claims(provider: Provider, id_token: str, *, nonce: str) -> dict:
    """The claims of an id_token received straight from the token endpoint.

    It came over a TLS connection we verified to the provider's token
    endpoint, so its signature need not be checked (OpenID Connect Core
    3.1.3.7, item 6); audience, issuer, expiry and nonce still are.
    """
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise GrantRejected("invalid_id_token", "the id_token is malformed") from None
    if not isinstance(claims, dict):
        raise GrantRejected("invalid_id_token", "the id_token is malformed")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if provider.client_id not in audiences:
        raise GrantRejected("invalid_id_token", "the id_token is for another application")
    if provider.issuers and claims.get("iss") not in provider.issuers:
        raise GrantRejected("invalid_id_token", "the id_token is from another issuer")
    if claims.get("nonce") != nonce:
        raise GrantRejected("invalid_id_token", "the id_token does not answer this sign-in")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < time.time() - 300:
        raise GrantRejected("invalid_id_token", "the id_token has expired")
    return claims


def mailbox_address(claims: dict) -> str:
    """The address to log in to POP3 with: ``email``, else Microsoft's ``preferred_username``."""
    for name in ("email", "preferred_username", "upn"):
        value = claims.get(name)
        if isinstance(value, str) and "@" in value and not any(c.isspace() or c in "\x00\x01" for c in value):
            return value.strip()
    raise GrantRejected("no_email", "the provider did not say which mailbox this is")
