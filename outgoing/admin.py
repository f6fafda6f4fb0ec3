from django.contrib import admin

from .models import OutgoingMessage, SmtpSettings


@admin.register(SmtpSettings)
class SmtpSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "account", "security", "auth", "updated_at")
    search_fields = ("host", "from_email", "account__owner__username")
    raw_id_fields = ("account",)
    # The password is never shown or edited here; the signature is text of the user's own mail.
    exclude = ("password_encrypted", "signature")


@admin.register(OutgoingMessage)
class OutgoingMessageAdmin(admin.ModelAdmin):
    """For operators: what is stuck or failing. Contents are the users' own: not shown."""

    list_display = ("id", "owner", "account", "state", "attempts", "error_class", "updated_at", "sent_at")
    list_filter = ("state", "error_class")
    search_fields = ("owner__username",)
    fields = ("owner", "account", "state", "attempts", "error_class", "error", "queued_at", "sent_at", "message_id")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False
