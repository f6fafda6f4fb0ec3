from django.contrib import admin

from .models import SchedulerLease, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Read-only: workers write these themselves. Deleting a row forgets a retired worker."""

    list_display = ("hostname", "pid", "concurrency", "started_at", "last_seen_at", "stopped_at")
    list_filter = (("stopped_at", admin.EmptyFieldListFilter),)
    search_fields = ("hostname",)
    readonly_fields = list_display

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SchedulerLease)
class SchedulerLeaseAdmin(admin.ModelAdmin):
    """Which beat enqueues periodic tasks now; read-only (the beats renew it)."""

    list_display = ("name", "holder", "expires_at")
    readonly_fields = list_display

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
