from django.urls import path

from . import views, views_rich

app_name = "outgoing"
urlpatterns = [
    path("", views.compose_message, name="compose"),
    path("<int:outgoing_id>/", views.compose_message, name="edit"),
    path("<int:outgoing_id>/retry/", views.retry, name="retry"),
    path("<int:outgoing_id>/undo/", views.undo, name="undo"),
    path("<int:outgoing_id>/discard/", views.discard, name="discard"),
    path("<int:outgoing_id>/attachment/<int:attachment_id>/", views.attachment, name="attachment"),
    path("<int:outgoing_id>/images/", views_rich.image_upload, name="image_upload"),
    path("<int:outgoing_id>/image/<int:attachment_id>/", views_rich.image, name="image"),
    path("convert/", views_rich.convert, name="convert"),
    path("reply/<int:message_id>/", views.reply, name="reply"),
    path("drafts/", views.drafts, name="drafts"),
    path("outbox/", views.outbox, name="outbox"),
    path("settings/", views.accounts, name="accounts"),
    path("settings/<int:account_id>/", views.smtp_settings, name="settings"),
    path("settings/<int:account_id>/suggest/", views.smtp_suggest, name="smtp_suggest"),
    path("settings/<int:account_id>/addresses/new/", views.identity_edit, name="identity_add"),
    path("settings/<int:account_id>/addresses/<int:identity_id>/", views.identity_edit, name="identity"),
    path("addresses/<int:identity_id>/delete/", views.identity_delete, name="identity_delete"),
]
