from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, npgettext
from django.utils.translation import gettext_lazy as _

from webpop.lib.tls import normalize_fingerprint

from . import crypto
from .policy import Policy, validate_policy


class Security(models.TextChoices):
    SSL = "ssl", _("SSL/TLS (implicit, usually port 995)")
    STARTTLS = "starttls", _("STARTTLS (STLS, usually port 110)")
    NONE = "none", _("None: unencrypted (password sent in clear text)")


class AuthMechanism(models.TextChoices):
    SCRAM_SHA_256 = "SCRAM-SHA-256", _("SCRAM-SHA-256")
    SCRAM_SHA_1 = "SCRAM-SHA-1", _("SCRAM-SHA-1")
    CRAM_MD5 = "CRAM-MD5", _("CRAM-MD5")
    APOP = "APOP", _("APOP")
    PLAIN = "PLAIN", _("SASL PLAIN")
    LOGIN = "LOGIN", _("SASL LOGIN")
    USER = "USER", _("USER/PASS")


def validate_fingerprint(value: str) -> None:
    try:
        normalize_fingerprint(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


DEFAULT_PORTS = {Security.SSL: 995, Security.STARTTLS: 110, Security.NONE: 110}


class ErrorClass(models.TextChoices):
    """What went wrong on the last sync, in classes a user can act on."""

    DNS = "dns", _("Host name not found")
    REFUSED = "refused", _("Connection refused")
    TIMEOUT = "timeout", _("Timed out")
    NETWORK = "network", _("Network error")
    QUOTA = "quota", _("Storage quota full")
    DISK_FULL = "disk_full", _("Storage on this server full")
    TLS = "tls", _("TLS certificate not trusted")
    AUTH = "auth", _("Authentication failed")
    PRIVATE_ADDRESS = "private_address", _("Private address refused")
    TEMPORARY = "temporary", _("Server temporarily unavailable")
    PROTOCOL = "protocol", _("Server protocol error")
    PERMANENT = "permanent", _("Server error")
    CREDENTIALS = "credentials", _("Stored password unreadable")
    INTERNAL = "internal", _("Internal error")


class MailAccount(models.Model):
    # Changing one of these (or the password) makes what was learned about the server stale.
    SERVER_FIELDS = ("host", "port", "security", "username", "auth_mechanism", "tls_fingerprint")

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
        help_text="Leave empty to use the safest method the server offers and accepts.",
    )
    # With an automatic login method: the one that worked last time, tried first next time.
    working_auth_mechanism = models.CharField(max_length=16, choices=AuthMechanism.choices, blank=True, editable=False)
    # What the last good session learned about the server (mailbox/server_memory.py): the next one skips CAPA.
    server_profile = models.JSONField(default=dict, blank=True, editable=False)
    # SCRAM SaltedPasswords by salt and iteration count (mailbox/server_memory.py): password-equivalent, encrypted.
    scram_cache_encrypted = models.TextField(blank=True, default="", editable=False)
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
    # With an upper bound, the interval stretches while no mail comes and returns to poll_interval when
    # some does (mailbox/sync/schedule.py); empty: always poll_interval.
    poll_interval_max = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(60), MaxValueValidator(86400)],
        help_text="Longest time between checks while no mail comes. Empty: always the interval above.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    # Sync status.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_class = models.CharField(max_length=20, choices=ErrorClass.choices, blank=True)
    last_error = models.TextField(blank=True)
    next_poll_at = models.DateTimeField(default=timezone.now, db_index=True)
    current_interval = models.PositiveIntegerField(null=True, blank=True, editable=False)  # adaptive, in use
    # The server's listing when the last sync left nothing to do (mailbox/check.py): a poll that sees the
    # same listing stops there. "" after any failure or anything left to fetch or delete.
    listing_digest = models.CharField(max_length=64, blank=True, editable=False)
    # How many of the listing's first UIDLs the digest covers: a listing that only grew keeps that
    # prefix, so a sync compares only what was added (mailbox/sync/diff.py).
    listing_length = models.PositiveIntegerField(default=0, editable=False)
    deletion_due_at = models.DateTimeField(null=True, blank=True, editable=False)  # days policy: next DELE due
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
    # Spam filtering without rspamd (spam/provider.py): the provider's verdict in its headers, and
    # Authentication-Results only from this authserv-id (the provider's own; anyone can write the header).
    spam_trust_provider = models.BooleanField(default=False)
    spam_authserv_id = models.CharField(max_length=255, blank=True)
    sync_notes = models.TextField(blank=True, help_text="What the last sync learned about the server.")
    deliver_to = models.CharField(
        max_length=20, default="inbox", help_text="Folder new mail from this account goes to (e.g. skip the inbox)."
    )

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

    def same_server_condition(self) -> models.Q:
        """True for this account's row while its server settings and password are the ones in this object."""
        fields = {name: getattr(self, name) for name in self.SERVER_FIELDS}
        return models.Q(id=self.id, password_encrypted=self.password_encrypted, **fields)

    def forget_server(self) -> None:
        """Forget what was learned about the server (its settings or the password changed)."""
        self.working_auth_mechanism = ""
        self.server_profile = {}
        self.scram_cache_encrypted = ""

    @property
    def effective_max_message_bytes(self) -> int:
        return self.max_message_bytes or settings.WEBPOP_MAX_MESSAGE_BYTES

    @property
    def polling(self) -> dict[str, str]:
        """How often mail is checked, in words for the account page: the chosen rate, the slowest, the one in use."""
        slowest = self.poll_interval_max if (self.poll_interval_max or 0) > self.poll_interval else None
        current = self.current_interval or self.poll_interval
        return {
            "every": _every(self.poll_interval),
            "slowest": _every(slowest) if slowest else "",
            "now": _every(current) if slowest and current > self.poll_interval else "",
        }

    @property
    def is_syncing(self) -> bool:
        return bool(self.sync_lease_until and self.sync_lease_until > timezone.now())


