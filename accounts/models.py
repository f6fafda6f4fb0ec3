from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from mailbox import pagecache
from mailbox.pop3 import normalize_fingerprint

from . import crypto
from .policy import Policy, validate_policy


class Security(models.TextChoices):
    SSL = "ssl", "SSL/TLS (implicit, usually port 995)"
    STARTTLS = "starttls", "STARTTLS (STLS, usually port 110)"
    NONE = "none", "None: unencrypted (password sent in clear text)"


class AuthMechanism(models.TextChoices):
    SCRAM_SHA_256 = "SCRAM-SHA-256", "SCRAM-SHA-256"
    SCRAM_SHA_1 = "SCRAM-SHA-1", "SCRAM-SHA-1"
    CRAM_MD5 = "CRAM-MD5", "CRAM-MD5"
    APOP = "APOP", "APOP"
    PLAIN = "PLAIN", "SASL PLAIN"
    LOGIN = "LOGIN", "SASL LOGIN"
    USER = "USER", "USER/PASS"


def validate_fingerprint(value: str) -> None:
    try:
        normalize_fingerprint(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


DEFAULT_PORTS = {Security.SSL: 995, Security.STARTTLS: 110, Security.NONE: 110}


class ErrorClass(models.TextChoices):
    """What went wrong on the last sync, in classes a user can act on."""

    DNS = "dns", "Host name not found"
    REFUSED = "refused", "Connection refused"
    TIMEOUT = "timeout", "Timed out"
    NETWORK = "network", "Network error"
    QUOTA = "quota", "Storage quota full"
    TLS = "tls", "TLS certificate not trusted"
    AUTH = "auth", "Authentication failed"
    PRIVATE_ADDRESS = "private_address", "Private address refused"
    TEMPORARY = "temporary", "Server temporarily unavailable"
    PROTOCOL = "protocol", "Server protocol error"
    PERMANENT = "permanent", "Server error"
    CREDENTIALS = "credentials", "Stored password unreadable"
    INTERNAL = "internal", "Internal error"


class MailAccountQuerySet(pagecache.TouchingQuerySet):
    # What folder pages show of an account (its name in the folder list; the policy, in the trash's notice).
    listed_fields = frozenset({"owner", "owner_id", "label", "host", "username", "policy"})


class MailAccount(pagecache.TouchesPages, models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_accounts")
    label = models.CharField(max_length=100, blank=True)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.SSL)
    username = models.CharField(max_length=255)
    password_encrypted = models.TextField(editable=False)
    auth_mechanism = models.CharField(
        max_length=16,
        choices=AuthMechanism.choices,
        blank=True,
        help_text="Leave empty to use the strongest method the server offers.",
    )
    tls_fingerprint = models.CharField(
        max_length=95,
        blank=True,
        validators=[validate_fingerprint],
        help_text="Pin the server's certificate by its SHA-256 fingerprint (for self-signed certificates).",
    )
    policy = models.CharField(max_length=32, default="keep", validators=[validate_policy])
    poll_interval = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(60), MaxValueValidator(86400)], help_text="Seconds between checks."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    # Sync status.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_class = models.CharField(max_length=20, choices=ErrorClass.choices, blank=True)
    last_error = models.TextField(blank=True)
    next_poll_at = models.DateTimeField(default=timezone.now, db_index=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Lease: at most one sync per account across all workers (invariant 4).
    sync_lease_until = models.DateTimeField(null=True, blank=True)
    sync_lease_token = models.CharField(max_length=32, blank=True)
    sync_lease_owner = models.CharField(max_length=255, blank=True, help_text="host:pid of the lease holder")
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_bytes = models.PositiveBigIntegerField(default=0)
    max_message_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Messages larger than this are not fetched (empty: the site default)."
    )
    sync_notes = models.TextField(blank=True, help_text="What the last sync learned about the server.")
    deliver_to = models.CharField(
        max_length=20, default="inbox", help_text="Folder new mail from this account goes to (e.g. skip the inbox)."
    )

    objects = MailAccountQuerySet.as_manager()

    class Meta:
        ordering = ["owner_id", "label", "id"]
        indexes = [models.Index(fields=["enabled", "next_poll_at"], name="account_due_idx")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.label or f"{self.username}@{self.host}"

    @property
    def parsed_policy(self) -> Policy:
        return Policy.parse(self.policy)

    def set_password(self, password: str) -> None:
        self.password_encrypted = crypto.encrypt(password)

    def get_password(self) -> str:
        return crypto.decrypt(self.password_encrypted)

    @property
    def effective_max_message_bytes(self) -> int:
        return self.max_message_bytes or settings.WEBPOP_MAX_MESSAGE_BYTES

    @property
    def is_syncing(self) -> bool:
        return bool(self.sync_lease_until and self.sync_lease_until > timezone.now())


class Profile(models.Model):
    """Per-user settings and limits."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    storage_quota_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: the site default (WEBPOP_DEFAULT_QUOTA_MB)."
    )
    max_accounts = models.PositiveIntegerField(
        null=True, blank=True, help_text="POP3 accounts this user may have. Empty: WEBPOP_MAX_ACCOUNTS."
    )
    send_rate_per_hour = models.PositiveIntegerField(
        null=True, blank=True, help_text="Messages this user may send per hour. Empty: WEBPOP_SEND_RATE_PER_HOUR."
    )
    time_zone = models.CharField(max_length=64, blank=True, help_text="IANA name, e.g. Europe/Berlin.")
    conversations = models.BooleanField(default=True, help_text="Group messages into conversations.")

    def __str__(self) -> str:
        return f"Profile of {self.user}"

    @property
    def effective_quota_bytes(self) -> int | None:
        """None means unlimited."""
        if self.storage_quota_bytes is not None:
            return self.storage_quota_bytes
        default_mb = settings.WEBPOP_DEFAULT_QUOTA_MB
        return default_mb * 1024 * 1024 if default_mb else None

    @property
    def effective_max_accounts(self) -> int | None:
        """None means unlimited."""
        if self.max_accounts is not None:
            return self.max_accounts
        return settings.WEBPOP_MAX_ACCOUNTS or None

    @property
    def effective_send_rate_per_hour(self) -> int:
        if self.send_rate_per_hour is not None:
            return self.send_rate_per_hour
        return settings.WEBPOP_SEND_RATE_PER_HOUR
