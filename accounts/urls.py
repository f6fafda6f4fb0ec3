from django.urls import path

from . import views, views_prefs

app_name = "accounts"
urlpatterns = [
    path("", views.account_list, name="list"),
    path("add/", views.account_add, name="add"),
    path("suggest/", views.account_suggest, name="suggest"),
    path("preferences/", views_prefs.preferences, name="preferences"),
    path("preferences/browser-time-zone/", views_prefs.browser_time_zone, name="browser_time_zone"),
    path("<int:account_id>/", views.account_detail, name="detail"),
    path("<int:account_id>/check/", views.account_check_now, name="check_now"),
    path("<int:account_id>/edit/", views.account_edit, name="edit"),
    path("<int:account_id>/pause/", views.account_toggle, name="toggle"),
    path("<int:account_id>/delete/", views.account_delete, name="delete"),
    path("<int:account_id>/status/", views.account_status, name="status"),
    path("<int:account_id>/failures/<int:failure_id>/retry/", views.failure_retry, name="failure_retry"),
    path("<int:account_id>/failures/<int:failure_id>/raw/", views.failure_raw, name="failure_raw"),
]
