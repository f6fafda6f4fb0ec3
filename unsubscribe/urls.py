from django.urls import path

from . import views

app_name = "unsubscribe"
urlpatterns = [
    path("<int:message_id>/", views.confirm, name="confirm"),
    path("<int:message_id>/status/", views.status, name="status"),
]
