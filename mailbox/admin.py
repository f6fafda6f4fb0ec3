from django.contrib import admin

from .models import Attachment, Message


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
