from django.contrib import admin

from webpop.lib import admin as libadmin

from .models import Contact


@admin.register(Contact)
class ContactAdmin(libadmin.ViewOnly, admin.ModelAdmin):
    """For operators: how big address books are. Names, addresses and notes are the users' own: not shown."""

    list_display = ("id", "owner", "times_contacted", "last_contacted", "created_at", "updated_at")
    search_fields = ("owner__username",)
    fields = ("owner", "times_contacted", "last_contacted", "created_at", "updated_at")
    readonly_fields = fields
