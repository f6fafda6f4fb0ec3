"""Per-user quotas: POP3 accounts (enforced), storage, sending rate; edited in the admin."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import MailAccount, Profile
from tests.factories import make_account

pytestmark = pytest.mark.django_db


def test_creating_an_account_beyond_the_quota_is_refused(alice, bob):
    Profile.objects.create(user=alice, max_accounts=2)
    make_account(alice)
    make_account(alice, host="pop.example.org")
    with pytest.raises(ValidationError, match="limit of 2 POP3 accounts"):
        make_account(alice, host="pop.example.com")
    assert MailAccount.objects.filter(owner=alice).count() == 2
    make_account(bob)  # Bob has no quota of his own and the site default is unlimited


def test_site_default_applies_when_the_profile_has_none(alice, settings):
    settings.WEBPOP_MAX_ACCOUNTS = 1
    make_account(alice)
    with pytest.raises(ValidationError):
        make_account(alice, host="pop.example.org")
    Profile.objects.filter(user=alice).update(max_accounts=5)  # the admin raised it for her
    make_account(alice, host="pop.example.org")


def test_add_form_says_so_before_anyone_types_a_password(alice, alice_client):
    Profile.objects.create(user=alice, max_accounts=1)
    make_account(alice)
    page = alice_client.get(reverse("accounts:add"))
    assert page.status_code == 403
    assert "limit of 1 POP3 accounts" in page.content.decode()
    response = alice_client.post(
        reverse("accounts:add"),
        {
            "host": "localhost",
            "security": "ssl",
            "port": 995,
            "username": "x",
            "password": "y",
            "policy": "keep",
            "poll_interval": 300,
            "action": "save",
            "save_anyway": "on",
        },
    )
    assert response.status_code == 403
    assert MailAccount.objects.filter(owner=alice).count() == 1


def test_sending_rate_falls_back_to_the_site_default(alice, settings):
    settings.WEBPOP_SEND_RATE_PER_HOUR = 40
    profile = Profile.objects.create(user=alice)
    assert profile.effective_send_rate_per_hour == 40
    profile.send_rate_per_hour = 5
    assert profile.effective_send_rate_per_hour == 5


def test_admin_edits_quotas_inline_and_lists_them(alice, django_user_model):
    make_account(alice)  # which gives her a profile row (the quota check locks it)
    profile = Profile.objects.get(user=alice)
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-Password-1")
    client = Client()
    client.force_login(admin)
    change = client.get(reverse("admin:auth_user_change", args=[alice.pk]))
    assert change.status_code == 200 and "profile-0-max_accounts" in change.content.decode()
    data = {
        "username": "alice",
        "email": "alice@example.org",
        "is_active": "on",
        "date_joined_0": "2026-11-26",
        "date_joined_1": "09:00:00",
        "initial-date_joined_0": "2026-11-26",
        "initial-date_joined_1": "09:00:00",
        "profile-TOTAL_FORMS": "1",
        "profile-INITIAL_FORMS": "1",
        "profile-0-id": str(profile.pk),
        "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1",
        "profile-0-max_accounts": "3",
        "profile-0-storage_quota_bytes": str(50 * 1024 * 1024),
        "profile-0-send_rate_per_hour": "12",
        "profile-0-time_zone": "",
        "profile-0-conversations": "on",
        "profile-0-user": str(alice.pk),
    }
    response = client.post(reverse("admin:auth_user_change", args=[alice.pk]), data)
    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.max_accounts, profile.storage_quota_bytes, profile.send_rate_per_hour) == (3, 50 * 1024 * 1024, 12)

    listing = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "50 MB" in listing and '<td class="field-send_rate">12</td>' in listing
    assert '<td class="field-storage_used">0.0 MB</td>' in listing


def test_the_storage_left_counts_every_stored_message_but_tombstones(alice, bob, settings):
    from django.utils import timezone

    from mailbox import quota
    from mailbox.models import Folder, Message

    accounts = {alice: make_account(alice), bob: make_account(bob)}

    def stored(owner, size, folder=Folder.INBOX):
        Message.objects.create(
            owner=owner, account=accounts[owner], uidl=f"q{Message.objects.count()}", sha256="0" * 64, size=size,
            raw_path="raw/q", date=timezone.now(), folder=folder,
        )  # fmt: skip

    assert quota.left(alice.id) is None  # no quota anywhere: unlimited
    Profile.objects.update_or_create(user=alice, defaults={"storage_quota_bytes": 10_000})
    stored(alice, 3_000)
    stored(alice, 2_000, Folder.TRASH)  # still stored: counts until the trash is emptied
    stored(alice, 4_000, Folder.PURGED)  # deleted for good, waiting only for the server's copy to go
    stored(bob, 9_000)
    assert quota.left(alice.id) == 5_000
    stored(alice, 6_000)
    assert quota.left(alice.id) == -1_000  # over: a sync stops fetching, an import fails
    settings.WEBPOP_DEFAULT_QUOTA_MB = 1
    assert quota.left(bob.id) == 1024 * 1024 - 9_000  # the site's default where the profile has none
