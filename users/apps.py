from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    label = "users"
    verbose_name = "Users and security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import audit  # noqa: F401 (connects the login/logout/admin signal receivers)
