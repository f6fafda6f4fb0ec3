from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    label = "users"
    verbose_name = "Users and security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group, Permission
        from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

        from . import audit, backends, sessions  # noqa: F401 (audit connects the login/logout/admin receivers)
        from .models import Session

        user_model = get_user_model()
        post_save.connect(backends.user_changed, sender=user_model, dispatch_uid="users.user_changed.save")
        post_delete.connect(backends.user_changed, sender=user_model, dispatch_uid="users.user_changed.delete")
        # Who holds which permission: cached users carry their permissions (users.backends).
        for through in (user_model.groups.through, user_model.user_permissions.through):
            m2m_changed.connect(backends.user_grants_changed, sender=through, dispatch_uid=f"users.grants.{through}")
        m2m_changed.connect(
            backends.group_permissions_changed, sender=Group.permissions.through, dispatch_uid="users.group_grants"
        )
        pre_delete.connect(backends.group_deleted, sender=Group, dispatch_uid="users.group_deleted")
        pre_delete.connect(backends.permission_deleted, sender=Permission, dispatch_uid="users.permission_deleted")
        post_save.connect(sessions.row_saved, sender=Session, dispatch_uid="users.session_changed.save")
        post_delete.connect(sessions.row_deleted, sender=Session, dispatch_uid="users.session_changed.delete")
