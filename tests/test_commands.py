"""The operator contract: addmailaccount and syncmail, as scripts use them."""

import io
import json
import sys

import pytest
from django.core.management import CommandError, call_command

from accounts.models import MailAccount
from tests.factories import build_message

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def add_account(monkeypatch, *args: str, password: str = "pw") -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    out = io.StringIO()
    call_command("addmailaccount", *args, stdout=out)
    return out.getvalue().strip()


def test_addmailaccount_prints_the_new_id_and_encrypts_the_password(monkeypatch, alice):
    printed = add_account(
        monkeypatch, "alice", "--host", "pop.example.net", "--username", "al", "--password-stdin",
        "--policy", "days:14", password="s3cret",
    )  # fmt: skip
    account = MailAccount.objects.get(id=int(printed))
    assert (account.owner, account.host, account.port, account.security) == (alice, "pop.example.net", 995, "ssl")
    assert account.policy == "days:14"
    assert account.get_password() == "s3cret"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "--host", "h", "--username", "u", "--password-stdin"], "No user named 'nobody'"),
        (["alice", "--host", "h", "--username", "u", "--password-stdin", "--policy", "forever"], "Unknown policy"),
        (["alice", "--host", "h", "--username", "u", "--password-stdin", "--port", "70000"], "65535"),
    ],
)
def test_addmailaccount_rejects_bad_input_clearly(monkeypatch, alice, args, message):
    with pytest.raises(CommandError, match=message):
        add_account(monkeypatch, *args)
    assert MailAccount.objects.count() == 0


def test_addmailaccount_needs_a_password_on_stdin(monkeypatch, alice):
    with pytest.raises(CommandError, match="No password"):
        add_account(monkeypatch, "alice", "--host", "h", "--username", "u", "--password-stdin", password="")


@pytest.mark.dovecot
def test_syncmail_prints_one_json_line_per_account(monkeypatch, alice, pop_user, dovecot):
    for i in range(3):
        pop_user.deliver(build_message(f"cli {i}", message_id=f"<cli{i}@x>"))
    account_id = add_account(
        monkeypatch, "alice", "--host", "localhost", "--port", str(dovecot.pop3s_port), "--username",
        pop_user.name, "--password-stdin", "--policy", "delete", password=pop_user.password,
    )  # fmt: skip
    out = io.StringIO()
    call_command("syncmail", account_id, stdout=out)
    (line,) = out.getvalue().splitlines()
    result = json.loads(line)
    assert set(result) == {"account", "fetched", "deleted_on_server", "skipped", "error", "seconds"}
    assert result["account"] == int(account_id)
    assert (result["fetched"], result["deleted_on_server"], result["skipped"], result["error"]) == (3, 3, 0, None)
    assert isinstance(result["seconds"], float)


def test_syncmail_reports_errors_in_the_json_and_exits_nonzero(alice):
    from tests.factories import make_account

    account = make_account(alice, host="no-such-host.invalid")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("syncmail", "--all", stdout=out)
    assert exit_info.value.code == 1
    result = json.loads(out.getvalue())
    assert result["account"] == account.id
    assert result["error"].startswith("dns: ")


def test_syncmail_needs_ids_or_all():
    with pytest.raises(CommandError, match="--all"):
        call_command("syncmail")
    with pytest.raises(CommandError, match="No mail account with id 999"):
        call_command("syncmail", "999")
