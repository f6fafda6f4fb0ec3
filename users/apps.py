from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    label = "users"
    verbose_name = "Users and security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from . import audit, backends, sessions  # noqa: F401 (audit connects the login/logout/admin receivers)

        user_model = get_user_model()
        post_save.connect(backends.user_changed, sender=user_model, dispatch_uid="users.user_changed.save")
        post_delete.connect(backends.user_changed, sender=user_model, dispatch_uid="users.user_changed.delete")
        session_model = sessions.SessionStore.get_model_class()
        post_save.connect(sessions.row_saved, sender=session_model, dispatch_uid="users.session_changed.save")
        post_delete.connect(sessions.row_deleted, sender=session_model, dispatch_uid="users.session_changed.delete")
