"""Sign in with Google / Microsoft: the whole OAuth2 flow against a local authorization server.

The browser's part is played by the Django test client (webpop's pages) and
requests (the provider's /authorize page), and once by real Chromium; the
tokens issued are then used for XOAUTH2 / OAUTHBEARER against the fault POP3
server over TLS. Chromium trusts the provider's test certificate as a user's
browser trusts Google's, while webpop's own token requests verify it against
WEBPOP_OAUTH_CA_FILE. Screenshots go to test-artifacts/screens/oauth-*.png.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount
from mailbox import actions as mailbox_actions
from mailbox import sync
from mailbox.models import Message
from oauth import client, providers, tokens
from oauth.models import Grant, ProviderCredentials
from tests.fault_server import make_message, tls_materials
from tests.oauth_server import AuthServer
from tests.tlsutil import make_pki

pytestmark = pytest.mark.django_db

EMAIL = "alice@example.net"
SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"


@pytest.fixture
def ca_file(tmp_path) -> str:
    path = tmp_path / "oauth-ca.pem"
    path.write_text(tls_materials().ca_pem)
    return str(path)


@pytest.fixture
def auth():
    with AuthServer(email=EMAIL) as server:
        yield server


@pytest.fixture
def pop(fault_server, auth):
    """A TLS POP3 server holding two messages for EMAIL that accepts the tokens ``auth`` issues."""
    server = fault_server(
        [make_message(1), make_message(2)],
        {EMAIL: "passwords-are-not-accepted"},
        ssl_context=tls_materials().server_context,
        sasl=["XOAUTH2", "OAUTHBEARER"],
    )
    server.tokens = auth.access_tokens  # live: the newest token the authorization server issued
    return server


def configure(settings, auth, pop, ca_file, key: str = "google", **extra) -> None:
    setattr(settings, f"WEBPOP_OAUTH_{key.upper()}_CLIENT_ID", auth.client_id)
    setattr(settings, f"WEBPOP_OAUTH_{key.upper()}_CLIENT_SECRET", auth.client_secret)
    settings.WEBPOP_OAUTH_CA_FILE = ca_file
    settings.WEBPOP_POP3_CA_FILE = ca_file
    settings.WEBPOP_OAUTH_PROVIDERS = {
        key: {
            "authorize_url": auth.authorize_url,
            "token_url": auth.token_url,
            "revocation_url": auth.revocation_url,
            "issuers": [auth.issuer],
            "pop3_host": pop.host,
            "pop3_port": pop.port,
            "pop3_security": "ssl",
            **extra,
        }
    }


@pytest.fixture
def google(settings, auth, pop, ca_file) -> None:
    configure(settings, auth, pop, ca_file)


def sign_in(web, auth, ca_file, start_url: str):
    """Start at webpop, pass the provider's consent page, and land on webpop's callback."""
    started = web.post(start_url)
    assert started.status_code == 302
    assert started["Location"].startswith(auth.authorize_url + "?")
    at_provider = requests.get(started["Location"], allow_redirects=False, verify=ca_file, timeout=10)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["Location"])
    assert (back.scheme, back.netloc, back.path) == ("http", "testserver", reverse("oauth:callback"))
    return web.get(f"{back.path}?{back.query}")


def add_account(web, auth, ca_file, provider: str = "google", **form):
    answer = sign_in(web, auth, ca_file, reverse("oauth:start", args=[provider]))
    assert answer.status_code == 302 and answer["Location"] == reverse("oauth:confirm")
    return web.post(reverse("oauth:confirm"), {"policy": "keep", "deliver_to": "inbox", **form})


def flash(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- The add-account page ----------------------------------------------------------


def test_no_sign_in_buttons_until_a_provider_is_configured(alice_client):
    page = alice_client.get(reverse("accounts:add")).content.decode()
    assert "Sign in with" not in page


def test_buttons_appear_only_for_configured_providers(alice_client, google):
    page = alice_client.get(reverse("accounts:add")).content.decode()
    assert "Sign in with Google" in page
    assert "Sign in with Microsoft" not in page
    assert f'action="{reverse("oauth:start", args=["google"])}"' in page


def test_starting_needs_post_and_a_configured_provider(alice_client, google):
    assert alice_client.get(reverse("oauth:start", args=["google"])).status_code == 405
    assert alice_client.post(reverse("oauth:start", args=["microsoft"])).status_code == 404
    assert alice_client.post(reverse("oauth:start", args=["yahoo"])).status_code == 404


def test_credentials_entered_in_the_admin_configure_a_provider(admin_client, alice_client, settings):
    settings.WEBPOP_OAUTH_MICROSOFT_CLIENT_ID = settings.WEBPOP_OAUTH_MICROSOFT_CLIENT_SECRET = ""
    add = reverse("admin:oauth_providercredentials_add")
    form = {"provider": "microsoft", "client_id": "ms-client", "client_secret": "", "tenant": "contoso.example"}
    assert admin_client.post(add, form).status_code == 200  # a secret is required at first
    assert admin_client.post(add, form | {"client_secret": "ms-secret-1"}).status_code == 302

    row = ProviderCredentials.objects.get(provider="microsoft")
    assert "ms-secret-1" not in row.client_secret_encrypted
    provider = providers.get_configured("microsoft")
    assert (provider.client_id, provider.client_secret) == ("ms-client", "ms-secret-1")
    assert provider.token_url == "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"
    assert "Sign in with Microsoft" in alice_client.get(reverse("accounts:add")).content.decode()
    # Saving again without a secret keeps the saved one; the environment wins over the admin.
    change = reverse("admin:oauth_providercredentials_change", args=[row.id])
    assert admin_client.post(change, form | {"client_id": "ms-client-2"}).status_code == 302
    assert providers.get("microsoft").client_secret == "ms-secret-1"
    settings.WEBPOP_OAUTH_MICROSOFT_CLIENT_ID, settings.WEBPOP_OAUTH_MICROSOFT_CLIENT_SECRET = "env-id", "env-secret"
    assert (providers.get("microsoft").client_id, providers.get("microsoft").client_secret) == ("env-id", "env-secret")


def test_a_client_id_without_its_secret_stops_the_server_at_start(tmp_path):
    secret_file = tmp_path / "google-secret"
    secret_file.write_text("from-a-file\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEBPOP_OAUTH_")}
    check = [sys.executable, "manage.py", "shell", "-c", "from oauth import providers; print(providers.get('google'))"]
    root = Path(__file__).resolve().parent.parent

    half = subprocess.run(
        check, cwd=root, env=env | {"WEBPOP_OAUTH_MICROSOFT_CLIENT_ID": "x"}, capture_output=True, text=True
    )
    assert half.returncode != 0
    assert "Set both WEBPOP_OAUTH_MICROSOFT_CLIENT_ID and _CLIENT_SECRET, or neither." in half.stderr
    whole = subprocess.run(
        check,
        cwd=root,
        env=env | {"WEBPOP_OAUTH_GOOGLE_CLIENT_ID": "gid", "WEBPOP_OAUTH_GOOGLE_CLIENT_SECRET_FILE": str(secret_file)},
        capture_output=True,
        text=True,
    )
    assert whole.returncode == 0, whole.stderr
    assert "client_id='gid', client_secret='from-a-file'" in whole.stdout


def test_endpoints_must_use_https(settings):
    settings.WEBPOP_OAUTH_PROVIDERS = {"google": {"token_url": "http://127.0.0.1:9/token"}}
    with pytest.raises(ImproperlyConfigured, match="must use https://"):
        providers.get("google")


# --- The whole flow ----------------------------------------------------------------


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_sign_in_adds_the_account_and_its_first_sync_logs_in_with_xoauth2(
    provider, settings, auth, pop, ca_file, alice, alice_client, enqueued, django_capture_on_commit_callbacks
):
    configure(settings, auth, pop, ca_file, key=provider)

    with django_capture_on_commit_callbacks(execute=True):
        added = add_account(alice_client, auth, ca_file, provider, policy="mirror", label="Work")

    account = MailAccount.objects.get(owner=alice)
    assert added.status_code == 302 and added["Location"] == reverse("accounts:detail", args=[account.id])
    assert (account.username, account.host, account.port, account.security) == (EMAIL, pop.host, pop.port, "ssl")
    assert (account.policy, account.label) == ("mirror", "Work")
    assert enqueued == [account.id]
    # The authorization request carried state, nonce and a PKCE S256 challenge; the token request its verifier.
    asked = auth.stats.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["state"] and asked["nonce"]
    assert asked["scope"] == providers.get(provider).scope
    assert auth.stats.token_requests[-1]["code_verifier"]
    # Tokens are stored encrypted, never in clear.
    grant = Grant.objects.get(account=account)
    assert (grant.provider, grant.email, grant.mechanism) == (provider, EMAIL, "XOAUTH2")
    assert grant.get_access_token() == auth.access_tokens[EMAIL]
    assert auth.access_tokens[EMAIL] not in grant.access_token_encrypted
    assert grant.get_refresh_token() and grant.get_refresh_token() not in grant.refresh_token_encrypted

    result = sync.sync_account(account.id)

    assert (result.error, result.fetched) == (None, 2)
    assert pop.session_log[-1].mechanism == "XOAUTH2" and pop.session_log[-1].user == EMAIL
    # Outlook's POP3 takes the XOAUTH2 response only after its "+"; Gmail's with the command.
    auth_line = next(line for line in pop.session_log[-1].commands if line.startswith("AUTH "))
    assert (auth_line == "AUTH XOAUTH2") == (provider == "microsoft")
    assert Message.objects.filter(account=account).count() == 2
    detail = alice_client.get(reverse("accounts:detail", args=[account.id])).content.decode()
    assert f"as {EMAIL}" in detail and "Reconnect" not in detail


def test_oauthbearer_grants_log_in_with_oauthbearer(settings, auth, pop, ca_file, alice, alice_client):
    configure(settings, auth, pop, ca_file, mechanism="OAUTHBEARER")
    add_account(alice_client, auth, ca_file)
    account = MailAccount.objects.get(owner=alice)

    assert sync.sync_account(account.id).fetched == 2
    assert pop.session_log[-1].mechanism == "OAUTHBEARER"


def test_denied_consent_says_so_and_adds_nothing(alice_client, auth, google, ca_file):
    auth.deny = True

    answer = sign_in(alice_client, auth, ca_file, reverse("oauth:start", args=["google"]))

    assert answer.status_code == 302 and answer["Location"] == reverse("accounts:add")
    page = alice_client.get(answer["Location"])
    assert any("You did not allow webpop to read your mail at Google" in text for text in flash(page))
    assert not MailAccount.objects.exists() and auth.stats.token_requests == []


def test_token_endpoint_failure_says_so_and_adds_nothing(alice_client, auth, google, ca_file):
    auth.token_status = 503

    answer = sign_in(alice_client, auth, ca_file, reverse("oauth:start", args=["google"]))

    page = alice_client.get(answer["Location"])
    assert any("could not be reached (the sign-in server answered HTTP 503)" in text for text in flash(page))
    assert not MailAccount.objects.exists()


def test_untrusted_token_endpoint_certificate_is_refused(settings, alice_client, auth, google, ca_file, tmp_path):
    settings.WEBPOP_OAUTH_CA_FILE = str(make_pki(tmp_path / "other", ["127.0.0.1"])[0])  # trusts another CA only

    answer = sign_in(alice_client, auth, ca_file, reverse("oauth:start", args=["google"]))

    page = alice_client.get(answer["Location"])
    assert any("TLS certificate is not trusted" in text for text in flash(page))
    assert auth.stats.token_requests == [] and not MailAccount.objects.exists()


def test_callback_with_unknown_or_replayed_state_is_refused(alice_client, auth, google, ca_file):
    started = alice_client.post(reverse("oauth:start", args=["google"]))
    at_provider = requests.get(started["Location"], allow_redirects=False, verify=ca_file, timeout=10)
    back = urlsplit(at_provider.headers["Location"])
    query = parse_qs(back.query)

    forged = alice_client.get(reverse("oauth:callback"), {"code": query["code"][0], "state": "forged"})
    assert forged["Location"] == reverse("accounts:add")
    first = alice_client.get(f"{back.path}?{back.query}")
    assert first["Location"] == reverse("oauth:confirm")
    replayed = alice_client.get(f"{back.path}?{back.query}")
    assert replayed["Location"] == reverse("accounts:add")
    assert any("expired or was started elsewhere" in text for text in flash(alice_client.get(replayed["Location"])))
    assert len(auth.stats.token_requests) == 1  # the forged and the replayed callback never reached the provider


def test_a_sign_in_started_by_one_user_cannot_be_finished_by_another(alice_client, bob_client, auth, google, ca_file):
    started = alice_client.post(reverse("oauth:start", args=["google"]))
    at_provider = requests.get(started["Location"], allow_redirects=False, verify=ca_file, timeout=10)
    back = urlsplit(at_provider.headers["Location"])

    answer = bob_client.get(f"{back.path}?{back.query}")

    assert answer["Location"] == reverse("accounts:add")
    assert auth.stats.token_requests == []
    assert bob_client.get(reverse("oauth:confirm"))["Location"] == reverse("accounts:add")


def test_confirm_without_a_sign_in_goes_back_to_the_add_page(alice_client, google):
    assert alice_client.get(reverse("oauth:confirm"))["Location"] == reverse("accounts:add")
    assert alice_client.post(reverse("oauth:confirm"), {"policy": "delete"})["Location"] == reverse("accounts:add")
    assert not MailAccount.objects.exists()


def test_confirm_form_errors_keep_the_sign_in(alice_client, auth, google, ca_file, alice):
    sign_in(alice_client, auth, ca_file, reverse("oauth:start", args=["google"]))

    bad = alice_client.post(reverse("oauth:confirm"), {"policy": "everything", "deliver_to": "inbox"})
    assert bad.status_code == 200 and bad.context["form"].errors["policy"]
    assert EMAIL in bad.content.decode()
    good = alice_client.post(reverse("oauth:confirm"), {"policy": "keep", "deliver_to": "inbox"})
    assert good.status_code == 302 and MailAccount.objects.filter(owner=alice, username=EMAIL).count() == 1


# --- Refreshing ----------------------------------------------------------------------


@pytest.fixture
def oauth_account(alice_client, auth, google, ca_file, alice) -> MailAccount:
    add_account(alice_client, auth, ca_file)
    return MailAccount.objects.get(owner=alice)


def expire(account: MailAccount) -> None:
    Grant.objects.filter(account=account).update(access_token_expires_at=timezone.now() - dt.timedelta(seconds=1))


def test_a_token_expiring_within_a_minute_is_refreshed_before_login(oauth_account, auth, pop):
    old = Grant.objects.get(account=oauth_account).get_access_token()
    Grant.objects.filter(account=oauth_account).update(
        access_token_expires_at=timezone.now() + dt.timedelta(seconds=30)
    )

    result = sync.sync_account(oauth_account.id)

    assert (result.error, result.fetched, auth.stats.refreshes) == (None, 2, 1)
    grant = Grant.objects.get(account=oauth_account)
    assert grant.get_access_token() == auth.access_tokens[EMAIL] != old
    assert grant.access_token_expires_at > timezone.now() + dt.timedelta(minutes=50)
    assert sync.sync_account(oauth_account.id).error is None
    assert auth.stats.refreshes == 1  # still valid: no second refresh


def test_a_valid_token_is_used_without_asking_the_provider(oauth_account, auth):
    requests_before = len(auth.stats.token_requests)
    assert tokens.access_token_for(oauth_account) == auth.access_tokens[EMAIL]
    assert len(auth.stats.token_requests) == requests_before


@pytest.mark.django_db(transaction=True)
@pytest.mark.sqlite  # locking differs: SELECT … FOR UPDATE on PostgreSQL, a write lock on SQLite
def test_two_workers_refreshing_at_once_refresh_once(oauth_account, auth):
    expire(oauth_account)
    auth.token_delay = 0.3  # both workers are inside access_token_for while the first refresh runs
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(tokens.access_token_for(MailAccount.objects.get(id=oauth_account.id)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    # One refresh; a second one would have reused the rotated refresh token and revoked the grant.
    assert auth.stats.refreshes == 1
    assert results == [auth.access_tokens[EMAIL]] * 2
    assert Grant.objects.get(account=oauth_account).revoked_at is None


def test_token_endpoint_down_is_a_temporary_error(oauth_account, auth):
    expire(oauth_account)
    auth.token_status = 503

    result = sync.sync_account(oauth_account.id)

    assert result.error_class == "temporary"
    account = MailAccount.objects.get(id=oauth_account.id)
    assert account.last_error_class == "temporary" and account.enabled
    assert Grant.objects.get(account=oauth_account).revoked_at is None


def test_a_wrong_client_secret_is_a_temporary_error_not_a_revoked_grant(oauth_account, auth, settings):
    expire(oauth_account)
    settings.WEBPOP_OAUTH_GOOGLE_CLIENT_SECRET = "rotated-by-mistake"

    result = sync.sync_account(oauth_account.id)

    assert result.error_class == "temporary" and "invalid_client" in result.error
    assert Grant.objects.get(account=oauth_account).revoked_at is None


# --- Revoked grants and Reconnect -------------------------------------------------------


def test_revoked_grant_pauses_polling_and_offers_reconnect(oauth_account, auth, alice_client):
    auth.revoke(EMAIL)
    expire(oauth_account)

    result = sync.sync_account(oauth_account.id)

    assert result.error_class == "auth" and result.fetched == 0
    account = MailAccount.objects.get(id=oauth_account.id)
    assert account.last_error_class == "auth" and "Reconnect" in account.last_error
    assert account.enabled  # never silently disabled: the user sees why and what to do
    assert account.next_poll_at > timezone.now() + dt.timedelta(minutes=30)
    assert Grant.objects.get(account=account).revoked_at is not None
    with pytest.raises(tokens.ReconnectRequired):
        tokens.access_token_for(account)
    asked = len(auth.stats.token_requests)
    assert sync.sync_account(account.id).error_class == "auth"
    assert len(auth.stats.token_requests) == asked  # a dead grant is not tried again and again
    page = alice_client.get(reverse("accounts:detail", args=[account.id])).content.decode()
    assert "Google no longer accepts webpop&#x27;s access" in page
    assert f'action="{reverse("oauth:reconnect", args=[account.id])}"' in page
    listing = alice_client.get(reverse("accounts:list")).content.decode()
    assert "Authentication failed" in listing


def test_token_refused_by_the_mail_server_is_refreshed_next_time(oauth_account, auth, pop):
    pop.tokens = {}  # the POP3 server no longer takes the cached token

    assert sync.sync_account(oauth_account.id).error_class == "auth"
    assert "Make sure POP is turned on" in MailAccount.objects.get(id=oauth_account.id).last_error
    pop.tokens = auth.access_tokens
    result = sync.sync_account(oauth_account.id)

    assert (result.error, result.fetched, auth.stats.refreshes) == (None, 2, 1)


def test_reconnect_signs_in_again_and_resumes(
    oauth_account, auth, pop, alice_client, ca_file, enqueued, django_capture_on_commit_callbacks
):
    auth.revoke(EMAIL)
    expire(oauth_account)
    sync.sync_account(oauth_account.id)
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        answer = sign_in(alice_client, auth, ca_file, reverse("oauth:reconnect", args=[oauth_account.id]))

    assert answer["Location"] == reverse("accounts:detail", args=[oauth_account.id])
    account = MailAccount.objects.get(id=oauth_account.id)
    assert (account.last_error_class, account.consecutive_failures) == ("", 0)
    # Its sync is published now; beat polls it within the fallback should that task be lost.
    assert account.next_poll_at <= timezone.now() + mailbox_actions.SYNC_NOW_FALLBACK
    assert Grant.objects.get(account=account).revoked_at is None
    assert MailAccount.objects.filter(owner=account.owner).count() == 1
    assert enqueued == [account.id]
    assert sync.sync_account(account.id).fetched == 2


def test_reconnect_as_someone_else_changes_nothing(oauth_account, auth, alice_client, ca_file):
    auth.revoke(EMAIL)
    expire(oauth_account)
    sync.sync_account(oauth_account.id)
    auth.email, auth.subject = "mallory@example.net", "user-0666"

    answer = sign_in(alice_client, auth, ca_file, reverse("oauth:reconnect", args=[oauth_account.id]))

    page = alice_client.get(answer["Location"])
    assert any("You signed in as mallory@example.net, but this account is alice@example.net" in t for t in flash(page))
    grant = Grant.objects.get(account=oauth_account)
    assert grant.revoked_at is not None and grant.email == EMAIL


def test_reconnect_is_post_only_and_for_the_owner_only(oauth_account, bob_client, alice_client, alice):
    url = reverse("oauth:reconnect", args=[oauth_account.id])
    assert alice_client.get(url).status_code == 405
    assert bob_client.post(url).status_code == 404
    password_account = MailAccount.objects.create(owner=alice, host="pop.example.net", port=995, username="a")
    assert alice_client.post(reverse("oauth:reconnect", args=[password_account.id])).status_code == 404


def test_removing_the_account_gives_the_refresh_token_back(
    oauth_account, auth, alice_client, django_capture_on_commit_callbacks
):
    refresh_token = Grant.objects.get(account=oauth_account).get_refresh_token()

    with django_capture_on_commit_callbacks(execute=True):
        answer = alice_client.post(reverse("accounts:delete", args=[oauth_account.id]))

    assert answer.status_code == 302 and not Grant.objects.exists()
    assert auth.stats.revocations == 1
    status, body = auth.token(
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        (auth.client_id, auth.client_secret),
    )
    assert (status, body["error"]) == (400, "invalid_grant")


def test_removing_the_account_works_while_the_provider_is_down(
    oauth_account, auth, alice_client, django_capture_on_commit_callbacks
):
    auth.token_status = 503

    with django_capture_on_commit_callbacks(execute=True):
        answer = alice_client.post(reverse("accounts:delete", args=[oauth_account.id]))

    assert answer.status_code == 302
    assert not MailAccount.objects.filter(id=oauth_account.id).exists() and not Grant.objects.exists()


# --- id_token checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"aud": "someone-else"}, "another application"),
        ({"iss": "https://evil.test"}, "another issuer"),
        ({"nonce": "stale"}, "does not answer this sign-in"),
        ({"exp": 1}, "expired"),
    ],
)
def test_id_token_for_another_client_or_sign_in_is_refused(google, auth, claims, error):
    base = {"aud": auth.client_id, "iss": auth.issuer, "nonce": "n1", "exp": time.time() + 60, "email": EMAIL}
    payload = base64.urlsafe_b64encode(json.dumps(base | claims).encode()).rstrip(b"=").decode()
    with pytest.raises(client.GrantRejected, match=error):
        client.id_token_claims(providers.get("google"), f"e30.{payload}.sig", nonce="n1")


def test_signing_in_to_a_mailbox_already_added_signs_it_in_again(oauth_account, auth, alice_client, ca_file, alice):
    auth.revoke(EMAIL)
    expire(oauth_account)
    sync.sync_account(oauth_account.id)

    answer = sign_in(alice_client, auth, ca_file, reverse("oauth:start", args=["google"]))

    assert answer["Location"] == reverse("accounts:detail", args=[oauth_account.id])
    assert MailAccount.objects.filter(owner=alice).count() == 1
    assert Grant.objects.get(account=oauth_account).revoked_at is None
    assert tokens.access_token_for(oauth_account) == auth.access_tokens[EMAIL]


def test_editing_an_oauth_account_tests_the_connection_with_its_token(oauth_account, alice_client, pop):
    form = {
        "label": "Gmail",
        "host": oauth_account.host,
        "security": "ssl",
        "port": oauth_account.port,
        "username": EMAIL,
        "password": "",
        "policy": "delete",
        "poll_interval": 300,
        "deliver_to": "inbox",
        "auth_mechanism": "",
        "tls_fingerprint": "",
        "action": "save",
    }

    answer = alice_client.post(reverse("accounts:edit", args=[oauth_account.id]), form)

    assert answer.status_code == 302
    assert pop.session_log[-1].mechanism == "XOAUTH2"
    account = MailAccount.objects.get(id=oauth_account.id)
    assert (account.policy, account.label) == ("delete", "Gmail")
    assert Grant.objects.filter(account=account).exists()


# --- In a real browser --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sign_in_with_google_and_reconnect_in_chromium(browser, live_server, settings, auth, pop, ca_file, alice):
    configure(settings, auth, pop, ca_file)
    web = Client()
    web.force_login(alice)
    SCREENS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, ignore_https_errors=True)
    host = live_server.url.split("//", 1)[1].split(":")[0]
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": web.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "domain": host,
                "path": "/",
            }
        ]
    )
    errors: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        page.goto(f"{live_server.url}/accounts/add/", wait_until="load")
        page.screenshot(path=str(SCREENS / "oauth-add.png"), full_page=True)
        page.get_by_role("button", name="Sign in with Google").click()
        page.wait_for_url(re.compile(r"/oauth/confirm/$"))
        assert EMAIL in page.locator("main").inner_text()
        page.screenshot(path=str(SCREENS / "oauth-confirm.png"), full_page=True)
        page.check("input[name=policy][value=keep]")
        page.get_by_role("button", name="Add account").click()
        page.wait_for_url(re.compile(r"/accounts/\d+/$"))
        account = MailAccount.objects.get(owner=alice)
        assert f"Signed in with Google as {EMAIL}" in page.locator("#oauth-status").inner_text()
        assert page.locator("h1").inner_text() == EMAIL

        assert sync.sync_account(account.id).fetched == 2
        auth.revoke(EMAIL)
        expire(account)
        assert sync.sync_account(account.id).error_class == "auth"
        page.reload(wait_until="load")
        page.screenshot(path=str(SCREENS / "oauth-reconnect.png"), full_page=True)
        assert "no longer accepts" in page.locator("#oauth-status").inner_text()

        page.get_by_role("button", name="Reconnect").click()
        page.wait_for_url(re.compile(rf"/accounts/{account.id}/$"))
        assert "Signed in again" in page.locator(".flash").inner_text()
        assert page.get_by_role("button", name="Reconnect").count() == 0
        assert sync.sync_account(account.id).error is None
    finally:
        context.close()
    assert errors == []


# --- The same grant for sending (SMTP XOAUTH2) ---------------------------------------


@pytest.fixture
def oauth_sender(alice_client, auth, google, ca_file, alice, smtp_server, settings):
    """alice's OAuth2 account, added while the provider's SMTP server is the SMTP fixture: it sends with its grant,
    with no SMTP step (its sending settings come with the sign-in)."""
    settings.WEBPOP_OAUTH_PROVIDERS["google"].update(
        smtp_host="localhost", smtp_port=smtp_server.starttls_port, smtp_security="starttls"
    )
    add_account(alice_client, auth, ca_file)
    return MailAccount.objects.get(owner=alice)


def test_signing_in_sets_up_sending_with_the_grant(oauth_sender, alice_client, smtp_server):
    from outgoing.models import SmtpSettings

    smtp = SmtpSettings.objects.get(account=oauth_sender)
    assert (smtp.host, smtp.port, smtp.security) == ("localhost", smtp_server.starttls_port, "starttls")
    assert (smtp.auth, smtp.from_email, smtp.password_encrypted) == ("oauth2", EMAIL, "")
    page = alice_client.get(reverse("outgoing:compose")).content.decode()
    assert 'id="send-setup"' not in page and EMAIL in page  # compose just works


def test_a_grant_without_sending_sets_nothing_up_until_a_reconnect_grants_it(
    settings, auth, pop, ca_file, alice, alice_client
):
    from outgoing.models import SmtpSettings

    configure(settings, auth, pop, ca_file, key="microsoft", scope="https://outlook.office.com/POP.AccessAsUser.All")
    add_account(alice_client, auth, ca_file, provider="microsoft")
    account = MailAccount.objects.get(owner=alice)
    assert not SmtpSettings.objects.filter(account=account).exists()
    settings.WEBPOP_OAUTH_PROVIDERS["microsoft"]["scope"] = providers._defaults("microsoft").scope
    sign_in(alice_client, auth, ca_file, reverse("oauth:reconnect", args=[account.id]))
    smtp = SmtpSettings.objects.get(account=account)
    assert (smtp.host, smtp.auth) == ("smtp.office365.com", "oauth2")


def _send_one(alice, account, django_capture_on_commit_callbacks):
    from outgoing import actions as outgoing_actions
    from outgoing import send

    outgoing = send.save_draft(alice, None, account=account, to="bob@example.org", subject="Hi", body="Hello.\n")
    with django_capture_on_commit_callbacks(execute=True):
        outgoing_actions.queue(alice, outgoing.id, delay=0)
    return send.deliver(outgoing.id), outgoing.id


def test_the_issued_token_sends_mail_over_smtp_with_xoauth2(
    oauth_sender, auth, smtp_server, alice, django_capture_on_commit_callbacks
):
    from outgoing import send

    smtp_server.accept_tokens_from(auth.access_tokens)  # live: the newest token the provider issued
    expire(oauth_sender)  # the send refreshes it first; the old token is no longer accepted anywhere
    outcome, _id = _send_one(alice, oauth_sender, django_capture_on_commit_callbacks)
    assert outcome is send.Outcome.SENT
    [received] = smtp_server.received
    assert (received.mechanism, received.login) == ("XOAUTH2", EMAIL)
    assert Grant.objects.get(account=oauth_sender).refreshed_at is not None


def test_sending_with_a_revoked_grant_goes_to_the_outbox_asking_to_reconnect(
    oauth_sender, auth, smtp_server, alice, django_capture_on_commit_callbacks
):
    from outgoing import send
    from outgoing.models import OutgoingMessage

    smtp_server.accept_tokens_from(auth.access_tokens)
    auth.revoke(EMAIL)
    expire(oauth_sender)
    outcome, outgoing_id = _send_one(alice, oauth_sender, django_capture_on_commit_callbacks)
    assert outcome is send.Outcome.FAILED
    assert "reconnect" in OutgoingMessage.objects.get(id=outgoing_id).error.lower()
    assert smtp_server.received == []
