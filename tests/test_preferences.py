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
