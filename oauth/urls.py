from django.urls import path

from . import views

app_name = "oauth"
urlpatterns = [
    path("callback/", views.callback, name="callback"),
    path("confirm/", views.confirm, name="confirm"),
    path("<slug:provider>/start/", views.start, name="start"),
    path("reconnect/<int:account_id>/", views.reconnect, name="reconnect"),
]
