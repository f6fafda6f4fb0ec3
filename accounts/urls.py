from django.urls import path

from . import views, views_prefs

# Served with mailbox/views_accounts.py's pages under one "accounts" namespace (webpop/urls.py).
app_name = "accounts"
urlpatterns = [
    path("", views.account_list, name="list"),
    path("suggest/", views.account_suggest, name="suggest"),
    path("preferences/", views_prefs.preferences, name="preferences"),
    path("preferences/browser-time-zone/", views_prefs.browser_time_zone, name="browser_time_zone"),
    path("<int:account_id>/", views.account_detail, name="detail"),
    path("<int:account_id>/pause/", views.account_toggle, name="toggle"),
    path("<int:account_id>/delete/", views.account_delete, name="delete"),
    path("<int:account_id>/status/", views.account_status, name="status"),
]
