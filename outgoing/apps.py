from django.apps import AppConfig


class OutgoingConfig(AppConfig):
    name = "outgoing"
    label = "outgoing"
    verbose_name = "Sending mail"
