from django.apps import AppConfig


class OAuthConfig(AppConfig):
    name = "oauth"
    label = "oauth"
    verbose_name = "OAuth2 sign-in"

    def ready(self) -> None:
        from . import signals  # noqa: F401 (connects the receivers)
