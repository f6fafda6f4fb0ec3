"""Sign-in, sign-out and password routes under Django's usual (unnamespaced) names."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views_auth

urlpatterns = [
    path("login/", views_auth.LoginView.as_view(), name="login"),
    path("login/code/", views_auth.login_otp, name="login_otp"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", views_auth.PasswordChangeView.as_view(), name="password_change"),
    path("password/reset/", views_auth.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views_auth.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
