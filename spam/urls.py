from django.urls import path

from . import views

app_name = "spam"
urlpatterns = [
    path("account/<int:account_id>/", views.account_filter, name="account"),
    path("thresholds/", views.thresholds, name="thresholds"),
    path("not-spam/<int:message_id>/", views.not_spam, name="not_spam"),
]
