from django.urls import path

from . import views

app_name = "push"
urlpatterns = [
    # At the root: a service worker's scope is the path it is served from.
    path("sw.js", views.service_worker, name="service_worker"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("offline/", views.offline, name="offline"),
    path("notifications/subscribe/", views.subscribe, name="subscribe"),
    path("notifications/unsubscribe/", views.unsubscribe, name="unsubscribe"),
    path("notifications/content/", views.content, name="content"),
    path("notifications/<int:subscription_id>/remove/", views.remove, name="remove"),
]
