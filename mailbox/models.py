from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount

# Background jobs live in their own module; importing them here registers them and keeps
# ``from mailbox.models import BulkJob`` working.
from .models_jobs import BackgroundJob, BulkJob, BulkJobItem, ImportJob  # noqa: F401


class Folder(models.TextChoices):
    """System folders. A user folder is stored as ``u<id>`` of its UserFolder row."""

    INBOX = "inbox", _("Inbox")
    ARCHIVE = "archive", _("Archive")
    TRASH = "trash", _("Trash")
    SPAM = "spam", _("Spam")
    # Mail sent from webpop (outgoing/): stored here only, never on a POP3 server.
    SENT = "sent", _("Sent")
    # Put away until Message.snoozed_until; a beat sweep returns it to the Inbox (actions.wake_due).
    SNOOZED = "snoozed", _("Snoozed")
    # Emptied from the trash: kept as a small tombstone (no files) so its UIDL is
    # never fetched again, until the server copy is gone.
    PURGED = "purged", _("Deleted for good")


VISIBLE_FOLDERS = [(f, f.label) for f in (Folder.INBOX, Folder.SENT, Folder.ARCHIVE, Folder.SPAM, Folder.TRASH)]

# "All mail": everything but what was thrown away or judged spam (and the tombstones). Written as
# three conditions, not NOT IN: the partial indexes below repeat it, and PostgreSQL proves a query
# may use such an index by matching its conditions one by one.
ALL_MAIL = ~models.Q(folder="trash") & ~models.Q(folder="spam") & ~models.Q(folder="purged")
# Where the Inbox lists a message: where it would be by date, or, once it came back from snooze,
# as if it arrived then (surfaced_at is never before the date).
INBOX_ORDER = Coalesce("surfaced_at", "date", output_field=models.DateTimeField())


