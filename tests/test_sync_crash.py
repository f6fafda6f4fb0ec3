"""Crash safety and races: syncmail killed at random moments, and run four at a time.

These run ``manage.py syncmail`` in real subprocesses against the same test
database (PostgreSQL) and the same Dovecot. After every kill the invariants
must hold: nothing is gone from the server that is not stored, and nothing is
stored twice.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from mailbox.models import Message, ServerState
from tests.conftest import require_postgresql
from tests.factories import build_message
from tests.processes import REPO, webpop_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot]

MESSAGES = 300
KILLS = 25


@pytest.fixture
def subprocess_env(settings, tmp_path, dovecot):
    require_postgresql()
    data_dir = tmp_path / "data"
    settings.WEBPOP_MAIL_DIR = data_dir / "mail"
    return webpop_env(
        data_dir,
        WEBPOP_POP3_CA_FILE=str(dovecot.ca_file),
        WEBPOP_SYNC_MAX_MESSAGES="100000",
        LOG_LEVEL="WARNING",
    )


def syncmail(env: dict, account_id: int, *, crash_at: str = "") -> subprocess.Popen:
    run_env = dict(env, WEBPOP_TEST_CRASH_AT=crash_at) if crash_at else env
    return subprocess.Popen(
        [sys.executable, "manage.py", "syncmail", str(account_id)],
        cwd=REPO,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_invariants(pop_user, delivered: dict[str, bytes], account) -> None:
    stored = list(Message.objects.filter(account=account).values_list("sha256", "raw_path"))
    shas = [sha for sha, _ in stored]
    assert len(shas) == len(set(shas)), "a message was stored twice"
    on_server = pop_user.sha256s()
    lost = set(delivered) - on_server - set(shas)
    assert not lost, f"{len(lost)} messages deleted from the server but not stored"
    mail_dir = Path(settings.WEBPOP_MAIL_DIR)
    for sha, raw_path in stored:
        assert hashlib.sha256((mail_dir / raw_path).read_bytes()).hexdigest() == sha


CRASH_POINTS = ["after_retr", "after_store", "after_commit", "before_dele", "before_quit", "after_quit"]


@pytest.mark.parametrize("policy", ["keep", "delete", "mirror"])
def test_syncmail_killed_at_random_moments_loses_and_duplicates_nothing(
    policy, subprocess_env, pop_user, dovecot_account
):
    rng = random.Random(f"crash-{policy}")
    waiting = [
        build_message(f"crash {i}", f"body {i}\n" * rng.randint(1, 40), message_id=f"<crash{i}@x>")
        for i in range(MESSAGES)
    ]
    delivered: dict[str, bytes] = {}

    def deliver(count: int) -> None:
        # Mail keeps arriving, so every run has work to be killed in.
        for raw in waiting[:count]:
            pop_user.deliver(raw)
            delivered[hashlib.sha256(raw).hexdigest()] = raw
        del waiting[:count]

    deliver(60)
    account = dovecot_account(policy=policy)
    mirrored: set[str] = set()
    outcomes = []
    for kill in range(KILLS):
        deliver(10)
        if policy == "mirror" and kill % 5 == 4:
            # The user deletes a few stored messages: the next runs must DELE them.
            doomed = list(Message.objects.filter(account=account, server_state=ServerState.ON_SERVER)[:10])
            Message.objects.filter(id__in=[m.id for m in doomed]).update(server_state=ServerState.DELETE_PENDING)
            mirrored |= {m.sha256 for m in doomed}
        if kill % 2 == 0:
            point = CRASH_POINTS[(kill // 2) % len(CRASH_POINTS)]
            nth = rng.randint(1, 30) if point in {"after_retr", "after_store"} else 1
            proc = syncmail(subprocess_env, account.id, crash_at=f"{point}:{nth}")
            proc.wait(timeout=120)
        else:
            proc = syncmail(subprocess_env, account.id)
            time.sleep(rng.uniform(0.25, 0.9))  # Django start-up takes ~0.3 s of this
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        outcomes.append(proc.returncode)
        assert_invariants(pop_user, delivered, account)

    deliver(len(waiting))
    final = syncmail(subprocess_env, account.id)
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    assert json.loads(out)["error"] is None
    assert outcomes.count(-signal.SIGKILL) >= KILLS // 2, outcomes  # the kills really happened

    assert_invariants(pop_user, delivered, account)
    stored = set(Message.objects.filter(account=account).values_list("sha256", flat=True))
    assert stored == set(delivered)
    assert Message.objects.filter(account=account).count() == MESSAGES
    expected_on_server = {"keep": set(delivered), "delete": set(), "mirror": set(delivered) - mirrored}[policy]
    assert pop_user.sha256s() == expected_on_server


def test_four_concurrent_syncs_store_each_message_once(subprocess_env, pop_user, dovecot_account):
    delivered = set()
    for i in range(MESSAGES):
        raw = build_message(f"race {i}", f"body {i}", message_id=f"<race{i}@x>")
        pop_user.deliver(raw)
        delivered.add(hashlib.sha256(raw).hexdigest())
    account = dovecot_account(policy="delete")
    procs = [syncmail(subprocess_env, account.id) for _ in range(4)]
    results = []
    for proc in procs:
        out, _err = proc.communicate(timeout=180)
        results.append(json.loads(out))
    assert sum(r["fetched"] for r in results) == MESSAGES
    assert all(r["error"] is None or r["error"].startswith("busy:") for r in results), results
    shas = list(Message.objects.filter(account=account).values_list("sha256", flat=True))
    assert len(shas) == MESSAGES and set(shas) == delivered
    assert pop_user.messages() == []


def test_a_sync_killed_after_storing_new_mail_leaves_the_next_to_compare_the_whole_listing(
    subprocess_env, pop_user, dovecot_account
):
    """A settled prefix lets a sync skip looking for stored copies the server no longer has; only while
    nothing was stored after it. Killed after storing, the next sync must still notice such a copy."""
    raws = [build_message(f"prefix {i}", f"body {i}", message_id=f"<prefix{i}@x>") for i in range(4)]
    for raw in raws[:2]:
        pop_user.deliver(raw)
    account = dovecot_account()
    assert syncmail(subprocess_env, account.id).wait(timeout=120) == 0
    account.refresh_from_db()
    assert account.listing_digest and account.listing_length == 2
    for raw in raws[2:]:
        pop_user.deliver(raw)

    killed = syncmail(subprocess_env, account.id, crash_at="before_quit:1")
    assert killed.wait(timeout=120) == -signal.SIGKILL
    assert Message.objects.filter(account=account).count() == 4  # the new mail was stored
    pop_user.remove(raws[2])  # and then deleted on the server by another client

    final = syncmail(subprocess_env, account.id)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0 and json.loads(out)["error"] is None, err

    gone = Message.objects.get(account=account, sha256=hashlib.sha256(raws[2]).hexdigest())
    assert gone.server_state == ServerState.GONE
    assert Message.objects.filter(account=account).count() == 4
    account.refresh_from_db()
    assert account.listing_length == 3
