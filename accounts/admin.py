from django.contrib import admin

from .models import MailAccount


@admin.register(MailAccount)
class MailAccountAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "owner",
        "host",
        "security",
        "policy",
        "enabled",
        "last_success_at",
        "last_error_class",
        "next_poll_at",
    )
    list_filter = ("enabled", "security", "last_error_class")
    search_fields = ("label", "host", "username", "owner__username")
    raw_id_fields = ("owner",)
    # The encrypted password is never shown or edited here.
    exclude = ("password_encrypted", "sync_lease_token")
    readonly_fields = (
        "last_attempt_at",
        "last_success_at",
        "last_error_class",
        "last_error",
        "consecutive_failures",
        "sync_lease_until",
        "progress_done",
        "progress_total",
    )
