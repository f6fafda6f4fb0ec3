from django.urls import path

from . import views, views_export, views_html

app_name = "mailbox"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("folder/<str:folder>/", views.inbox, name="folder"),
    path("messages/bulk/", views.bulk, name="bulk"),
    path("messages/undo/", views.undo, name="undo"),
    path("counts/", views.counts, name="counts"),
    path("export/", views_export.export_mbox, name="export"),
    path("message/<int:message_id>/", views.message_detail, name="message"),
    path("message/<int:message_id>/delete/", views.message_delete, name="delete"),
    path("message/<int:message_id>/raw/", views.message_raw, name="raw"),
    path("attachment/<int:attachment_id>/", views.attachment_download, name="attachment"),
    # HTML mail (mailbox/views_html.py): the sandboxed body, its signed image URLs, remote-image choices.
    path("message/<int:message_id>/body/", views_html.message_body, name="message_body"),
    path(
        "message/<int:message_id>/asset/<str:token>/cid/<int:attachment_id>/",
        views_html.cid_image,
        name="cid_image",
    ),
    path(
        "message/<int:message_id>/asset/<str:token>/remote/<int:index>/",
        views_html.proxied_image,
        name="proxied_image",
    ),
    path("message/<int:message_id>/images/", views_html.remote_images_for_sender, name="remote_images_sender"),
    path("settings/images/", views_html.remote_image_settings, name="remote_image_settings"),
]
