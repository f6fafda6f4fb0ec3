from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import MailAccount


class Folder(models.TextChoices):
    INBOX = "inbox", "Inbox"
    ARCHIVE = "archive", "Archive"
    TRASH = "trash", "Trash"
    SPAM = "spam", "Spam"


class ServerState(models.TextChoices):
    ON_SERVER = "on_server", "On server"
    DELETE_PENDING = "delete_pending", "Delete pending"
    GONE = "gone", "Gone from server"


class Message(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="messages")
    uidl = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveBigIntegerField()
    raw_path = models.CharField(max_length=255, help_text="Relative to the mail store.")

    subject = models.TextField(blank=True)
    from_name = models.CharField(max_length=255, blank=True)
    from_email = models.CharField(max_length=320, blank=True)
    to = models.TextField(blank=True)
    cc = models.TextField(blank=True)
    date = models.DateTimeField()
    message_id = models.CharField(max_length=998, blank=True)
    in_reply_to = models.TextField(blank=True)
    references = models.TextField(blank=True)
    snippet = models.CharField(max_length=255, blank=True)
    has_attachments = models.BooleanField(default=False)

    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    folder = models.CharField(max_length=20, choices=Folder.choices, default=Folder.INBOX)
    deleted_at = models.DateTimeField(null=True, blank=True)
    server_state = models.CharField(max_length=20, choices=ServerState.choices, default=ServerState.ON_SERVER)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "uidl"], name="message_account_uidl_uniq")]
        indexes = [
            models.Index(fields=["owner", "folder", "-date", "-id"], name="msg_owner_folder_date_idx"),
            models.Index(fields=["account", "folder", "-date", "-id"], name="msg_account_folder_date_idx"),
            models.Index(fields=["account", "server_state"], name="msg_account_server_state_idx"),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"

    @property
    def sender(self) -> str:
        return self.from_name or self.from_email or "(unknown sender)"


class Attachment(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    content_id = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    stored_path = models.CharField(max_length=255, help_text="Relative to the mail store.")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename
