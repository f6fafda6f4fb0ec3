from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount

from . import pagecache


class Folder(models.TextChoices):
    """System folders. A user folder is stored as ``u<id>`` of its UserFolder row."""

    INBOX = "inbox", _("Inbox")
    ARCHIVE = "archive", _("Archive")
    TRASH = "trash", _("Trash")
    SPAM = "spam", _("Spam")
    # Mail sent from webpop (outgoing/): stored here only, never on a POP3 server.
    SENT = "sent", _("Sent")
    # Emptied from the trash: kept as a small tombstone (no files) so its UIDL is
    # never fetched again, until the server copy is gone.
    PURGED = "purged", _("Deleted for good")


VISIBLE_FOLDERS = [(f, f.label) for f in (Folder.INBOX, Folder.SENT, Folder.ARCHIVE, Folder.SPAM, Folder.TRASH)]


class UserFolderQuerySet(pagecache.TouchingQuerySet):
    listed_fields = frozenset({"owner", "owner_id", "name"})  # folder pages list every folder


class UserFolder(pagecache.TouchesPages, models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_folders")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    objects = UserFolderQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="userfolder_owner_name_uniq")]

    def __str__(self) -> str:
        return self.name

    @property
    def slug(self) -> str:
        return f"u{self.id}"


class ServerState(models.TextChoices):
    ON_SERVER = "on_server", "On server"
    DELETE_PENDING = "delete_pending", "Delete pending"
    GONE = "gone", "Gone from server"


class MessageQuerySet(pagecache.TouchingQuerySet):
    # What a folder page shows of a message (mailbox.pagecache).
    listed_fields = frozenset(
        {
            "owner", "owner_id", "account", "account_id", "subject", "from_name", "from_email", "date", "snippet",
            "has_attachments", "seen", "flagged", "folder", "thread_id",
        }
    )  # fmt: skip


class Message(pagecache.TouchesPages, models.Model):
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
    # Readable body text (HTML converted), calendar summary and file names, for search.
    search_text = models.TextField(blank=True, default="")
    # Why the message is not shown in full (limits exceeded); the raw file holds everything.
    parse_notice = models.CharField(max_length=500, blank=True, default="")
    has_attachments = models.BooleanField(default=False)

    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    folder = models.CharField(max_length=20, default=Folder.INBOX, help_text="A Folder value or u<UserFolder id>.")
    deleted_at = models.DateTimeField(null=True, blank=True)
    server_state = models.CharField(max_length=20, choices=ServerState.choices, default=ServerState.ON_SERVER)
    received_at = models.DateTimeField(default=timezone.now)
    # The HTML body as mailbox/sanitize.py made it on first view (never at ingest), with the
    # sanitizer's VERSION; an older version is re-sanitized lazily. Meta: the markers' nonce,
    # remote image URLs, resolved cid: references, tracking pixels removed.
    html_cache = models.TextField(blank=True, default="")
    html_cache_version = models.PositiveIntegerField(default=0)
    html_cache_meta = models.JSONField(blank=True, default=dict)
    # Conversations (mailbox/threads.py): the id of the conversation's first message.
    thread_id = models.BigIntegerField(null=True, blank=True)
    message_key = models.CharField(max_length=255, blank=True, help_text="Message-ID without brackets, lower case.")
    thread_subject = models.CharField(max_length=255, blank=True, help_text="Subject without Re:/Fwd:, lower case.")
    # PostgreSQL full-text search document (GIN index); unused on SQLite, which uses FTS5.
    search_document = SearchVectorField(null=True, blank=True, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        constraints = [
            # Only among copies still on the server: once a message is gone, a
            # server that reuses its UIDL is delivering a new message.
            models.UniqueConstraint(
                fields=["account", "uidl"],
                condition=~models.Q(server_state="gone"),
                name="message_account_uidl_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["owner", "folder", "-date", "-id"], name="msg_owner_folder_date_idx"),
            models.Index(fields=["account", "folder", "-date", "-id"], name="msg_account_folder_date_idx"),
            models.Index(fields=["account", "server_state"], name="msg_account_server_state_idx"),
            models.Index(fields=["owner", "thread_id", "date"], name="msg_owner_thread_idx"),
            # Unread counts on every page: only unread rows, so it stays small.
            models.Index(fields=["owner", "folder", "id"], condition=models.Q(seen=False), name="msg_owner_unread_idx"),
            models.Index(fields=["owner", "message_key"], name="msg_owner_key_idx"),
            models.Index(fields=["owner", "thread_subject"], name="msg_owner_thread_subject_idx"),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"

    @property
    def sender(self) -> str:
        return self.from_name or self.from_email or gettext("(unknown sender)")


class MessageReference(models.Model):
    """One Message-ID a message refers to (References / In-Reply-To), to find replies fast."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey("Message", on_delete=models.CASCADE, related_name="reference_rows")
    ref = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "ref"], name="msgref_message_ref_uniq")]
        indexes = [models.Index(fields=["owner", "ref"], name="msgref_owner_ref_idx")]

    def __str__(self) -> str:
        return self.ref


class Attachment(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    content_id = models.CharField(max_length=255, blank=True)
    inline = models.BooleanField(default=False, help_text="Shown within the body (e.g. a cid: image).")
    sha256 = models.CharField(max_length=64, db_index=True)  # indexed for freeing unreferenced files
    stored_path = models.CharField(max_length=255, help_text="Relative to the mail store.")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename


class UidlAlias(models.Model):
    """A server UIDL whose content is already stored under another UIDL.

    Servers that re-list downloaded mail under new UIDLs (Gmail's ``recent:``
    mode) would otherwise make every copy a new message. Remembering the
    alias keeps the next sync from fetching it again, and lets deletion
    policies DELE it with the message it duplicates.
    """

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="uidl_aliases")
    uidl = models.CharField(max_length=255)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="aliases")
    server_state = models.CharField(max_length=20, choices=ServerState.choices, default=ServerState.ON_SERVER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "uidl"], condition=~models.Q(server_state="gone"), name="alias_account_uidl_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.uidl} → message {self.message_id}"


class FetchFailure(models.Model):
    """A message that could not be fetched or stored; quarantined after repeated failures."""

    class Reason(models.TextChoices):
        ERROR = "error", "Could not be fetched or stored"
        TOO_LARGE = "too_large", "Larger than the account's size limit"

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="fetch_failures")
    uidl = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.ERROR)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    subject = models.TextField(blank=True, help_text="From the headers, when they could be read.")
    sender = models.CharField(max_length=320, blank=True)
    raw_path = models.CharField(max_length=255, blank=True, help_text="Bytes kept for download, if any.")
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now)
    quarantined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "uidl"], name="failure_account_uidl_uniq")]
        ordering = ["-last_failed_at"]

    def __str__(self) -> str:
        return f"{self.uidl} ({self.get_reason_display()})"

    @property
    def is_quarantined(self) -> bool:
        return self.quarantined_at is not None


class SyncRun(models.Model):
    """One sync of one account, for the account page and the operators' dashboard."""

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="sync_runs")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    deleted_on_server = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    error_class = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["account", "-started_at"], name="syncrun_account_started_idx")]

    def __str__(self) -> str:
        return f"sync of account {self.account_id} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class RemoteImagePreference(models.Model):
    """Remote images a user chose to load (through the image proxy) without being asked.

    ``sender`` is a lower-cased address; blank means every sender (the per-user setting).
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sender = models.CharField(max_length=320, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "sender"], name="remote_image_pref_uniq")]
        ordering = ["sender"]

    def __str__(self) -> str:
        return self.sender or "(every sender)"


class Rule(models.Model):
    """An incoming-mail rule: "<field> contains <text>" → an action, applied at ingest (mailbox/rules.py)."""

    class Field(models.TextChoices):
        FROM = "from", "From"
        TO = "to", "To or Cc"
        SUBJECT = "subject", "Subject"

    class Action(models.TextChoices):
        MOVE = "move", "Move to folder"
        STAR = "star", "Star"
        READ = "read", "Mark as read"
        SPAM = "spam", "Mark as spam"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_rules")
    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="rules", help_text="Empty: all."
    )
    field = models.CharField(max_length=10, choices=Field.choices, default=Field.FROM)
    contains = models.CharField(max_length=200, help_text="Matched without regard to case.")
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.MOVE)
    folder = models.CharField(max_length=20, blank=True, help_text="For Move: a Folder value or u<UserFolder id>.")
    position = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["owner", "enabled"], name="rule_owner_enabled_idx")]

    def __str__(self) -> str:
        return f"{self.get_field_display()} contains “{self.contains}” → {self.get_action_display()}"
