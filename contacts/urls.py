from django.urls import path

from . import views

app_name = "contacts"
urlpatterns = [
    path("", views.contact_list, name="list"),
    path("new/", views.add, name="add"),
    path("<int:contact_id>/", views.detail, name="detail"),
    path("<int:contact_id>/edit/", views.edit, name="edit"),
    path("<int:contact_id>/delete/", views.delete, name="delete"),
    path("suggest/", views.suggest, name="suggest"),
    path("import/", views.import_vcards, name="import"),
    path("export/", views.export_vcards, name="export"),
    path("from-sent-mail/", views.seed, name="seed"),
]
