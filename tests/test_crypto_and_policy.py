import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import connection

from accounts import crypto
from accounts.policy import Policy
from tests.factories import make_account


@pytest.mark.django_db
def test_password_is_encrypted_at_rest(alice):
    account = make_account(alice, password="hunter2-very-secret")
    with connection.cursor() as cursor:
        cursor.execute("SELECT password_encrypted FROM accounts_mailaccount WHERE id = %s", [account.id])
        (stored,) = cursor.fetchone()
    assert "hunter2" not in stored
    assert account.get_password() == "hunter2-very-secret"


def test_old_keys_still_decrypt_and_rotate_moves_to_newest(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBPOP_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("pw")
    settings.WEBPOP_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "pw"
    rotated = crypto.rotate(token)
    settings.WEBPOP_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "pw"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("keep", Policy()),
        ("delete", Policy(delete_after_fetch=True)),
        ("mirror", Policy(mirror=True)),
        ("days:30", Policy(delete_after_days=30)),
        ("mirror+days:7", Policy(mirror=True, delete_after_days=7)),
        ("days:7+mirror", Policy(mirror=True, delete_after_days=7)),
    ],
)
def test_policy_round_trip(text, policy):
    assert Policy.parse(text) == policy
    assert Policy.parse(str(policy)) == policy


@pytest.mark.parametrize("text", ["", "drop", "days:0", "days:-1", "days:x", "mirror+mirror", "delete+mirror"])
def test_bad_policy_is_refused_with_a_clear_message(text):
    with pytest.raises(ValidationError, match="Unknown policy"):
        Policy.parse(text)
