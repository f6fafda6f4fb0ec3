from django.apps import AppConfig


class SpamConfig(AppConfig):
    name = "spam"
    verbose_name = "Spam filtering"
    default_auto_field = "django.db.models.BigAutoField"
