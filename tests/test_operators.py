"""Operators act through permissions (the "Operators" group), never through the staff flag alone.

The operator URLs are read from the URL configuration: each view says which permission
it asks for (users.operators.operator_required), tests/urlwalk.py says how to call it,
and a new operator URL missing from either fails here.
"""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse

from ops import actions
from tests import urlwalk
from tests.factories import make_account
from tests.urlwalk import COVERAGE, snapshot
from users import operators

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(alice, bob, settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]
    return urlwalk.build_world(alice, bob)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _permissions(*names: str) -> list[Permission]:
    codenames = [name.split(".", 1)[1] for name in names]
    found = list(Permission.objects.filter(content_type__app_label="ops", codename__in=codenames))
    assert len(found) == len(names)
    return found


def _operator_urls(world) -> list[tuple[str, str, str, dict]]:
    """(permission, method, url, data) for every request an operator URL takes, per urlwalk."""
    found = []
    for route in urlwalk.routes():
        case = COVERAGE.get(route.key)
        if case is None or case.kind != "operator":
            continue
        url = urlwalk.url_for(route, case.args(world))
        methods = case.methods.split()
        found += [(case.permission, "GET", url, q) for q in case.queries(world)] if "GET" in methods else []
        found += [(case.permission, "POST", url, d) for d in case.posts(world)] if "POST" in methods else []
        # The other method too: the permission is checked before anything else.
        found += [(case.permission, "POST", url, {})] if "POST" not in methods else []
        found += [(case.permission, "GET", url, {})] if "GET" not in methods else []
    return found


def test_every_operator_view_is_walked_with_the_permission_it_asks_for():
    asked = {r.key: r.view.operator_permission for r in urlwalk.routes() if hasattr(r.view, "operator_permission")}
    walked = {key: case.permission for key, case in COVERAGE.items() if case.kind == "operator"}
    assert asked == walked
    ops_urls = {r.key for r in urlwalk.routes() if r.key.startswith("ops:")}
    assert ops_urls <= set(asked), f"ops URLs without a permission: {sorted(ops_urls - set(asked))}"
    assert {"users:invitations", "users:revoke_invitation"} <= set(asked)
    assert set(asked.values()) == set(operators.PERMISSIONS) - {operators.VIEW_METRICS}  # /metrics: below


