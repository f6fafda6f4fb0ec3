from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import crypto
from accounts.models import MailAccount


class SmtpSecurity(models.TextChoices):
    SSL = "ssl", _("SSL/TLS (implicit, usually port 465)")
    STARTTLS = "starttls", _("STARTTLS (usually port 587)")
    NONE = "none", _("None: unencrypted (password sent in clear text)")


DEFAULT_SMTP_PORTS = {SmtpSecurity.SSL: 465, SmtpSecurity.STARTTLS: 587, SmtpSecurity.NONE: 25}


class SmtpAuth(models.TextChoices):
    SAME = "same", _("The same user name and password as for receiving (POP3)")
    SEPARATE = "separate", _("A separate user name and password")
    OAUTH2 = "oauth2", _("OAuth2 (the account's sign-in with the provider)")


class SmtpSettings(models.Model):
    """How one mail account sends: its SMTP server and the identity its mail goes out under."""

    account = models.OneToOneField(MailAccount, on_delete=models.CASCADE, related_name="smtp")
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    security = models.CharField(max_length=10, choices=SmtpSecurity.choices, default=SmtpSecurity.STARTTLS)
    auth = models.CharField(max_length=10, choices=SmtpAuth.choices, default=SmtpAuth.SAME)
    username = models.CharField(max_length=255, blank=True, help_text="Only for a separate login.")
    password_encrypted = models.TextField(blank=True, editable=False)
    from_name = models.CharField(max_length=255, blank=True)
    from_email = models.EmailField(max_length=320)
    signature = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "SMTP settings"
        verbose_name_plural = "SMTP settings"

    def __str__(self) -> str:
        return f"{self.from_email} via {self.host}:{self.port}"

    def set_password(self, password: str) -> None:
        self.password_encrypted = crypto.encrypt(password) if password else ""

    def get_password(self) -> str:
        return crypto.decrypt(self.password_encrypted) if self.password_encrypted else ""


class SignaturePlacement(models.TextChoices):
    ABOVE = "above", _("Above the quoted text")
    BELOW = "below", _("Below the quoted text")


class Identity(models.Model):
    """An address an account sends as (its main one or an alias), with its own name and signature.

    The default identity mirrors the SMTP settings' From name, address and signature (see outgoing.identities).
    """

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="identities")
    address = models.EmailField(max_length=320)
    name = models.CharField(max_length=255, blank=True)
    signature = models.TextField(blank=True)
    # The signature in rich text (editor HTML, richtext.clean); empty: the text one serves rich messages too.
    signature_html = models.TextField(blank=True)
    signature_placement = models.CharField(
        max_length=10, choices=SignaturePlacement.choices, default=SignaturePlacement.ABOVE
    )
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_default", "address", "id"]
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=models.Q(is_default=True), name="outgoing_one_default_identity"
            ),
            models.UniqueConstraint("account", Lower("address"), name="outgoing_identity_address_once"),
        ]

    def __str__(self) -> str:
        return f"identity {self.pk} of account {self.account_id}"

    @property
    def label(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


class OutgoingState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    QUEUED = "queued", _("Waiting to be sent")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Not sent")


class OutgoingMessage(models.Model):
    """A message being written or sent: draft → queued → sending → sent, or failed (the Outbox).

    On queueing, the exact bytes are built once (``raw``), so every retry sends
    the same Message-ID and Date, and the copy filed in Sent is what the server got.
    """

    class Kind(models.TextChoices):
        NEW = "new", _("New message")
        REPLY = "reply", _("Reply")
        REPLY_ALL = "reply_all", _("Reply all")
        FORWARD = "forward", _("Forward")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="outgoing")
    state = models.CharField(max_length=10, choices=OutgoingState.choices, default=OutgoingState.DRAFT)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.NEW)
    to = models.TextField(blank=True)
    cc = models.TextField(blank=True)
    bcc = models.TextField(blank=True)
    subject = models.TextField(blank=True)
    body = models.TextField(blank=True)
    # Rich text: the editor's HTML (richtext.clean, pictures as cid:), sent with ``body`` as its text version.
    # Empty: a plain text message.
    body_html = models.TextField(blank=True)
    # Sent as this identity of the account; empty: the account's main identity (its SMTP settings).
    identity = models.ForeignKey(Identity, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source = models.ForeignKey(
        "mailbox.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", help_text="Replied to."
    )
    in_reply_to = models.TextField(blank=True)
    references = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    raw = models.BinaryField(null=True, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="The server's answer to the last try.")
    error_class = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    # Queued: when it may be tried (again). Beat's sweep publishes its task from here (outgoing.send.dispatch_due),
    # so a retry waits on this row, not in the broker.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When its task was last published.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_message = models.ForeignKey(
        "mailbox.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A new message's editor page carries a random key, so every save of it (autosave, Save, Send racing
    # each other) reaches the same row instead of creating one draft each. Kept for the row's life.
    compose_key = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "state", "-updated_at"], name="outgoing_owner_state_idx"),
            models.Index(fields=["owner", "sent_at"], name="outgoing_owner_sent_idx"),
            models.Index(fields=["state", "next_attempt_at"], name="outgoing_due_idx"),
            models.Index(fields=["owner", "source", "kind", "state"], name="outgoing_reply_draft_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "compose_key"], condition=~models.Q(compose_key=""), name="outgoing_one_row_per_key"
            )
        ]

    def __str__(self) -> str:
        # Not the subject: this names the row wherever Django does (the admin, its log, the audit log).
        return f"outgoing message {self.pk}"


class OutgoingAttachment(models.Model):
    """A file attached to a draft. The bytes live here until the message is sent."""

    message = models.ForeignKey(OutgoingMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    data = models.BinaryField()
    # A picture in the rich text (its Content-ID, without brackets), sent only while the text shows it.
    content_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attachment {self.pk} of outgoing message {self.message_id}"
