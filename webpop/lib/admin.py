"""Admin pages that show rows the app itself writes: an operator reads them, the app's actions change them."""

from __future__ import annotations


class ViewOnly:
    """No adding and no editing in the admin (a ModelAdmin or an inline); deleting stays as the class says."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class Record(ViewOnly):
    """A record kept as written: not even deleted from the admin."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