def test_staff_without_permissions_get_403_everywhere_and_change_nothing(world, django_user_model, enqueued):
    staff = django_user_model.objects.create_user("sam", is_staff=True)
    client = _client(staff)
    before = snapshot(world.alice)
    problems = []
    requests = _operator_urls(world)
    for _permission, method, url, data in requests:
        response = client.get(url, data) if method == "GET" else client.post(url, data)
        if response.status_code != 403:
            problems.append(f"{method} {url} {data}: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert len(requests) >= 15
    assert snapshot(world.alice) == before
    assert enqueued == []
    world.alice.refresh_from_db()
    assert world.alice.is_active


@pytest.mark.parametrize("missing", sorted(set(operators.PERMISSIONS) - {operators.VIEW_METRICS}))
def test_each_operator_url_asks_for_its_own_permission(world, django_user_model, enqueued, missing):
    # Holding every other operator permission opens nothing that needs this one.
    user = django_user_model.objects.create_user("pat", is_staff=True)
    user.user_permissions.add(*_permissions(*(p for p in operators.PERMISSIONS if p != missing)))
    client = _client(user)
    before = snapshot(world.alice)
    checked = 0
    for permission, method, url, data in _operator_urls(world):
        if permission != missing:
            continue
        checked += 1
        response = client.get(url, data) if method == "GET" else client.post(url, data)
        assert response.status_code == 403, f"{method} {url} {data}: {response.status_code}"
    assert checked
    assert snapshot(world.alice) == before and enqueued == []


def test_a_member_of_the_operators_group_uses_every_operator_url(world, django_user_model):
    member = django_user_model.objects.create_user("otto")
    member.groups.add(Group.objects.get(name=operators.GROUP))  # as made by the migration; no staff flag needed
    client = _client(member)
    problems = []
    for _permission, method, url, data in _operator_urls(world):
        with transaction.atomic():
            response = client.get(url, data) if method == "GET" else client.post(url, data)
            transaction.set_rollback(True)
        if response.status_code in (403, 404) or response.status_code >= 500:
            problems.append(f"{method} {url} {data}: {response.status_code}")
    assert not problems, "\n".join(problems)


def test_the_migration_made_the_operators_group_with_every_permission_and_runs_again_harmlessly():
    migration = importlib.import_module("ops.migrations.0003_operator_permissions")
    group = Group.objects.get(name=operators.GROUP)
    held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert held == set(operators.PERMISSIONS)
    migration.create_operators_group(apps, None)
    assert Group.objects.filter(name=operators.GROUP).count() == 1
    assert group.permissions.count() == len(operators.PERMISSIONS)
    assert Permission.objects.filter(content_type__model="operator").count() == len(operators.PERMISSIONS)


@pytest.mark.django_db(transaction=True)
def test_an_emptied_database_gets_the_operators_group_back_with_the_permissions():
    """``flush`` (as a transactional test's teardown runs it) empties every table and adds the permissions back
    on post_migrate; the group comes back with them, as an administrator who deleted it gets it on ``migrate``."""
    call_command("flush", "--no-input", verbosity=0)

    group = Group.objects.get(name=operators.GROUP)
    held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert held == set(operators.PERMISSIONS)
    group.permissions.clear()
    call_command("migrate", verbosity=0)
    assert group.permissions.count() == 0  # a group that is there stays as it was left


# --- Superusers are out of reach -----------------------------------------------------------


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", None)


def test_an_operator_cannot_disable_or_enable_a_superuser(staff, root, django_user_model):
    client = _client(staff)
    response = client.post(reverse("ops:user_active", args=[root.id]), {"active": "0"}, follow=True)
    assert "Only a superuser can disable or enable a superuser." in response.content.decode()
    root.refresh_from_db()
    assert root.is_active
    with pytest.raises(actions.ActionRefused):  # the action itself refuses, whoever calls it
        actions.set_user_active(staff, root, False)
    django_user_model.objects.filter(pk=root.pk).update(is_active=False)  # as another superuser may have
    with pytest.raises(actions.ActionRefused):
        actions.set_user_active(staff, root, True)
    root.refresh_from_db()
    assert not root.is_active


def test_an_operator_cannot_pause_a_superusers_account(staff, root, enqueued):
    account = make_account(root)
    response = _client(staff).post(reverse("ops:account_pause", args=[account.id]), {"pause": "1"}, follow=True)
    assert "Only a superuser can pause or resume a superuser" in response.content.decode()
    account.refresh_from_db()
    assert account.enabled
    with pytest.raises(actions.ActionRefused):
        actions.set_paused(staff, account, True)


def test_a_superuser_disables_another_superuser_but_not_themselves(root, django_user_model):
    other = django_user_model.objects.create_superuser("root2", "root2@example.org", None)
    actions.set_user_active(root, other, False)
    other.refresh_from_db()
    assert not other.is_active
    with pytest.raises(actions.ActionRefused):
        actions.set_user_active(root, root, False)
    root.refresh_from_db()
    assert root.is_active


def test_the_actions_check_the_permission_themselves(alice, bob):
    account = make_account(bob)
    for call in (
        lambda: actions.sync_now(alice, account),
        lambda: actions.set_paused(alice, account, True),
        lambda: actions.set_user_active(alice, bob, False),
    ):
        with pytest.raises(PermissionDenied):
            call()
    bob.refresh_from_db()
    account.refresh_from_db()
    assert bob.is_active and account.enabled


def test_the_superusers_buttons_are_off_for_an_operator(staff, root, alice):
    page = _client(staff).get(reverse("ops:users")).content.decode()
    row = page[page.index('row">root <span class="badge">superuser</span></th>') :]
    row = row[: row.index("</tr>")]
    assert "Disable</button>" in row and "disabled>" in row
    mine = page[page.index('row">olga') :]
    mine = mine[: mine.index("</tr>")]
    assert "disabled>" in mine  # nobody disables themselves
    other = page[page.index('row">alice') :]
    assert "disabled>" not in other[: other.index("</tr>")]


# --- Taking permissions away works at once ------------------------------------------------------


def _out_of_group(user) -> None:
    user.groups.remove(Group.objects.get(name=operators.GROUP))


def _group_lets_go(user) -> None:
    Group.objects.get(name=operators.GROUP).user_set.remove(user)


def _group_loses_the_permission(user) -> None:
    Group.objects.get(name=operators.GROUP).permissions.remove(*_permissions(operators.MANAGE_INVITATIONS))


def _group_deleted(user) -> None:
    Group.objects.get(name=operators.GROUP).delete()


@pytest.mark.parametrize("revoke", [_out_of_group, _group_lets_go, _group_loses_the_permission, _group_deleted])
def test_a_revoked_permission_stops_working_on_the_next_request(staff, revoke):
    client = _client(staff)
    # Creating an invitation writes the session after the permission was read: the cached
    # session then carries the user with their permissions.
    assert client.post(reverse("users:invitations"), {"email": "", "days": "3"}).status_code == 302
    assert client.get(reverse("users:invitations")).status_code == 200
    revoke(staff)
    assert client.get(reverse("users:invitations")).status_code == 403


# --- Navigation and the page cache ------------------------------------------------------------------


def test_the_invitations_link_needs_the_permission(alice, alice_client):
    link = f'href="{reverse("users:invitations")}"'
    alice.is_staff = True
    alice.save()
    assert link not in alice_client.get(reverse("users:security")).content.decode()
    alice.user_permissions.add(*_permissions(operators.MANAGE_INVITATIONS))
    assert link in alice_client.get(reverse("users:security")).content.decode()


def test_a_new_operator_sees_the_dashboard_link_on_a_cached_folder_page(alice, alice_client):
    link = f'href="{reverse("ops:dashboard")}"'
    alice.is_staff = True
    alice.save()
    assert link not in alice_client.get(reverse("mailbox:inbox")).content.decode()  # now cached
    operators.grant(alice)
    assert link in alice_client.get(reverse("mailbox:inbox")).content.decode()


def test_metrics_in_the_browser_need_the_metrics_permission(alice, alice_client, settings):
    settings.WEBPOP_METRICS_TOKEN = None
    alice.is_staff = True
    alice.user_permissions.add(*_permissions(*(p for p in operators.PERMISSIONS if p != operators.VIEW_METRICS)))
    alice.save()
    assert alice_client.get("/metrics").status_code == 404
    dashboard = alice_client.get(reverse("ops:dashboard")).content.decode()
    assert f'href="{reverse("metrics")}"' not in dashboard
    alice.user_permissions.add(*_permissions(operators.VIEW_METRICS))
    assert alice_client.get("/metrics").status_code == 200


def test_the_dashboard_names_quarantined_messages_by_uidl_not_subject(staff_client, world):
    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    quarantine = page[page.index('id="quarantine"') : page.index('id="storage"')]
    assert world.failure.uidl in quarantine
    assert "Alice-Secret-Subject" not in page


# --- The command ----------------------------------------------------------------------------


def test_grantoperator_makes_and_unmakes_an_operator(alice, alice_client):
    out = io.StringIO()
    call_command("grantoperator", "alice", stdout=out)
    assert out.getvalue().strip() == "alice is an operator."
    alice.refresh_from_db()
    assert alice.is_staff and alice.groups.filter(name=operators.GROUP).exists()
    assert alice_client.get(reverse("ops:dashboard")).status_code == 200
    call_command("grantoperator", "alice", "--revoke", stdout=io.StringIO())
    assert alice_client.get(reverse("ops:dashboard")).status_code == 403


def test_grantoperator_makes_the_group_when_it_is_missing(alice):
    Group.objects.filter(name=operators.GROUP).delete()
    call_command("grantoperator", "alice", stdout=io.StringIO())
    alice = type(alice).objects.get(pk=alice.pk)  # a fresh object: permissions are read once per object
    assert all(alice.has_perm(p) for p in operators.PERMISSIONS)


def test_grantoperator_names_a_missing_user():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("grantoperator", "nobody", stdout=io.StringIO())
