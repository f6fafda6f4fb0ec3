"""The models of work done in the background, one worker at a time: mail imports and bulk actions.

Defined here to keep ``mailbox.models`` short; ``mailbox.models`` imports them,
so Django (and every importer) finds them there as before.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import MailAccount


class BackgroundJob(models.Model):
    """What a job run in the background by one worker at a time has: a lease and its attempts.

    A worker takes the lease with conditional updates (webpop/lib/leases.take_job) and holds it
    (``lease_token`` until ``lease_until``) while it runs; a beat sweep gives jobs whose lease
    lapsed, or whose holder died, to another worker.
    """

    ACTIVE: tuple[str, ...] = ()

    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.CharField(max_length=255, blank=True, help_text="host:pid of the worker running it.")
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE


class ImportJob(BackgroundJob):
    """An upload of .eml / .mbox files being imported in the background (mailbox/importer.py).

    The uploads are kept in the mail storage (``files``: name, storage path,
    size) until the job ends. ``file_index`` / ``file_offset`` is the resume
    point: everything before it is committed, together with the counts, so a
    killed import continues there and stores nothing twice. A worker running
    the job holds its lease (``lease_token`` until ``lease_until``).
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("Waiting")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    ACTIVE = (State.QUEUED, State.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="import_jobs")
    folder = models.CharField(max_length=20, help_text="A Folder value or u<UserFolder id>.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    files = models.JSONField(default=list, help_text='[{"name", "path", "size"}] in the order they are imported.')
    total_bytes = models.PositiveBigIntegerField(default=0)
    bytes_done = models.PositiveBigIntegerField(default=0, help_text="Gone through so far, for the progress bar.")
    file_index = models.PositiveIntegerField(default=0)
    file_offset = models.PositiveBigIntegerField(default=0)
    file_messages = models.PositiveIntegerField(default=0, help_text="Messages of the current file before the offset.")
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    refusals = models.JSONField(default=list, blank=True, help_text="The first refused items and why.")
    error_class = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="importjob_owner_created_idx"),
            models.Index(
                fields=["state"], condition=models.Q(state__in=["queued", "running"]), name="importjob_active_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"import {self.id} of {self.names}"

    @property
    def names(self) -> str:
        return ", ".join(f.get("name", "") for f in self.files)


class BulkJob(BackgroundJob):
    """An action on every message of a folder, view or search ("Select all N"), done in the background.

    Made by actions.start_bulk_job; mailbox/bulkjobs.py runs it in batches, in id order up to
    ``last_id`` (the newest message when it was asked for: mail arriving meanwhile is not
    touched). ``cursor`` is the resume point: each batch commits its changes, the
    BulkJobItem rows that undo them and the new cursor together, so a job a worker dropped
    goes on where it was (a beat sweep, invariant 8) and changes nothing twice. An undo is a
    job of its own (``undo_of``) that walks the items of the job it undoes.
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Stopped")
        FAILED = "failed", _("Failed")

    ACTIVE = (State.QUEUED, State.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # read, unread, star, unstar, move (to ``folder``) or undo (of ``undo_of``).
    action = models.CharField(max_length=10)
    folder = models.CharField(max_length=20, blank=True, help_text="For move: a Folder value or u<UserFolder id>.")
    criteria = models.JSONField(default=dict, help_text='Which messages: {"folder"|"view"|"query", "account"}.')
    undo_of = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="undos")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    last_id = models.BigIntegerField(default=0, help_text="Messages (or items, for undo) up to this id.")
    cursor = models.BigIntegerField(default=0, help_text="Done up to this id, committed with the batch.")
    total = models.PositiveIntegerField(default=0, help_text="Matching when asked for (the progress bar's end).")
    done = models.PositiveIntegerField(default=0, help_text="Gone through so far.")
    changed = models.PositiveIntegerField(default=0, help_text="Of these, changed (the others already were so).")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="bulkjob_owner_created_idx"),
            models.Index(
                fields=["state"], condition=models.Q(state__in=["queued", "running"]), name="bulkjob_active_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"bulk {self.action} {self.id}"


class BulkJobItem(models.Model):
    """A message a bulk job changed, and what it was before (its folder, for a move): what undo puts back."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    message = models.ForeignKey("mailbox.Message", on_delete=models.CASCADE, related_name="+")
    previous_folder = models.CharField(max_length=20, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "message"], name="bulkjobitem_job_message_uniq")]

    def __str__(self) -> str:
        return f"message {self.message_id} in bulk job {self.job_id}"
