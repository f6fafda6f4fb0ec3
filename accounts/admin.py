from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from webpop.lib import pagecache

from . import actions
from .models import MailAccount


@admin.register(MailAccount)
class MailAccountAdmin(admin.ModelAdmin):
    """Deleting goes through accounts.actions.delete_account, as the owner's own delete (files freed too)."""

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
        "working_auth_mechanism",
        "sync_lease_until",
        "progress_done",
        "progress_total",
    )

    def get_deleted_objects(self, objs, request):
        """A summary instead of Django's list of every message (an account may hold 100,000)."""
        accounts = list(objs)
        model_count = {
            _("POP3 accounts"): len(accounts),
            _("messages"): sum(account.messages.count() for account in accounts),
        }
        return [str(account) for account in accounts], model_count, set(), []

    def save_model(self, request, obj, form, change) -> None:
        if change and set(form.changed_data) & set(MailAccount.SERVER_FIELDS):
            obj.forget_server()  # what was learned about the old server settings
        super().save_model(request, obj, form, change)
        # Its name and policy show on folder pages; a changed owner leaves the old one's pages too.
        pagecache.touch({obj.owner_id, form.initial.get("owner")})

    def delete_model(self, request, obj) -> None:
        actions.delete_account(obj)

    def delete_queryset(self, request, queryset) -> None:
        for account in queryset:
            actions.delete_account(account)
