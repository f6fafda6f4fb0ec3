from django.apps import AppConfig


class UnsubscribeConfig(AppConfig):
    name = "unsubscribe"
    label = "unsubscribe"
    verbose_name = "Unsubscribing from mailing lists"
