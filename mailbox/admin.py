from django.contrib import admin

from . import sync
from .models import Attachment, FetchFailure, Message, SyncRun


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    readonly_fields = ("filename", "content_type", "size", "content_id", "sha256", "stored_path")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("subject", "from_email", "owner", "account", "date", "folder", "server_state", "size")
    list_filter = ("folder", "server_state", "seen", "flagged")
    search_fields = ("subject", "from_email", "from_name", "message_id", "uidl")
    raw_id_fields = ("owner", "account")
    readonly_fields = ("sha256", "size", "raw_path", "uidl")
    date_hierarchy = "date"
    inlines = [AttachmentInline]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ("filename", "content_type", "size", "message")
    search_fields = ("filename",)
    raw_id_fields = ("message",)


@admin.register(FetchFailure)
class FetchFailureAdmin(admin.ModelAdmin):
    list_display = ("uidl", "account", "reason", "attempts", "quarantined_at", "last_failed_at", "size")
    list_filter = ("reason", ("quarantined_at", admin.EmptyFieldListFilter))
    search_fields = ("uidl", "subject", "sender", "account__host", "account__owner__username")
    raw_id_fields = ("account",)
    actions = ["retry"]

    @admin.action(description="Retry the selected messages at the next check")
    def retry(self, request, queryset):
        failures = list(queryset)
        for failure in failures:
            sync.retry_failure(failure)
        self.message_user(request, f"{len(failures)} messages will be retried.")


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("account", "started_at", "finished_at", "fetched", "bytes", "deleted_on_server", "error_class")
    list_filter = ("error_class",)
    raw_id_fields = ("account",)
    date_hierarchy = "started_at"
