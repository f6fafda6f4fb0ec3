import pytest
from django.urls import reverse

from accounts.models import Profile
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


def test_dates_show_in_the_users_time_zone(alice_client, alice):
    store_message(make_account(alice), build_message("tz", date="Thu, 26 Nov 2026 09:00:00 +0000"), "1")
    assert "Nov 26, 2026 09:00" in alice_client.get(reverse("mailbox:inbox")).content.decode()
    response = alice_client.post(reverse("accounts:preferences"), {"time_zone": "Asia/Tokyo", "conversations": "on"})
    assert response.status_code == 302
    assert Profile.objects.get(user=alice).time_zone == "Asia/Tokyo"
    assert "Nov 26, 2026 18:00" in alice_client.get(reverse("mailbox:inbox")).content.decode()


def test_unknown_time_zone_is_refused(alice_client, alice):
    response = alice_client.post(reverse("accounts:preferences"), {"time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Profile.objects.filter(user=alice).exists()


ZONE_URL = reverse("accounts:browser_time_zone")


def test_first_sign_in_takes_the_browsers_time_zone_once(alice_client, alice):
    store_message(make_account(alice), build_message("tz", date="Thu, 26 Nov 2026 09:00:00 +0000"), "1")
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert f'data-time-zone-url="{ZONE_URL}"' in page  # no zone chosen: the page asks the browser
    assert alice_client.post(ZONE_URL, {"time_zone": "America/New_York"}).status_code == 204
    assert Profile.objects.get(user=alice).time_zone == "America/New_York"
    page = alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert "Nov 26, 2026 04:00" in page and "data-time-zone-url" not in page
    # Another browser later (another zone) changes nothing: Preferences decide from now on.
    alice_client.post(ZONE_URL, {"time_zone": "Asia/Tokyo"})
    assert Profile.objects.get(user=alice).time_zone == "America/New_York"
    alice_client.post(reverse("accounts:preferences"), {"time_zone": "Asia/Tokyo"})
    assert Profile.objects.get(user=alice).time_zone == "Asia/Tokyo"


def test_a_time_zone_that_is_none_is_ignored_and_not_asked_again(alice_client, alice):
    alice_client.get(reverse("mailbox:inbox"))
    assert alice_client.post(ZONE_URL, {"time_zone": "Mars/Olympus"}).status_code == 204
    assert Profile.objects.filter(user=alice, time_zone_chosen=True).count() == 0
    assert "data-time-zone-url" not in alice_client.get(reverse("mailbox:inbox")).content.decode()
    assert alice_client.get(ZONE_URL).status_code == 405


def test_the_sites_zone_chosen_in_preferences_is_kept(alice_client, alice, django_user_model):
    from accounts.views_prefs import save_preferences

    save_preferences(alice, time_zone="", conversations=True)
    assert "data-time-zone-url" not in alice_client.get(reverse("mailbox:inbox")).content.decode()
    alice_client.post(ZONE_URL, {"time_zone": "Europe/Berlin"})
    assert Profile.objects.get(user=alice).time_zone == ""
