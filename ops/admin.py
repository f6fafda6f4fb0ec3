from django.contrib import admin

from webpop.lib import admin as libadmin

from .models import SchedulerLease, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(libadmin.ViewOnly, admin.ModelAdmin):
    """Read-only: workers write these themselves. Deleting a row forgets a retired worker."""

    list_display = ("hostname", "pid", "concurrency", "started_at", "last_seen_at", "stopped_at")
    list_filter = (("stopped_at", admin.EmptyFieldListFilter),)
    search_fields = ("hostname",)
    readonly_fields = list_display


@admin.register(SchedulerLease)
class SchedulerLeaseAdmin(libadmin.ViewOnly, admin.ModelAdmin):
    """Which beat enqueues periodic tasks now; read-only (the beats renew it)."""

    list_display = ("name", "holder", "expires_at")
    readonly_fields = list_display