def _every(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes == 1:
        return gettext("every minute")
    if minutes == 60:
        return gettext("every hour")
    if minutes < 60 or minutes % 60:
        return npgettext("how often", "every %(n)d minute", "every %(n)d minutes", minutes) % {"n": minutes}
    return npgettext("how often", "every %(n)d hour", "every %(n)d hours", minutes // 60) % {"n": minutes // 60}


# Where a message opens beside the list on a wide screen (Preferences); on a phone it always opens on its own page.
READING_PANE_CHOICES = [
    ("off", _("Off: open messages on their own page")),
    ("right", _("Right of the list")),
    ("below", _("Below the list")),
]


# How long a sent message waits, with an Undo, before it leaves (Preferences). 0: at once.
UNDO_SEND_CHOICES = [
    (0, _("Off")),
    (5, _("5 seconds")),
    (10, _("10 seconds")),
    (20, _("20 seconds")),
    (30, _("30 seconds")),
]
DEFAULT_UNDO_SEND_SECONDS = 10

# How new messages are written (Preferences); each message can switch. Rich by default: people expect
# formatting (their old webmail had it), and every rich message also carries a plain text version.
COMPOSE_FORMAT_CHOICES = [("rich", _("Rich text")), ("plain", _("Plain text"))]


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
    # Chosen in Preferences, or taken once from the browser at the first sign-in (the site's zone until then).
    time_zone_chosen = models.BooleanField(default=False)
    conversations = models.BooleanField(default=True, help_text="Group messages into conversations.")
    reading_pane = models.CharField(
        max_length=8,
        choices=READING_PANE_CHOICES,
        default="off",
        help_text="Where a message opens beside the list on a wide screen: nowhere (its own page), right or below.",
    )
    undo_send_seconds = models.PositiveSmallIntegerField(
        choices=UNDO_SEND_CHOICES,
        default=DEFAULT_UNDO_SEND_SECONDS,
        help_text="How long a sent message waits, with an Undo, before it leaves.",
    )
    inbox_tabs = models.BooleanField(
        default=False, help_text="Sort the Inbox into tabs: Primary, Updates, Promotions, Forums."
    )
    compose_format = models.CharField(
        max_length=5,
        choices=COMPOSE_FORMAT_CHOICES,
        default="rich",
        help_text="How new messages, replies and forwards start: rich text (with a plain text version) or plain text.",
    )

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
