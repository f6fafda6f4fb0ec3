"""The audit log records sign-ins, sign-outs, security changes and admin actions; the admin only reads it."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from users import actions, audit
from users.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-Password-1")
    client = Client(REMOTE_ADDR="192.0.2.10")
    client.force_login(admin)
    return client


def test_sign_in_and_sign_out_are_recorded_with_the_address(alice):
    client = Client(REMOTE_ADDR="198.51.100.3")
    client.post(reverse("login"), {"username": "alice", "password": "alice-Password-1"})
    client.post(reverse("logout"))
    events = list(AuditEvent.objects.filter(actor=alice).order_by("time", "id").values_list("action", "ip"))
    assert events == [("login", "198.51.100.3"), ("logout", "198.51.100.3")]
    assert "alice-Password-1" not in json.dumps(list(AuditEvent.objects.values_list("details", flat=True)))


def test_admin_changes_are_recorded(alice, admin_client):
    response = admin_client.post(reverse("admin:auth_group_add"), {"name": "Helpdesk", "permissions": []})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.add")
    assert event.actor_name == "root" and event.target == "group:Helpdesk" and event.ip == "192.0.2.10"


def test_other_code_records_its_own_events(alice, rf):
    request = rf.post("/somewhere", REMOTE_ADDR="203.0.113.4")
    request.user = alice
    event = audit.record(request, "mail.sent", "message:42", recipients=3)
    assert (event.actor, event.ip, event.details) == (alice, "203.0.113.4", {"recipients": 3})


def test_audit_log_is_read_only_in_the_admin(alice, admin_client):
    event = audit.record(None, "mail.sent", "message:1", actor=alice)
    listing = admin_client.get(reverse("admin:users_auditevent_changelist") + "?action=mail.sent")
    assert listing.status_code == 200 and "mail.sent" in listing.content.decode()
    assert admin_client.get(reverse("admin:users_auditevent_change", args=[event.pk])).status_code == 200
    assert admin_client.get(reverse("admin:users_auditevent_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:users_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_log_is_for_staff_only(alice_client):
    assert alice_client.get(reverse("admin:users_auditevent_changelist")).status_code == 302


def test_daily_cleanup_prunes_old_events_and_expired_sessions(alice, alice_client, settings):
    import datetime as dt

    from django.utils import timezone

    from users import tasks
    from users.models import Session

    settings.WEBPOP_AUDIT_DAYS = 30
    old = audit.record(None, "mail.sent", "message:1", actor=alice)
    AuditEvent.objects.filter(pk=old.pk).update(time=timezone.now() - dt.timedelta(days=31))
    recent = audit.record(None, "mail.sent", "message:2", actor=alice)
    live = Session.objects.get(user=alice)
    stale = Client()
    stale.force_login(alice)
    Session.objects.exclude(pk=live.pk).update(expire_date=timezone.now() - dt.timedelta(seconds=1))

    assert tasks.cleanup() == {"sessions": 1, "audit_events": 1, "unverified_users": 0}
    assert AuditEvent.objects.filter(pk=recent.pk).exists() and not AuditEvent.objects.filter(pk=old.pk).exists()
    assert list(Session.objects.values_list("pk", flat=True)) == [live.pk]


def test_bulk_admin_actions_are_recorded_one_event_per_object(alice, admin_client):
    from django.contrib.auth.models import Group

    groups = [Group.objects.create(name=name) for name in ("Sales", "Support")]
    response = admin_client.post(
        reverse("admin:auth_group_changelist"),
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )
    assert response.status_code == 302 and not Group.objects.filter(pk__in=[g.pk for g in groups]).exists()
    targets = set(AuditEvent.objects.filter(action="admin.delete").values_list("target", flat=True))
    assert targets == {"group:Sales", "group:Support"}


def test_admin_turns_off_two_factor_for_a_user_who_lost_their_phone(alice, admin_client):
    from users import twofactor

    twofactor.new_backup_codes(alice)
    response = admin_client.post(
        reverse("admin:auth_user_changelist"), {"action": "turn_off_two_factor", "_selected_action": [alice.pk]}
    )
    assert response.status_code == 302
    assert not twofactor.has_device(alice)
    event = AuditEvent.objects.get(action="2fa.disabled")
    assert event.actor_name == "root" and event.target == "user:alice"


def test_admin_signs_a_user_out_everywhere(alice, admin_client):
    browsers = [Client(), Client()]
    for browser in browsers:
        browser.force_login(alice)
    response = admin_client.post(
        reverse("admin:auth_user_changelist"), {"action": "sign_out_everywhere", "_selected_action": [alice.pk]}
    )
    assert response.status_code == 302
    for browser in browsers:
        assert browser.get(reverse("mailbox:inbox")).status_code == 302
    assert admin_client.get(reverse("admin:index")).status_code == 200  # the admin's own session stays
    assert AuditEvent.objects.get(action="session.ended").details == {"count": 2, "by_admin": True}


def test_people_see_recent_activity_on_their_account(alice, bob):
    Client(REMOTE_ADDR="203.0.113.99").post(reverse("login"), {"username": "alice", "password": "wrong"})
    Client(REMOTE_ADDR="203.0.113.99").post(reverse("login"), {"username": "bob", "password": "wrong"})
    client = Client(REMOTE_ADDR="198.51.100.3")
    client.post(reverse("login"), {"username": "alice", "password": "alice-Password-1"})
    page = client.get(reverse("users:security")).content.decode()
    activity = page.split('id="activity"', 1)[1].split("</table>", 1)[0]
    assert "Wrong password" in activity and "203.0.113.99" in activity
    assert "Signed in" in activity and "198.51.100.3" in activity
    assert activity.count("<tr>") == 3  # header, her failure, her sign-in: nothing of Bob's


def test_a_new_holder_of_a_deleted_users_name_sees_none_of_their_activity(alice, django_user_model):
    Client(REMOTE_ADDR="203.0.113.7").post(reverse("login"), {"username": "alice", "password": "alice-Password-1"})
    Client(REMOTE_ADDR="203.0.113.8").post(reverse("login"), {"username": "alice", "password": "wrong"})
    actions.delete_user(alice)
    newcomer = django_user_model.objects.create_user("alice", "other-alice@example.net", "Other-Alice-Pass-1")
    client = Client(REMOTE_ADDR="198.51.100.3")
    client.post(reverse("login"), {"username": "alice", "password": "Other-Alice-Pass-1"})
    page = client.get(reverse("users:security")).content.decode()
    activity = page.split('id="activity"', 1)[1].split("</table>", 1)[0]
    assert "198.51.100.3" in activity and activity.count("<tr>") == 2  # header, her own sign-in
    assert "203.0.113.7" not in page and "203.0.113.8" not in page
    assert [event.ip for event, _label in audit.recent_for(newcomer)] == ["198.51.100.3"]
    assert AuditEvent.objects.filter(ip="203.0.113.7").exists()  # the log itself keeps them, for staff
