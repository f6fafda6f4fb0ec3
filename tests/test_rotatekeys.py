"""``manage.py rotatekeys``: every stored credential moves to the newest key, so the old one can go."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import actions, crypto, keyrotation
from accounts.models import MailAccount
from tests.factories import make_account

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("rotatekeys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def old_accounts(settings, alice, bob):
    settings.WEBPOP_ENCRYPTION_KEYS = [OLD]
    passwords = {}
    for owner, number in [(alice, 1), (alice, 2), (bob, 3), (bob, 4), (bob, 5)]:
        account = make_account(owner, username=f"user{number}", password=f"pop-password-{number}")
        passwords[account.id] = f"pop-password-{number}"
    return passwords


def stored() -> dict[int, str]:
    return dict(MailAccount.objects.values_list("id", "password_encrypted"))


def test_round_trip_old_key_removed_after_rotation(settings, old_accounts):
    before = stored()
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW, OLD]  # the new key first
    out, err = run("--batch-size", "2")
    assert "accounts.MailAccount.password_encrypted: 5 stored, 5 re-encrypted, 0 already" in out
    assert [line for line in err.splitlines() if line.startswith("accounts.MailAccount")] == [
        "accounts.MailAccount.password_encrypted: 2/5",
        "accounts.MailAccount.password_encrypted: 4/5",
        "accounts.MailAccount.password_encrypted: 5/5",
    ]
    after = stored()
    assert all(after[pk] != before[pk] for pk in before)
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW]  # the old key removed
    for account in MailAccount.objects.all():
        assert account.get_password() == old_accounts[account.id]
    for token in after.values():
        with pytest.raises(InvalidToken):  # the old key alone reads nothing any more
            Fernet(OLD.encode()).decrypt(token.encode())


def test_a_second_run_changes_nothing(settings, old_accounts):
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW, OLD]
    run()
    first = stored()
    out, _ = run()
    assert "5 stored, 0 re-encrypted, 5 already under the newest key" in out
    assert stored() == first


def test_dry_run_counts_and_changes_nothing(settings, old_accounts):
    before = stored()
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW, OLD]
    out, _ = run("--dry-run")
    assert "5 stored, 5 would be re-encrypted" in out
    assert stored() == before


def test_unreadable_credentials_are_reported_and_the_rest_still_rotated(settings, old_accounts):
    lost = Fernet.generate_key().decode()
    settings.WEBPOP_ENCRYPTION_KEYS = [lost]
    orphan = make_account(MailAccount.objects.first().owner, username="orphan", password="x")
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(CommandError, match="1 stored credentials cannot be decrypted"):
        run()
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW]
    for account in MailAccount.objects.exclude(id=orphan.id):
        assert account.get_password() == old_accounts[account.id]
    with pytest.raises(crypto.DecryptionError):
        MailAccount.objects.get(id=orphan.id).get_password()


def test_a_password_changed_during_the_run_is_not_overwritten(settings, old_accounts, monkeypatch):
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW, OLD]
    target = sorted(old_accounts)[2]
    real = keyrotation.reencrypt

    def owner_saves_meanwhile(token: str) -> str:
        fresh = real(token)
        account = MailAccount.objects.get(id=target)
        if account.password_encrypted == token:  # between our read and our write, the owner saves a new password
            actions.update_account(account, password="changed-by-owner")
        return fresh

    monkeypatch.setattr(keyrotation, "reencrypt", owner_saves_meanwhile)
    report = keyrotation.rotate_all(batch_size=10)[0]  # accounts.MailAccount.password_encrypted
    assert (report.rotated, report.changed_meanwhile) == (4, 1)
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW]
    assert MailAccount.objects.get(id=target).get_password() == "changed-by-owner"


def test_generate_key_prints_a_usable_key():
    out, _ = run("--generate-key")
    key = Fernet(out.strip().encode())
    assert key.decrypt(key.encrypt(b"x")) == b"x"


def test_every_encrypted_column_is_rotated():
    # A model field that stores crypto.encrypt() output must be listed in keyrotation.ENCRYPTED_FIELDS.
    from django.apps import apps

    listed = {(label.lower(), name) for label, name in keyrotation.ENCRYPTED_FIELDS}
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if "encrypted" in model_field.name:
                assert (model._meta.label_lower, model_field.name) in listed, model_field


def test_oauth_tokens_and_client_secrets_are_rotated_too(settings, alice):
    from django.utils import timezone

    from oauth.models import Grant, ProviderCredentials

    settings.WEBPOP_ENCRYPTION_KEYS = [OLD]
    grant = Grant(account=make_account(alice), provider="google", email="alice@gmail.com")
    grant.set_refresh_token("refresh-secret")
    grant.set_access_token("access-secret", timezone.now())
    grant.save()
    credentials = ProviderCredentials(provider="google", client_id="client")
    credentials.set_client_secret("client-secret")
    credentials.save()

    settings.WEBPOP_ENCRYPTION_KEYS = [NEW, OLD]
    run()
    settings.WEBPOP_ENCRYPTION_KEYS = [NEW]
    grant.refresh_from_db()
    credentials.refresh_from_db()
    assert (grant.get_refresh_token(), grant.get_access_token()) == ("refresh-secret", "access-secret")
    assert credentials.get_client_secret() == "client-secret"
