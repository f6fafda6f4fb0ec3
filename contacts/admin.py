from django.contrib import admin

from webpop.lib import admin as libadmin

from . import actions
from .models import Contact


@admin.register(Contact)
class ContactAdmin(libadmin.ViewOnly, admin.ModelAdmin):
    """For operators: how big address books are. Names, addresses and notes are the users' own: not shown."""

    list_display = ("id", "owner", "times_contacted", "last_contacted", "created_at", "updated_at")
    search_fields = ("owner__username",)
    fields = ("owner", "times_contacted", "last_contacted", "created_at", "updated_at")
    readonly_fields = fields

    # Deleting goes through contacts.actions.delete, as the owner's own delete (their conversation pages
    # warn of look-alikes of their contacts' domains).
    def delete_model(self, request, obj) -> None:
        actions.delete(obj.owner_id, obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for owner_id, contact_id in queryset.values_list("owner_id", "id"):
            actions.delete(owner_id, contact_id)
