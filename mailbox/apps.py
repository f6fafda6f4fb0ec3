from django.apps import AppConfig


class MailboxConfig(AppConfig):
    name = "mailbox"
    label = "mailbox"
    verbose_name = "Mailbox"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects them)
