from django.urls import path

from . import views

app_name = "users"
urlpatterns = [
    path("signup/", views.signup_view, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/resend/", views.resend_verification, name="resend"),
    path("signup/verify/<str:uidb64>/<str:token>/", views.verify_email, name="verify"),
    path("invite/<str:token>/", views.accept_invitation, name="invitation"),
    path("invitations/", views.invitations, name="invitations"),
    path("invitations/<int:invitation_id>/revoke/", views.revoke_invitation, name="revoke_invitation"),
    path("security/", views.security, name="security"),
    path("security/2fa/setup/", views.twofactor_setup, name="twofactor_setup"),
    path("security/2fa/disable/", views.twofactor_disable, name="twofactor_disable"),
    path("security/2fa/backup-codes/", views.backup_codes, name="backup_codes"),
    path("security/sessions/<str:session_id>/end/", views.end_session, name="end_session"),
    path("security/sessions/end-others/", views.end_other_sessions, name="end_other_sessions"),
    path("security/delete/", views.delete_account, name="delete_account"),
]
