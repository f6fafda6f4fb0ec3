"""The admin's view of stored mail: metadata to debug syncs, storage and quotas; never what the mail says.

What an operator needs of a message is where it is and what state it is in: its
owner and account, UIDL, size, dates, folder, server state, stored file and parse
notice. What it says (body, rendered HTML, search text, snippet, attachment names)
and who wrote it to whom (subject, sender, recipients, Message-ID) are the user's
correspondence: not shown here to anyone, superusers included, and not searchable
either (a search by subject would tell messages apart just as well as showing it).
The user reads their mail in webpop itself.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from users import operators
from webpop.lib import admin as libadmin

from . import actions, sync
from .models import Attachment, FetchFailure, ImportJob, Message, SyncRun

MESSAGE_FIELDS = (
    "owner",
    "account",
    "uidl",
    "folder",
    "server_state",
    "size",
    "date",
    "received_at",
    "deleted_at",
    "seen",
    "flagged",
    "has_attachments",
    "sha256",
    "raw_path",
    "parse_notice",
)
ATTACHMENT_FIELDS = ("content_type", "size", "inline", "sha256", "stored_path")


class AttachmentInline(libadmin.ViewOnly, admin.TabularInline):
    model = Attachment
    extra = 0
    can_delete = False
    fields = readonly_fields = ATTACHMENT_FIELDS


@admin.register(Message)
class MessageAdmin(libadmin.ViewOnly, admin.ModelAdmin):
    """Read-only metadata; deleting goes through mailbox.actions.delete_for_good, as the app's own deletes."""

    list_display = ("id", "owner", "account", "uidl", "date", "folder", "server_state", "size")
    list_filter = ("folder", "server_state", "seen", "flagged")
    search_fields = ("uidl", "sha256", "owner__username", "account__host")
    list_select_related = ("owner", "account")
    fields = readonly_fields = MESSAGE_FIELDS
    date_hierarchy = "date"
    inlines = [AttachmentInline]

    def get_deleted_objects(self, objs, request):
        """A count instead of Django's list of every related row (each one named by what it holds)."""
        objs = list(objs)
        model_count = {
            _("messages"): len(objs),
            _("attachments"): Attachment.objects.filter(message__in=objs).count(),
        }
        return [str(m) for m in objs], model_count, set(), []

    def delete_model(self, request, obj) -> None:
        actions.delete_for_good([obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        actions.delete_for_good(queryset.values_list("pk", flat=True))


@admin.register(Attachment)
class AttachmentAdmin(libadmin.Record, admin.ModelAdmin):
    """Read-only; attachments go with their message (deleting one alone would break the message)."""

    list_display = ("id", "content_type", "size", "inline", "message")
    list_filter = ("inline",)
    search_fields = ("sha256",)
    fields = readonly_fields = ("message", *ATTACHMENT_FIELDS)


@admin.register(FetchFailure)
class FetchFailureAdmin(admin.ModelAdmin):
    """What failed and why; the subject and sender read from its headers are the user's, not shown."""

    list_display = ("uidl", "account", "reason", "attempts", "quarantined_at", "last_failed_at", "size")
    list_filter = ("reason", ("quarantined_at", admin.EmptyFieldListFilter))
    search_fields = ("uidl", "account__host", "account__owner__username")
    raw_id_fields = ("account",)
    exclude = ("subject", "sender")
    actions = ["retry"]

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm(operators.ACT_ON_ACCOUNTS)

    @admin.action(description=_("Retry the selected messages at the next check"), permissions=["retry"])
    def retry(self, request, queryset):
        failures = list(queryset)
        for failure in failures:
            sync.retry_failure(failure)
        actions.free_released_after_commit()  # their kept bytes, released by the retries
        self.message_user(request, _("%(n)d messages will be retried.") % {"n": len(failures)})


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("account", "started_at", "finished_at", "fetched", "bytes", "deleted_on_server", "error_class")
    list_filter = ("error_class",)
    raw_id_fields = ("account",)
    date_hierarchy = "started_at"


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "account", "state", "imported", "duplicates", "refused", "created_at", "finished_at")
    list_filter = ("state", "error_class")
    search_fields = ("owner__username",)
    raw_id_fields = ("owner", "account")
    readonly_fields = [f.name for f in ImportJob._meta.fields if f.name not in ("id", "owner", "account")]
