"""Deleting a user removes every row that is theirs and every file only they referenced."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailbox import storage_gc, store, tasks
from mailbox.models import FileToFree, Message, Rule, UserFolder
from tests.conftest import wait_for
from tests.factories import build_message, make_account, store_message
from users import actions
from users.models import AuditEvent, Invitation
from webpop.celery import app as celery_app

pytestmark = pytest.mark.django_db

SHARED = build_message("Newsletter", "Same bytes for both users.", message_id="<shared@example.net>")
ALICE_ONLY = build_message(
    "Private", "Only Alice has this.", attachments=[("notes.txt", "text/plain", b"alice's notes\n")]
)


def _age_all_files(seconds: int = 3600) -> None:
    """Files stored a while ago (younger ones wait out the store's grace period)."""
    past = time.time() - seconds
    for path in store.root().rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def _rows_pointing_at(user_id: int) -> list[str]:
    """Every row in any table with a foreign key to this user."""
    user_model = get_user_model()
    found = []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            is_link = getattr(field, "many_to_one", False) or getattr(field, "one_to_one", False)
            if not (is_link and field.concrete and field.related_model is user_model):
                continue
            if model.objects.filter(**{field.name: user_id}).exists():
                found.append(f"{model._meta.label}.{field.name}")
    return found


@pytest.fixture
def mail(alice, bob):
    alice_account = make_account(alice)
    bob_account = make_account(bob)
    private = store_message(alice_account, ALICE_ONLY, "a-1")
    shared_alice = store_message(alice_account, SHARED, "a-2")
    shared_bob = store_message(bob_account, SHARED, "b-1")
    UserFolder.objects.create(owner=alice, name="Receipts")
    Rule.objects.create(owner=alice, field="from", contains="carol@example.net", action="move", folder="archive")
    Invitation.objects.create(token_hash="x" * 64, created_by=alice, expires_at=private.received_at)
    assert shared_alice.raw_path == shared_bob.raw_path  # content-addressed: one file for both
    return {"private": private, "shared": shared_bob}


def test_deleting_a_user_leaves_no_rows_and_no_files_only_they_referenced(
    alice, bob, mail, django_capture_on_commit_callbacks
):
    alice_client = Client()
    alice_client.force_login(alice)  # a session row for Alice too
    private = mail["private"]
    private_files = [private.raw_path, *private.attachments.values_list("stored_path", flat=True)]
    assert len(private_files) == 2
    _age_all_files()
    alice_id = alice.pk
    assert _rows_pointing_at(alice_id)  # the check finds rows while she exists

    with django_capture_on_commit_callbacks(execute=True):
        result = actions.delete_user(alice)
    storage_gc.free_released()  # as the worker woken after commit does

    assert result.messages == 2
    assert _rows_pointing_at(alice_id) == []
    assert not get_user_model().objects.filter(pk=alice_id).exists()
    for relpath in private_files:
        assert not (store.root() / relpath).exists(), relpath
    # Bob's copy of the shared message is untouched, file included.
    assert (store.root() / mail["shared"].raw_path).read_bytes() == SHARED
    assert Message.objects.filter(owner=bob).count() == 1
    # Alice's session is gone: her browser is signed out.
    assert alice_client.get(reverse("mailbox:inbox")).status_code == 302
    # The audit log keeps the deletion (by name, since the user row is gone).
    event = AuditEvent.objects.get(action="user.deleted")
    assert event.target == "user:alice" and event.actor is None


def test_files_are_freed_by_the_beat_sweep_when_the_wake_up_message_is_lost(
    alice, mail, monkeypatch, settings, django_capture_on_commit_callbacks
):
    lost = []
    monkeypatch.setattr(tasks.free_released_files, "delay", lambda: lost.append("free_released_files"))
    private = mail["private"]
    private_files = [private.raw_path, *private.attachments.values_list("stored_path", flat=True)]

    with django_capture_on_commit_callbacks(execute=True):
        actions.delete_user(alice)

    assert lost == ["free_released_files"]  # published after commit, and lost on the way
    # Stored moments ago: the same content may be in the middle of being stored again, so not yet...
    assert storage_gc.free_released().freed == 0
    assert all((store.root() / relpath).exists() for relpath in private_files)
    # ...but once their grace period is over, beat's sweep frees them from their rows alone.
    _age_all_files()
    FileToFree.objects.update(not_before=timezone.now())
    sweep = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith(".free_released_files"))
    assert sweep["schedule"] <= dt.timedelta(minutes=10)
    celery_app.tasks[sweep["task"]]()
    for relpath in private_files:
        assert not (store.root() / relpath).exists(), relpath
    assert (store.root() / mail["shared"].raw_path).read_bytes() == SHARED  # still Bob's
    assert not FileToFree.objects.exists()


def test_a_task_queued_by_an_earlier_version_becomes_rows_for_the_sweep(mail):
    celery_app.tasks["users.tasks.free_files"]([mail["private"].raw_path])  # the name earlier versions used
    assert list(FileToFree.objects.values_list("relpath", flat=True)) == [mail["private"].raw_path]


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_worker_woken_after_the_deletion_frees_the_files(alice, bob, mail, celery_worker):
    private = mail["private"]
    _age_all_files()
    actions.delete_user(alice)
    wait_for(lambda: not FileToFree.objects.exists())
    assert not (store.root() / private.raw_path).exists()
    assert (store.root() / mail["shared"].raw_path).exists()


def test_users_delete_themselves_with_their_password(alice, alice_client, mail, django_capture_on_commit_callbacks):
    url = reverse("users:delete_account")
    assert alice_client.get(url).status_code == 200
    response = alice_client.post(url, {"password": "wrong"})
    assert response.status_code == 200
    assert "not your password" in response.content.decode()
    assert get_user_model().objects.filter(username="alice").exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url, {"password": "alice-Password-1"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(username="alice").exists()
    assert not Message.objects.filter(pk=mail["private"].pk).exists()


def test_deleting_needs_post(alice_client):
    assert alice_client.get(reverse("users:delete_account")).status_code == 200  # the confirmation page only
    assert get_user_model().objects.filter(username="alice").exists()


def test_admin_deletes_users_through_the_same_function(
    alice, bob, mail, django_user_model, django_capture_on_commit_callbacks
):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-Password-1")
    client = Client()
    client.force_login(admin)
    _age_all_files()
    confirm = client.post(
        reverse("admin:auth_user_changelist"), {"action": "delete_selected", "_selected_action": [alice.pk]}
    )
    assert confirm.status_code == 200
    assert "Messages: 2" in confirm.content.decode()  # a summary, not every row
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:auth_user_changelist"),
            {"action": "delete_selected", "_selected_action": [alice.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert not django_user_model.objects.filter(pk=alice.pk).exists()
    storage_gc.free_released()
    assert not (store.root() / mail["private"].raw_path).exists()
    assert AuditEvent.objects.filter(action="user.deleted", actor=admin, target="user:alice").exists()


def test_admin_delete_page_of_one_user_uses_the_same_function(alice, mail, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-Password-1")
    client = Client()
    client.force_login(admin)
    url = reverse("admin:auth_user_delete", args=[alice.pk])
    assert "Messages: 2" in client.get(url).content.decode()
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not django_user_model.objects.filter(pk=alice.pk).exists()
    assert AuditEvent.objects.filter(action="user.deleted", actor=admin, target="user:alice", ip="127.0.0.1").exists()
