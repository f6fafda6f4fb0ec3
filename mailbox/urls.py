from django.urls import path

from . import views, views_conversation, views_export, views_html, views_tabs

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
    path("message/<int:message_id>/", views_conversation.message_detail, name="message"),
    path("message/<int:message_id>/part/", views_conversation.message_part, name="message_part"),
    path("message/<int:message_id>/delete/", views.message_delete, name="delete"),
    path("message/<int:message_id>/row/", views.row_action, name="row_action"),
    path("message/<int:message_id>/tab/", views_tabs.sender_tab, name="sender_tab"),
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
from . import views_folders, views_import, views_print, views_rules  # noqa: E402

urlpatterns += [
    path("folders/", views_folders.folder_list, name="folders"),
    path("folders/<int:folder_id>/rename/", views_folders.folder_rename, name="folder_rename"),
    path("folders/<int:folder_id>/delete/", views_folders.folder_delete, name="folder_delete"),
    path("rules/", views_rules.rule_list, name="rules"),
    path("rules/<int:rule_id>/delete/", views_rules.rule_delete, name="rule_delete"),
    path("rules/<int:rule_id>/run/", views_rules.rule_run, name="rule_run"),
    path("import/", views_import.import_mail, name="import"),
    path("import/<int:job_id>/", views_import.import_job, name="import_job"),
    path("import/<int:job_id>/status/", views_import.import_status, name="import_status"),
    path("message/<int:message_id>/print/", views_print.print_message, name="print"),
    path("message/<int:message_id>/print/conversation/", views_print.print_conversation, name="print_conversation"),
]
# Attachment previews (mailbox/views_attachments.py).
from . import views_attachments  # noqa: E402

urlpatterns += [
    path("attachment/<int:attachment_id>/preview/", views_attachments.attachment_preview, name="attachment_preview"),
    path(
        "attachment/<int:attachment_id>/image/<str:size>/", views_attachments.attachment_image, name="attachment_image"
    ),
    path("message/<int:message_id>/attachments.zip", views_attachments.attachments_zip, name="attachments_zip"),
]
# Virtual views, snooze and saved searches (mailbox/views_virtual.py).
from . import views_virtual  # noqa: E402

urlpatterns += [
    path("view/<str:slug>/", views_virtual.view, name="view"),
    path("messages/snooze/", views_virtual.snooze, name="snooze"),
    path("searches/", views_virtual.saved_search_create, name="saved_searches"),
    path("searches/<int:search_id>/rename/", views_virtual.saved_search_rename, name="saved_search_rename"),
    path("searches/<int:search_id>/delete/", views_virtual.saved_search_delete, name="saved_search_delete"),
]
# "Select all N": a whole folder, view or search, in the background (mailbox/views_bulk.py).
from . import views_bulk  # noqa: E402

urlpatterns += [
    path("messages/bulk/count/", views_bulk.count, name="bulk_count"),
    path("messages/bulk/<int:job_id>/", views_bulk.status, name="bulk_status"),
]
# Calendar invitations: the answer (an iTIP REPLY) and the .ics download (mailbox/views_invitations.py).
from . import views_invitations  # noqa: E402

urlpatterns += [
    path("calendar/<int:attachment_id>/answer/", views_invitations.calendar_answer, name="calendar_answer"),
    path("calendar/<int:attachment_id>/invite.ics", views_invitations.calendar_ics, name="calendar_ics"),
]
