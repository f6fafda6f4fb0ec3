"""The operators' dashboard: operators only, the numbers it shows, and its actions (POST + CSRF, logged)."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount
from mailbox import sync
from mailbox.models import FetchFailure, SyncRun
from ops.models import WorkerHeartbeat
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

PAGES = ["ops:dashboard", "ops:accounts", "ops:users"]


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, staff, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("is_staff", [False, True])
@pytest.mark.parametrize("name", PAGES)
def test_signed_in_users_without_the_permission_get_403(alice, alice_client, name, is_staff):
    alice.is_staff = is_staff
    alice.save()
    assert alice_client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", PAGES)
def test_operators_see_the_pages(staff_client, name):
    assert staff_client.get(reverse(name)).status_code == 200


def test_the_dashboard_link_is_shown_to_operators_only(staff_client, alice, alice_client):
    link = f'href="{reverse("ops:dashboard")}"'
    assert link in staff_client.get(reverse("accounts:list")).content.decode()
    assert link not in alice_client.get(reverse("accounts:list")).content.decode()
    alice.is_staff = True  # staff without the permission: the admin's link, not the dashboard's
    alice.save()
    page = alice_client.get(reverse("accounts:list")).content.decode()
    assert link not in page and f'href="{reverse("admin:index")}"' in page


def _run(account, *, minutes_ago: float, seconds: float = 2.0, fetched: int = 0, error_class: str = "") -> SyncRun:
    started = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return SyncRun.objects.create(
        account=account,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=seconds),
        fetched=fetched,
        error_class=error_class,
    )


def test_dashboard_shows_health_workers_errors_and_slowest_servers(staff_client, alice, bob):
    ok = make_account(alice, host="fast.example.net")
    MailAccount.objects.filter(id=ok.id).update(last_success_at=timezone.now())
    broken = make_account(bob, host="slow.example.net")
    MailAccount.objects.filter(id=broken.id).update(last_error_class="auth", last_error="bad password")
    _run(ok, minutes_ago=5, seconds=1, fetched=7)
    _run(broken, minutes_ago=5, seconds=40, error_class="auth")
    _run(broken, minutes_ago=60 * 30, seconds=20, error_class="timeout")  # 30 hours ago: 7 days only
    WorkerHeartbeat.objects.create(hostname="w1@mx1", pid=10, concurrency=4)
    WorkerHeartbeat.objects.create(
        hostname="w2@mx2", pid=11, last_seen_at=timezone.now() - dt.timedelta(hours=1)
    )  # silent for an hour: missing

    page = staff_client.get(reverse("ops:dashboard")).content.decode()

    assert "Authentication error: 1" in page and "OK: 1" in page
    workers = page[page.index('id="workers"') :]
    assert re.search(r"w1@mx1</th>\s*<td><span class=\"badge state-alive\">alive", workers)
    assert re.search(r"w2@mx2</th>\s*<td><span class=\"badge state-late\">missing", workers)
    errors = page[page.index('id="errors"') : page.index('id="slowest"')]
    day, week = errors.split("Last 7 days")
    assert "<code>auth</code>" in day and "<code>timeout</code>" not in day
    assert "<code>auth</code>" in week and "<code>timeout</code>" in week
    slowest = page[page.index('id="slowest"') : page.index('id="problems"')]
    assert slowest.index("slow.example.net") < slowest.index("fast.example.net")
    assert "30.00 s" in slowest  # (40 + 20) / 2
    problems = page[page.index('id="problems"') : page.index('id="quarantine"')]
    assert broken.display_name in problems and ok.display_name not in problems


def test_charts_are_accessible_svg_with_a_table_of_every_hour(staff_client, alice):
    account = make_account(alice)
    for _ in range(3):  # just now: a minute ago is the previous hour during an hour's first minute
        _run(account, minutes_ago=0, seconds=0, fetched=4)
    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    for chart_id in ("syncs-24h", "fetched-24h", "syncs-7d", "fetched-7d"):
        figure = page[page.index(f'id="{chart_id}"') :]
        figure = figure[: figure.index("</figure>")]
        assert f'aria-labelledby="{chart_id}-title {chart_id}-desc"' in figure
        assert f'<title id="{chart_id}-title">' in figure and f'<desc id="{chart_id}-desc">' in figure
        rows = re.findall(r"<tr><td>[^<]+</td><td>(\d+)</td></tr>", figure)
        assert len(rows) == (24 if chart_id.endswith("24h") else 168)
        expected = 3 if chart_id.startswith("syncs") else 12
        assert rows[-1] == str(expected)  # the current hour is the last bar
        assert figure.count('<rect class="bar"') == 1
    assert "style=" not in page and "<style" not in page


def test_dashboard_queries_do_not_grow_with_users_accounts_or_runs(staff_client, django_user_model):
    def populate(n: int) -> None:
        for i in range(n):
            user = django_user_model.objects.create_user(f"user{n}-{i}")  # no password: no hashing cost
            account = make_account(user, host=f"h{i}.example.net")
            MailAccount.objects.filter(id=account.id).update(last_error_class="timeout")
            _run(account, minutes_ago=i, error_class="timeout")
            store_message(account, build_message(f"m{n}-{i}"), f"uid-{i}")
            FetchFailure.objects.create(account=account, uidl=f"bad-{i}", attempts=3, quarantined_at=timezone.now())

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    populate(2)
    staff_client.get(reverse("ops:dashboard"))  # the session's first request loads preferences
    with CaptureQueriesContext(connection) as few:
        assert staff_client.get(reverse("ops:dashboard")).status_code == 200
    populate(15)
    with CaptureQueriesContext(connection) as many:
        assert staff_client.get(reverse("ops:dashboard")).status_code == 200
    assert len(many) == len(few)


def test_queue_depth_counts_waiting_tasks_of_the_folder_queue(staff_client, settings, tmp_path):
    settings.REDIS_URL = None
    settings.CELERY_BROKER_DIR = tmp_path
    (tmp_path / "queue").mkdir()
    for i in range(3):
        (tmp_path / "queue" / f"{i}_abc.celery.msg").write_text("{}")
    (tmp_path / "queue" / "9_abc.other.msg").write_text("{}")
    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    tile = page[page.index('id="queue-depth"') :]
    assert re.search(r'tile-value">3<', tile)


def test_queue_depth_is_na_when_the_broker_cannot_be_asked(staff_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    assert re.search(r'id="queue-depth">.*?tile-value">n/a<', page, re.S)


def test_accounts_list_filters_by_health_and_search(staff_client, alice, bob):
    good = make_account(alice, host="good.example.net")
    MailAccount.objects.filter(id=good.id).update(last_success_at=timezone.now())
    bad = make_account(bob, host="bad.example.net")
    MailAccount.objects.filter(id=bad.id).update(last_error_class="auth")
    url = reverse("ops:accounts")
    auth_page = staff_client.get(url, {"health": "auth"}).content.decode()
    assert "bad.example.net" in auth_page and "good.example.net" not in auth_page
    search_page = staff_client.get(url, {"q": "alice"}).content.decode()
    assert "good.example.net" in search_page and "bad.example.net" not in search_page


# --- Actions ------------------------------------------------------------------------


@pytest.fixture
def account(alice):
    return make_account(alice)


@pytest.fixture
def quarantined(account):
    return FetchFailure.objects.create(account=account, uidl="uid-bad", attempts=3, quarantined_at=timezone.now())


def _actions(account, quarantined, alice):
    return [
        (reverse("ops:account_sync", args=[account.id]), {}),
        (reverse("ops:account_pause", args=[account.id]), {"pause": "1"}),
        (reverse("ops:user_active", args=[alice.id]), {"active": "0"}),
        (reverse("ops:failure_retry", args=[quarantined.id]), {}),
    ]


def test_actions_are_post_only(staff_client, account, quarantined, alice):
    for url, _data in _actions(account, quarantined, alice):
        assert staff_client.get(url).status_code == 405


def test_actions_need_the_csrf_token(staff, account, quarantined, alice, enqueued):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    for url, data in _actions(account, quarantined, alice):
        assert client.post(url, data).status_code == 403
    alice.refresh_from_db()
    account.refresh_from_db()
    assert (alice.is_active, account.enabled, enqueued) == (True, True, [])
    assert FetchFailure.objects.filter(id=quarantined.id).exists()


def test_actions_are_403_for_users_without_the_permission(bob_client, account, quarantined, alice, enqueued):
    for url, data in _actions(account, quarantined, alice):
        assert bob_client.post(url, data).status_code == 403
    alice.refresh_from_db()
    assert alice.is_active and enqueued == []


def test_actions_on_missing_objects_are_404(staff_client):
    for name in ("ops:account_sync", "ops:account_pause", "ops:user_active", "ops:failure_retry"):
        assert staff_client.post(reverse(name, args=[999999])).status_code == 404


def test_sync_now_enqueues_the_account_and_is_logged(
    staff_client, staff, account, enqueued, caplog, django_capture_on_commit_callbacks
):
    with caplog.at_level(logging.INFO, logger="webpop.audit"), django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("ops:account_sync", args=[account.id]))
    assert response.status_code == 302
    assert enqueued == [account.id]
    assert f"ops action=sync_now actor_id={staff.id} actor=olga account_id={account.id}" in caplog.text


def test_sync_now_refuses_a_paused_account(staff_client, account, enqueued):
    MailAccount.objects.filter(id=account.id).update(enabled=False)
    staff_client.post(reverse("ops:account_sync", args=[account.id]))
    assert enqueued == []


def test_pause_and_resume_an_account(staff_client, account, caplog):
    url = reverse("ops:account_pause", args=[account.id])
    with caplog.at_level(logging.INFO, logger="webpop.audit"):
        staff_client.post(url, {"pause": "1"})
        account.refresh_from_db()
        assert not account.enabled
        staff_client.post(url, {"pause": "0", "next": reverse("ops:dashboard")})
    account.refresh_from_db()
    assert account.enabled
    assert "action=pause_account" in caplog.text and "action=resume_account" in caplog.text


def test_a_disabled_user_cannot_sign_in_and_is_not_polled(staff_client, alice, alice_client, account, caplog):
    MailAccount.objects.filter(id=account.id).update(next_poll_at=timezone.now() - dt.timedelta(minutes=1))
    with caplog.at_level(logging.INFO, logger="webpop.audit"):
        response = staff_client.post(reverse("ops:user_active", args=[alice.id]), {"active": "0"})
    assert response.status_code == 302
    assert "action=disable_user actor_id=" in caplog.text and f"user_id={alice.id}" in caplog.text
    alice.refresh_from_db()
    assert not alice.is_active
    assert sync.claim_due_accounts() == []
    # Her open session no longer works.
    assert alice_client.get(reverse("mailbox:inbox")).status_code == 302

    staff_client.post(reverse("ops:user_active", args=[alice.id]), {"active": "1"})
    assert sync.claim_due_accounts() == [account.id]


def test_operators_cannot_disable_themselves(staff_client, staff):
    staff_client.post(reverse("ops:user_active", args=[staff.id]), {"active": "0"})
    staff.refresh_from_db()
    assert staff.is_active


def test_retry_a_quarantined_message(staff_client, quarantined, account, caplog):
    with caplog.at_level(logging.INFO, logger="webpop.audit"):
        response = staff_client.post(reverse("ops:failure_retry", args=[quarantined.id]))
    assert response.status_code == 302
    assert not FetchFailure.objects.filter(id=quarantined.id).exists()
    assert "action=retry_quarantined" in caplog.text


def test_retry_only_applies_to_quarantined_messages(staff_client, account):
    failing = FetchFailure.objects.create(account=account, uidl="uid-still-trying", attempts=1)
    assert staff_client.post(reverse("ops:failure_retry", args=[failing.id])).status_code == 404


def test_actions_return_to_a_local_page_only(staff_client, account):
    url = reverse("ops:account_pause", args=[account.id])
    assert staff_client.post(url, {"pause": "1", "next": "/ops/accounts/?health=paused"})["Location"] == (
        "/ops/accounts/?health=paused"
    )
    assert staff_client.post(url, {"pause": "0", "next": "https://evil.example/"})["Location"] == reverse(
        "ops:accounts"
    )


def test_heartbeats_and_the_beat_lease_are_readable_in_django_admin(django_user_model):
    from ops import beatlock

    admin_user = django_user_model.objects.create_superuser("root", "root@example.org", "root-Password-1")
    client = Client()
    client.force_login(admin_user)
    WorkerHeartbeat.objects.create(hostname="w9@mx9", pid=9)
    beatlock.hold("mx9:42", 60)
    assert "w9@mx9" in client.get("/admin/ops/workerheartbeat/?q=w9").content.decode()
    assert "mx9:42" in client.get("/admin/ops/schedulerlease/").content.decode()
    assert client.get("/admin/ops/workerheartbeat/add/").status_code == 403


def test_users_list_pages_through_every_user(staff_client, django_user_model):
    django_user_model.objects.bulk_create(django_user_model(username=f"user{i:03d}") for i in range(60))
    first = staff_client.get(reverse("ops:users")).content.decode()
    second = staff_client.get(reverse("ops:users"), {"page": 2}).content.decode()
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    names = {f"user{i:03d}" for i in range(60)}
    assert {n for n in names if f">{n}<" in first} | {n for n in names if f">{n}<" in second} == names


def test_low_disk_space_is_alerted_on_the_dashboard_and_in_metrics(staff_client, settings):
    from mailbox import store

    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    assert 'id="disks"' in page and str(store.root()) in page
    settings.WEBPOP_DISK_ALERT_FREE_MB = 0
    settings.WEBPOP_DISK_ALERT_FREE_PERCENT = 0
    assert 'id="disk-alert"' not in staff_client.get(reverse("ops:dashboard")).content.decode()
    settings.WEBPOP_DISK_ALERT_FREE_PERCENT = 100  # no disk is ever entirely free: the alert shows
    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    alert = re.search(r'<div class="notice bad" role="alert" id="disk-alert">(.*?)</div>', page, re.S).group(1)
    assert f"free on the disk of {store.root()}" in alert and "nothing is lost" in alert
    assert "disk-low" in page

    from ops import metrics

    text = metrics.render()
    low = re.findall(r'^webpop_disk_low\{path="[^"]+",place="([^"]+)"\} ([0-9.e+]+)$', text, re.M)
    assert low and all(float(flag) == 1 for _place, flag in low)
    assert any("store" in place for place, _flag in low)
    assert re.search(r"^webpop_disk_free_bytes\{.*\} [0-9.]+(e\+[0-9]+)?$", text, re.M)


def test_damaged_files_are_counted_on_the_dashboard_and_in_metrics(staff_client):
    from mailbox import damage
    from ops import metrics

    tile = re.compile(r'id="damaged-files">.*?<span class="tile-value">(\d+)</span>', re.S)
    assert tile.search(staff_client.get(reverse("ops:dashboard")).content.decode()).group(1) == "0"
    damage.mark(f"raw/ab/{'ab' * 32}.eml", "ab" * 32, "missing")
    damage.mark(f"att/cd/{'cd' * 32}", "cd" * 32, "corrupt")
    page = staff_client.get(reverse("ops:dashboard")).content.decode()
    assert tile.search(page).group(1) == "2" and "verifystore --repair" in page
    text = metrics.render()
    assert 'webpop_damaged_files{kind="missing"} 1' in text and 'webpop_damaged_files{kind="corrupt"} 1' in text
