from django.apps import AppConfig


class WebpopConfig(AppConfig):
    """The project package as an app: only for its system checks (webpop/checks.py); it has no models."""

    name = "webpop"
    label = "webpop"
    verbose_name = "webpop"

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the checks)
