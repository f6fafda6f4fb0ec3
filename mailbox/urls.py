from django.urls import path

from . import views, views_export, views_html

app_name = "mailbox"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("folder/<str:folder>/", views.inbox, name="folder"),
    path("messages/bulk/", views.bulk, name="bulk"),
    path("messages/undo/", views.undo, name="undo"),
    path("counts/", views.counts, name="counts"),
    path("trash/empty/", views.empty_trash, name="empty_trash"),
    path("message/<int:message_id>/source/", views.message_source, name="source"),
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
# Folders, rules and import (imported here so the lines above stay as they are).
from . import views_folders, views_import, views_rules  # noqa: E402

urlpatterns += [
    path("folders/", views_folders.folder_list, name="folders"),
    path("folders/<int:folder_id>/rename/", views_folders.folder_rename, name="folder_rename"),
    path("folders/<int:folder_id>/delete/", views_folders.folder_delete, name="folder_delete"),
    path("rules/", views_rules.rule_list, name="rules"),
    path("rules/<int:rule_id>/delete/", views_rules.rule_delete, name="rule_delete"),
    path("rules/<int:rule_id>/run/", views_rules.rule_run, name="rule_run"),
    path("import/", views_import.import_mail, name="import"),
]
