from django.urls import path

from . import views, views_export

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
]
