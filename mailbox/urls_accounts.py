from django.urls import path

from . import views_accounts

# The account pages that test a server or read what a sync stored; under "accounts" (webpop/urls.py).
urlpatterns = [
    path("add/", views_accounts.account_add, name="add"),
    path("<int:account_id>/check/", views_accounts.account_check_now, name="check_now"),
    path("<int:account_id>/edit/", views_accounts.account_edit, name="edit"),
    path("<int:account_id>/failures/<int:failure_id>/retry/", views_accounts.failure_retry, name="failure_retry"),
    path("<int:account_id>/failures/<int:failure_id>/raw/", views_accounts.failure_raw, name="failure_raw"),
]