class UserFolder(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_folders")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="userfolder_owner_name_uniq")]

    def __str__(self) -> str:
        return self.name

    @property
    def slug(self) -> str:
        return f"u{self.id}"


class ServerState(models.TextChoices):
    ON_SERVER = "on_server", _("On server")
    DELETE_PENDING = "delete_pending", _("Delete pending")
    GONE = "gone", _("Gone from server")


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
    # How the message lets its reader unsubscribe (mailbox/list_headers.py: Unsubscribe.as_json), read at
    # ingest; {} when it offers no way. NULL: stored before this was read; filled in on first view.
    list_unsubscribe = models.JSONField(null=True, blank=True, default=None)
    # Snooze (actions.snooze): in the Snoozed folder until this time, then back in the Inbox.
    snoozed_until = models.DateTimeField(null=True, blank=True)
    surfaced_at = models.DateTimeField(
        null=True, blank=True, help_text="When it last came back from snooze: the Inbox lists it as if it arrived then."
    )
    # Spam filtering's verdict (spam/scanning.py), after ingest: "spam" or "probable" (left in the Inbox,
    # marked), with rspamd's score when it scanned; empty for mail judged clean or not scanned.
    spam_verdict = models.CharField(max_length=10, blank=True, default="")
    spam_score = models.FloatField(null=True, blank=True)
    # Its Inbox tab (mailbox/categories.py Category): NULL is Primary, so most mail and mail stored before
    # tabs existed cost nothing; read at ingest, by the backfill (TabBackfill) and by the user's choice
    # for its sender (SenderCategory). Nullable: a NOT NULL column would rebuild the table on SQLite.
    category = models.PositiveSmallIntegerField(null=True, blank=True)
    # PostgreSQL full-text search document (GIN index); unused on SQLite, which uses FTS5.
    search_document = SearchVectorField(null=True, blank=True, editable=False)

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
            # The storage a user's quota counts (mailbox/quota.py), summed from the index alone: the rows
            # themselves are a page each, a 500,000-message mailbox 1-2.5 s to read.
            models.Index(fields=["owner", "size"], condition=~models.Q(folder="purged"), name="msg_owner_size_idx"),
            models.Index(fields=["owner", "thread_subject"], name="msg_owner_thread_subject_idx"),
            # The Inbox's order (INBOX_ORDER), for all accounts and for one.
            models.Index(
                models.F("owner"), INBOX_ORDER.desc(), models.F("id").desc(),
                condition=models.Q(folder="inbox"), name="msg_owner_inbox_order_idx",
            ),
            models.Index(
                models.F("account"), INBOX_ORDER.desc(), models.F("id").desc(),
                condition=models.Q(folder="inbox"), name="msg_account_inbox_order_idx",
            ),
            # The virtual views (mailbox/virtual.py), newest first; each holds only the rows it lists.
            models.Index(fields=["owner", "-date", "-id"], condition=ALL_MAIL, name="msg_owner_all_mail_idx"),
            models.Index(
                fields=["owner", "-date", "-id"], condition=ALL_MAIL & models.Q(flagged=True),
                name="msg_owner_starred_idx",
            ),
            models.Index(
                fields=["owner", "-date", "-id"], condition=ALL_MAIL & models.Q(seen=False),
                name="msg_owner_unread_date_idx",
            ),
            # The Snoozed view (soonest first) and the sweep that wakes what is due, for every user.
            models.Index(
                fields=["owner", "snoozed_until", "id"], condition=models.Q(folder="snoozed"),
                name="msg_owner_snoozed_idx",
            ),
            models.Index(fields=["snoozed_until"], condition=models.Q(folder="snoozed"), name="msg_snoozed_due_idx"),
            # Trash expiry for every user (actions.expire_trash): only the host's trash rows, not all its mail.
            models.Index(
                fields=["deleted_at", "owner"], condition=models.Q(folder="trash"), name="msg_trash_deleted_idx"
            ),
            # Inbox tabs (mailbox/tabs.py): each tab's unread count, and each tab's list in the Inbox's order.
            models.Index(
                fields=["owner", "category", "id"], condition=models.Q(folder="inbox", seen=False),
                name="msg_owner_tab_unread_idx",
            ),
            models.Index(
                models.F("owner"), models.F("category"), INBOX_ORDER.desc(), models.F("id").desc(),
                condition=models.Q(folder="inbox"), name="msg_owner_tab_order_idx",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        # Not the subject: this names the row wherever Django does (the admin, its log, the audit log).
        return f"message {self.pk} of account {self.account_id}"

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
        return f"attachment {self.pk} of message {self.message_id}"  # the file name is the sender's


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
        ERROR = "error", _("Could not be fetched or stored")
        TOO_LARGE = "too_large", _("Larger than the account's size limit")

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


class FileToFree(models.Model):
    """A stored file that rows stopped referencing, to free once nothing else does (``storage_gc``).

    Written in the transaction that drops the references, so a lost broker message or
    worker only delays the freeing: the beat sweep picks up every row whose time has come.
    """

    relpath = models.CharField(max_length=255, help_text="Relative to the mail store.")
    # Not before this time: when it was released, the file's grace period, or a sweep's claim.
    not_before = models.DateTimeField(default=timezone.now, db_index=True)
    claim = models.CharField(max_length=32, blank=True, help_text="The sweep working on it, while it does.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "files to free"

    def __str__(self) -> str:
        return self.relpath


class DamagedFile(models.Model):
    """A stored file found missing or not matching its content hash (``manage.py verifystore``, or a read).

    Pages never serve such a file as if it were good: they say the original is damaged. The row goes
    when a check finds the file whole again (restored, or repaired from the POP3 server).
    """

    class Kind(models.TextChoices):
        MISSING = "missing", _("Missing")
        CORRUPT = "corrupt", _("Corrupt")

    relpath = models.CharField(max_length=255, unique=True, help_text="Relative to the mail store.")
    sha256 = models.CharField(max_length=64, db_index=True, help_text="What its content should hash to.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    found_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.relpath} ({self.kind})"


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
        FROM = "from", _("From")
        TO = "to", _("To or Cc")
        SUBJECT = "subject", _("Subject")

    class Action(models.TextChoices):
        MOVE = "move", _("Move to folder")
        STAR = "star", _("Star")
        READ = "read", _("Mark as read")
        SPAM = "spam", _("Mark as spam")

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


class SavedSearch(models.Model):
    """A search a user keeps in the sidebar: a name and the query it runs (mailbox/search.py)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches")
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="savedsearch_owner_name_uniq")]

    def __str__(self) -> str:
        return self.name


class CalendarEntry(models.Model):
    """One event of a message's calendar attachment, by UID: which version it is, and the user's answer.

    Filled when a message's cards are shown (mailbox/invitations.py), so an older invitation can tell
    that a newer version or a cancellation of the same UID arrived. A row with an empty uid marks a
    calendar file with no event, so it is not read again.
    """

    class Answer(models.TextChoices):
        ACCEPTED = "ACCEPTED", _("Accepted")
        TENTATIVE = "TENTATIVE", _("Tentative")
        DECLINED = "DECLINED", _("Declined")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="calendar_entries")
    attachment = models.ForeignKey(Attachment, on_delete=models.CASCADE, related_name="calendar_entries")
    uid = models.CharField(max_length=255, blank=True)
    recurrence_id = models.CharField(max_length=64, blank=True)
    sequence = models.PositiveIntegerField(default=0)
    method = models.CharField(max_length=20, blank=True)
    answer = models.CharField(max_length=10, choices=Answer.choices, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["attachment", "uid", "recurrence_id"], name="calendarentry_attachment_event_uniq"
            )
        ]
        indexes = [models.Index(fields=["owner", "uid"], name="calendarentry_owner_uid_idx")]

    def __str__(self) -> str:
        return f"calendar entry {self.pk} of message {self.message_id}"


class SenderCategory(models.Model):
    """The Inbox tab a user chose for a sender ("Move to Promotions"): it decides for that sender's mail,
    stored and to come, before the classifier (mailbox/categories.py)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320, help_text="The sender's address in lower case.")
    category = models.PositiveSmallIntegerField(help_text="A mailbox.categories.Category value.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "address"], name="sendercategory_owner_address_uniq")]

    def __str__(self) -> str:
        return f"tab of a sender of user {self.owner_id}"


class TabBackfill(models.Model):
    """Mail stored before Inbox tabs existed, still to be sorted: every message with an id below
    ``below_id`` (newest first, in batches, by mailbox/tabs_backfill.py). One row, made by the
    migration that added tabs and deleted when the work is done; a beat sweep resumes it."""

    below_id = models.BigIntegerField()
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"tab backfill below {self.below_id}"
