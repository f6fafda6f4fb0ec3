from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UnsubscribeRequest(models.Model):
    """A reader's confirmed unsubscribe from the list that sent one message (unsubscribe/actions.py).

    One-click (RFC 8058): the HTTPS POST waits on this row (pending, and the time it may
    run) and runs in a Celery task; beat's sweep publishes the task again when it was lost
    or its worker died, so the request is found again from the row. By e-mail: the request
    is an outgoing message (outgoing/), queued, retried and filed in Sent like any other;
    this row points at it and shows its state.
    """

    class Method(models.TextChoices):
        ONE_CLICK = "one_click", _("One-click")
        MAILTO = "mailto", _("By e-mail")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Unsubscribing")
        DONE = "done", _("Unsubscribed")
        FAILED = "failed", _("Failed")
        MAILED = "mailed", _("Handed to sending")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField("mailbox.Message", on_delete=models.CASCADE, related_name="unsubscribe_request")
    method = models.CharField(max_length=10, choices=Method.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    target = models.TextField(help_text="The URL posted to, or the address written to.")
    attempts = models.PositiveSmallIntegerField(default=0)
    # Pending: when it may run (again). Beat's sweep publishes its task from here, never from the broker.
    not_before = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When its task was last published.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The HTTP status answered.")
    error_class = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True, help_text="What the last try ended with, for the reader and operators.")
    outgoing = models.ForeignKey(
        "outgoing.OutgoingMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["state", "not_before"],
                condition=models.Q(state__in=["pending", "running"]),
                name="unsubscribe_active_idx",
            ),
            models.Index(fields=["owner", "-created_at"], name="unsubscribe_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"unsubscribe of message {self.message_id} ({self.state})"
