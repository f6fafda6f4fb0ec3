from django.contrib import admin
from django.urls import include, path

from accounts import urls as account_urls
from mailbox import urls_accounts as mailbox_account_urls
from ops import views as ops_views
from users import views_auth as users_auth

from . import health

handler500 = "webpop.errors.server_error"  # 503 "back in a moment" while PostgreSQL or Redis is away

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", ops_views.prometheus, name="metrics"),
    path("ops/", include("ops.urls")),
    path("setup/", users_auth.first_run, name="first_run"),
    path("", include("users.auth_urls")),  # login (with 2FA), logout, password change and reset
    path("admin/login/", users_auth.admin_login),  # the admin signs in through the same page
    # One namespace for the account pages: those that need the mailbox live in it (accounts imports no mailbox).
    path("accounts/", include((account_urls.urlpatterns + mailbox_account_urls.urlpatterns, "accounts"))),
    path("oauth/", include("oauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: POST + CSRF
    path("admin/", admin.site.urls),
    path("compose/", include("outgoing.urls")),
    path("contacts/", include("contacts.urls")),
    path("unsubscribe/", include("unsubscribe.urls")),
    path("spam/", include("spam.urls")),
    path("", include("push.urls")),  # notifications; the installable app's service worker and manifest
    path("", include("users.urls")),
    path("", include("mailbox.urls")),
]
