from django.urls import path

from . import views

app_name = "ops"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/", views.account_list, name="accounts"),
    path("users/", views.user_list, name="users"),
    path("accounts/<int:account_id>/sync/", views.account_sync, name="account_sync"),
    path("accounts/<int:account_id>/pause/", views.account_pause, name="account_pause"),
    path("users/<int:user_id>/active/", views.user_active, name="user_active"),
    path("quarantine/<int:failure_id>/retry/", views.failure_retry, name="failure_retry"),
]
