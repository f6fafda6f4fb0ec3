from django.apps import AppConfig


class WebpopConfig(AppConfig):
    """The project package as an app: its system checks (webpop/checks.py) and rate-limit counters (models.py)."""

    name = "webpop"
    label = "webpop"
    verbose_name = "webpop"

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the checks)
