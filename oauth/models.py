from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts import crypto
from accounts.models import MailAccount


class ProviderKey(models.TextChoices):
    GOOGLE = "google", "Google"
    MICROSOFT = "microsoft", "Microsoft"


class Mechanism(models.TextChoices):
    XOAUTH2 = "XOAUTH2", "XOAUTH2"
    OAUTHBEARER = "OAUTHBEARER", "OAUTHBEARER"


class Grant(models.Model):
    """A mail account's OAuth2 authorization: it logs in with tokens instead of a password.

    The refresh token and the cached access token are encrypted at rest like
    passwords (accounts.crypto). ``revoked_at`` is set when the provider answers
    invalid_grant: nothing works until the user signs in again ("Reconnect").
    """

    account = models.OneToOneField(MailAccount, on_delete=models.CASCADE, related_name="oauth_grant")
    provider = models.CharField(max_length=20, choices=ProviderKey.choices)
    mechanism = models.CharField(max_length=16, choices=Mechanism.choices, default=Mechanism.XOAUTH2)
    subject = models.CharField(max_length=255, blank=True, help_text="The provider's id of the signed-in user.")
    email = models.CharField(max_length=320)
    scope = models.TextField(blank=True)
    refresh_token_encrypted = models.TextField(editable=False)
    access_token_encrypted = models.TextField(blank=True, editable=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.provider} grant for {self.email}"

    @property
    def needs_reconnect(self) -> bool:
        return self.revoked_at is not None

    def set_refresh_token(self, token: str) -> None:
        self.refresh_token_encrypted = crypto.encrypt(token)

    def get_refresh_token(self) -> str:
        return crypto.decrypt(self.refresh_token_encrypted)

    def set_access_token(self, token: str, expires_at) -> None:
        self.access_token_encrypted = crypto.encrypt(token)
        self.access_token_expires_at = expires_at

    def get_access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted) if self.access_token_encrypted else ""


class ProviderCredentials(models.Model):
    """Client credentials an administrator entered in the admin (the environment's, when set, win)."""

    provider = models.CharField(max_length=20, choices=ProviderKey.choices, unique=True)
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField(editable=False)
    tenant = models.CharField(
        max_length=100, blank=True, help_text="Microsoft only: your directory (tenant) id; empty means “common”."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "OAuth2 client credentials"
        verbose_name_plural = "OAuth2 client credentials"

    def __str__(self) -> str:
        return f"{self.get_provider_display()} client {self.client_id}"

    def set_client_secret(self, secret: str) -> None:
        self.client_secret_encrypted = crypto.encrypt(secret)

    def get_client_secret(self) -> str:
        return crypto.decrypt(self.client_secret_encrypted)
