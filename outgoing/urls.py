from django.urls import path

from . import views

app_name = "outgoing"
urlpatterns = [
    path("", views.compose_message, name="compose"),
    path("<int:outgoing_id>/", views.compose_message, name="edit"),
    path("<int:outgoing_id>/retry/", views.retry, name="retry"),
    path("<int:outgoing_id>/discard/", views.discard, name="discard"),
    path("<int:outgoing_id>/attachment/<int:attachment_id>/", views.attachment, name="attachment"),
    path("reply/<int:message_id>/", views.reply, name="reply"),
    path("drafts/", views.drafts, name="drafts"),
    path("outbox/", views.outbox, name="outbox"),
    path("addresses/", views.address_suggestions, name="addresses"),
    path("settings/", views.accounts, name="accounts"),
    path("settings/<int:account_id>/", views.smtp_settings, name="settings"),
]
