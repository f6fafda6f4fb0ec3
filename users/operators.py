"""Who may operate the site: the operators' permissions, the "Operators" group, and the view check.

Each operator page and action asks for one permission (superusers hold them all).
The staff flag only opens Django's admin, where model permissions apply; it grants
nothing here. Operators are usually staff as well, which is what shows them the
dashboard link (the navigation asks for permissions only of staff users, so the
pages of everyone else cost no permission lookup).

The permissions are the ``ops`` app's (ops/models.py); the check lives here, beside sign-in,
so users' own pages (invitations) ask for them without importing the dashboard's app.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import AbstractBaseUser, Group, Permission

GROUP = "Operators"

VIEW_DASHBOARD = "ops.view_dashboard"
ACT_ON_ACCOUNTS = "ops.act_on_accounts"
DISABLE_USERS = "ops.disable_users"
MANAGE_INVITATIONS = "ops.manage_invitations"
VIEW_METRICS = "ops.view_metrics"
PERMISSIONS = (VIEW_DASHBOARD, ACT_ON_ACCOUNTS, DISABLE_USERS, MANAGE_INVITATIONS, VIEW_METRICS)


def operator_required(permission: str) -> Callable:
    """Signed out: to the sign-in page. Signed in without ``permission``: 403.

    The wrapped view carries ``operator_permission`` so tests can read from the URL
    configuration which permission each operator URL asks for.
    """

    def decorator(view):
        wrapped = login_required(permission_required(permission, raise_exception=True)(view))
        wrapped.operator_permission = permission
        return wrapped

    return decorator


def operators_group() -> Group:
    """The "Operators" group, made (with every operator permission) if it is missing."""
    group, created = Group.objects.get_or_create(name=GROUP)
    if created:
        codenames = [name.split(".", 1)[1] for name in PERMISSIONS]
        permissions = list(Permission.objects.filter(content_type__app_label="ops", codename__in=codenames))
        if len(permissions) != len(PERMISSIONS):
            raise RuntimeError("the operators' permissions are missing: run manage.py migrate")
        group.permissions.add(*permissions)
    return group


def grant(user: AbstractBaseUser) -> None:
    """Make ``user`` an operator: a member of the Operators group, and staff (for the navigation and the admin)."""
    user.groups.add(operators_group())
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])  # a save, not an update: cached copies of the user are dropped


def revoke(user: AbstractBaseUser) -> None:
    """Take ``user`` out of the Operators group (the staff flag and other groups stay)."""
    user.groups.remove(*Group.objects.filter(name=GROUP))
