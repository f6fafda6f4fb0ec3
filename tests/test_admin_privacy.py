"""The admin never shows what users' mail says, and deletes mail through the app's own paths."""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from mailbox import storage_gc, store, sync
from mailbox.models import Attachment, FetchFailure, Message
from tests import urlwalk
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

# What alice's mail says and who it is from or to: nobody sees it in the admin.
MAIL_CONTENT = (
    "Alice-Secret-Subject",
    "alice-secret-body",
    "@alice-secret.example",  # her correspondent's address and the Message-ID
    "alice-secret-plan.pdf",
    "alice-secret-draft-notes.txt",
    "alice-secret-signature",
    "friend@example.net",  # the recipient of her draft
)


@pytest.fixture
def world(alice, bob, settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]
    return urlwalk.build_world(alice, bob)


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", None)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_no_admin_page_shows_what_users_mail_says(world, root):
    client = _client(root)
    pages = 0
    problems = []
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        urls = [_url(model, "changelist")]
        for pk in model.objects.order_by("pk").values_list("pk", flat=True)[:50]:
            urls += [_url(model, "change", pk), _url(model, "history", pk), _url(model, "delete", pk)]
        for url in urls:
            response = client.get(url)
            pages += 1
            body = response.content.decode()
            if response.status_code not in (200, 403):
                problems.append(f"{url}: {response.status_code}")
            problems += [f"{url} shows {secret!r}" for secret in MAIL_CONTENT if secret in body]
    assert not problems, "\n".join(problems)
    assert pages > 50


def test_the_message_admin_shows_metadata_and_searches_no_content(world, root):
    client = _client(root)
    message = world.message
    page = client.get(_url(Message, "change", message.pk)).content.decode()
    for shown in (message.uidl, message.sha256, message.raw_path):
        assert shown in page
    for field in ("search_text", "html_cache", "snippet", "subject", "from_email", "to"):
        assert f'name="{field}"' not in page and f"field-{field}" not in page
    assert 'name="_save"' not in page  # read-only
    changelist = _url(Message, "changelist")
    assert client.get(changelist, {"q": "Alice-Secret-Subject"}).context["cl"].result_count == 0
    assert client.get(changelist, {"q": "news@alice-secret.example"}).context["cl"].result_count == 0
    assert client.get(changelist, {"q": message.uidl}).context["cl"].result_count == 1
    failures = _url(FetchFailure, "changelist")
    assert client.get(failures, {"q": "Alice-Secret-Subject"}).context["cl"].result_count == 0


def test_attachments_are_not_deleted_or_changed_alone(world, root):
    client = _client(root)
    attachment = world.attachment
    assert client.post(_url(Attachment, "delete", attachment.pk), {"post": "yes"}).status_code == 403
    assert Attachment.objects.filter(pk=attachment.pk).exists()


@pytest.mark.parametrize("how", ["page", "bulk"])
def test_deleting_a_message_in_the_admin_purges_it_as_the_app_does(pop_user, dovecot_account, alice, root, how):
    pop_user.deliver(build_message("to remove", attachments=[("a.pdf", "application/pdf", b"%PDF-1.4 data")]))
    account = dovecot_account(policy="keep")
    sync.sync_account(account.id)
    message = Message.objects.get(account=account)
    raw_file = store.path_of(message.raw_path)
    client = _client(root)
    if how == "page":
        response = client.post(_url(Message, "delete", message.pk), {"post": "yes"})
    else:
        data = {"action": "delete_selected", "_selected_action": [message.pk], "post": "yes"}
        response = client.post(_url(Message, "changelist"), data)
    assert response.status_code == 302
    message.refresh_from_db()  # a tombstone: its UIDL stays known while the server keeps the copy
    assert (message.folder, message.raw_path, message.search_text) == ("purged", "", "")
    assert not Attachment.objects.filter(message=message).exists()
    assert sync.sync_account(account.id).fetched == 0  # not fetched again
    assert len(pop_user.messages()) == 1  # the server copy is the owner's business
    storage_gc.free_released(grace=dt.timedelta(0))  # the files the purge released
    assert not raw_file.exists()


def test_deleting_a_message_whose_server_copy_is_gone_removes_the_row(alice, root):
    account = make_account(alice)
    message = store_message(account, build_message("gone"), "u-1")
    Message.objects.filter(pk=message.pk).update(server_state="gone")
    _client(root).post(_url(Message, "delete", message.pk), {"post": "yes"})
    assert not Message.objects.filter(pk=message.pk).exists()


def test_deleting_an_account_in_the_admin_confirms_with_a_count_and_removes_its_mail(world, root):
    client = _client(root)
    url = _url(type(world.account), "delete", world.account.pk)
    page = client.get(url).content.decode()
    assert "Alice-Secret-Subject" not in page
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Message.objects.filter(account_id=world.account.pk).exists()


def test_retrying_quarantined_mail_in_the_admin_needs_the_operators_permission(world, django_user_model):
    user = django_user_model.objects.create_user("sam", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_fetchfailure", "change_fetchfailure"]))
    client = _client(user)
    url = _url(FetchFailure, "changelist")
    assert 'value="retry"' not in client.get(url).content.decode()
    client.post(url, {"action": "retry", "_selected_action": [world.failure.pk]})
    world.failure.refresh_from_db()
    assert world.failure.quarantined_at is not None
    user.user_permissions.add(Permission.objects.get(codename="act_on_accounts"))
    client.post(url, {"action": "retry", "_selected_action": [world.failure.pk]})
    assert not FetchFailure.objects.filter(pk=world.failure.pk, quarantined_at__isnull=False).exists()
