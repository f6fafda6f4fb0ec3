"""Chaos: mail arriving, sends and page views on real processes while the infrastructure fails under them.

gunicorn, a Celery worker and beat run as an operator runs them, on a PostgreSQL and a Redis of
this test's own, with the mail store on a small tmpfs. Mail keeps arriving on three Dovecot
mailboxes (one kept on the server, two deleted after fetching), alice keeps sending through the
test SMTP server and looking at pages. Meanwhile, in turn: PostgreSQL restarts, Redis stops and
starts, the worker is SIGKILLed in the middle of a sync (and a new one started), and the mail
store fills up (ENOSPC) until space is freed.

Then every delivered message is stored exactly once and byte-exact, nothing was ever missing
from a server without being stored (watched throughout, not only at the end), every send went
out exactly once (counted at the SMTP server by Message-ID), and no page answered 500 (503 only
while PostgreSQL was down).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests
from port_for import get_port

from tests import processes, services
from tests.factories import build_message

pytestmark = [pytest.mark.dovecot, pytest.mark.celery]

PASSWORD = "chaos-test-passphrase-1"
SMTP_LOGIN = "chaos-smtp"
SMTP_PASSWORD = "chaos-smtp-password"
DISK_KB = 16 * 1024
POLICIES = {"kept": "keep", "deleted": "delete", "deleted2": "delete"}

# Run in `manage.py shell` on the private database: alice, her accounts (polled every second) and her
# sending settings. SPEC is filled in: {"accounts": {key: {host, port, username, password, policy}}, "smtp": …}.
SETUP = """
import json
from django.contrib.auth import get_user_model
from django.utils import timezone
from accounts import actions
from accounts.models import MailAccount, Profile
from outgoing.models import SmtpSettings

spec = json.loads(SPEC)
alice = get_user_model().objects.create_user("alice", "alice@example.org", spec["password"])
Profile.objects.update_or_create(user=alice, defaults={"undo_send_seconds": 0})
ids = {}
for key, fields in spec["accounts"].items():
    ids[key] = actions.create_account(alice, security="ssl", **fields).id
MailAccount.objects.update(poll_interval=1, next_poll_at=timezone.now())
smtp = SmtpSettings(account_id=ids["kept"], **spec["smtp"])
smtp.set_password(spec["smtp_password"])
smtp.save()
print("IDS " + json.dumps(ids))
"""


@pytest.fixture
def servers():
    with services.private_servers("webpop-chaos-") as running:
        yield running


@pytest.fixture
def mail_disk(servers):
    """The data dir's mail store on a tmpfs of DISK_KB (mounted before the data dir is initialized)."""
    mount_point = servers["folder"] / "data" / "mail"
    mount_point.mkdir(parents=True)
    with services.small_tmpfs(mount_point, DISK_KB):
        yield mount_point


# --- The private database, read directly (the test process's Django is on the session's) -----------


class Database:
    def __init__(self, url: str):
        self.url = url

    def rows(self, sql: str, *params) -> list[tuple] | None:
        """The rows, or None while the database cannot be reached."""
        try:
            with psycopg.connect(self.url, connect_timeout=3) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            return None

    def stored(self, account_id: int) -> list[tuple[str, str]] | None:
        """(sha256, raw_path) of each message fetched from the account's server (not its Sent copies)."""
        return self.rows(
            "SELECT sha256, raw_path FROM mailbox_message WHERE account_id = %s AND uidl NOT LIKE 'webpop sent %%'",
            account_id,
        )


# --- The workload ---------------------------------------------------------------------------------


@dataclass
class Workload:
    base: str
    dovecot: object
    users: dict[str, str]  # account key -> Dovecot user
    account_ids: dict[str, int]
    db: Database
    stop: threading.Event = field(default_factory=threading.Event)
    stop_mail: threading.Event = field(default_factory=threading.Event)
    send_gate: threading.Lock = field(default_factory=threading.Lock)  # held: alice sends nothing new
    delivered: dict[str, dict[str, bytes]] = field(default_factory=lambda: collections.defaultdict(dict))
    accepted_sends: list[str] = field(default_factory=list)
    pages: list[tuple[float, float, str, int]] = field(default_factory=list)  # started, answered, …
    refused: int = 0
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    numbers: collections.Counter = field(default_factory=collections.Counter)

    def deliver(self, key: str, body_bytes: int = 0) -> None:
        with self.lock:
            self.numbers["mail"] += 1
            n = self.numbers["mail"]
        body = f"Chaos mail {n} for {key}.\n"
        if body_bytes:
            body += "".join(hashlib.sha512(f"{n}-{i}".encode()).hexdigest() + "\n" for i in range(body_bytes // 129))
        raw = build_message(f"Chaos {n}", body, message_id=f"<chaos-{n}-{uuid.uuid4().hex[:8]}@example.net>")
        self.dovecot.deliver(self.users[key], raw)
        with self.lock:
            self.delivered[key][hashlib.sha256(raw).hexdigest()] = raw

    def sign_in(self) -> requests.Session:
        web = requests.Session()
        page = web.get(f"{self.base}/login/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        answer = web.post(
            f"{self.base}/login/",
            data={"csrfmiddlewaretoken": token, "username": "alice", "password": PASSWORD},
            headers={"Referer": f"{self.base}/login/"},
            timeout=30,
        )
        assert answer.status_code == 200 and answer.url.rstrip("/") != f"{self.base}/login", answer.url
        return web

    def get(self, web: requests.Session, path: str) -> requests.Response | None:
        """A page view; a refused connection is retried (counted), anything answered is recorded."""
        for _ in range(20):
            started = time.monotonic()
            try:
                response = web.get(f"{self.base}{path}", timeout=60, allow_redirects=False)
            except requests.ConnectionError:
                with self.lock:
                    self.refused += 1
                time.sleep(0.5)
                continue
            with self.lock:
                self.pages.append((started, time.monotonic(), path, response.status_code))
            return response
        return None

    def _guard(self, loop) -> None:
        try:
            loop()
        except Exception as exc:  # the assertion at the end names it
            self.errors.append(f"{loop.__name__}: {type(exc).__name__}: {exc}")
            raise

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._guard, args=(loop,), daemon=True)
            for loop in (self.mail_loop, self.send_loop, self.page_loop, self.watch_loop)
        ]
        for thread in threads:
            thread.start()
        return threads

    def mail_loop(self) -> None:
        keys = sorted(self.users)
        while not self.stop_mail.wait(0.4):
            self.deliver(keys[self.numbers["mail"] % len(keys)])

    def send_loop(self) -> None:
        web = self.sign_in()
        n = 0
        while not self.stop_mail.wait(1.5):
            n += 1
            with self.send_gate:
                self.send(web, f"Chaos send {n}")

    def send(self, web: requests.Session, subject: str) -> None:
        """Compose and send, as alice does, until the web accepts it (a 503 while the database is down)."""
        while not self.stop_mail.is_set():
            form = self.get(web, "/compose/")
            if form is None or form.status_code != 200:
                time.sleep(0.5)
                continue
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            data = {"csrfmiddlewaretoken": token, "account": self.account_ids["kept"], "to": "bob@example.net"}
            data.update(subject=subject, body=f"{subject}.\n", action="send")
            started = time.monotonic()
            try:
                answer = web.post(f"{self.base}/compose/", data=data, timeout=60, allow_redirects=False)
            except requests.ConnectionError:
                with self.lock:
                    self.refused += 1
                continue  # the draft may have been saved or not; the end counts rows, not attempts
            with self.lock:
                self.pages.append((started, time.monotonic(), "POST /compose/", answer.status_code))
            if answer.status_code == 302:
                self.accepted_sends.append(subject)
                return
            time.sleep(0.5)

    def page_loop(self) -> None:
        web = self.sign_in()
        paths = ["/", "/contacts/", "/compose/outbox/", "/folder/sent/"]
        paths += [f"/accounts/{account_id}/" for account_id in self.account_ids.values()]
        n = 0
        while not self.stop.wait(0.2):
            n += 1
            if n % 5 == 0:
                latest = self.db.rows("SELECT id FROM mailbox_message ORDER BY id DESC LIMIT 1")
                if latest:
                    self.get(web, f"/message/{latest[0][0]}/")
                continue
            self.get(web, paths[n % len(paths)])

    def watch_loop(self) -> None:
        """Whatever has left a server (policy delete) must be stored already: listed first, the rows read after."""
        while not self.stop.wait(0.5):
            for key, user in self.users.items():
                if POLICIES[key] != "delete":
                    continue
                with self.lock:
                    delivered = set(self.delivered[key])
                try:
                    gone = delivered - self.dovecot.server_sha256s(user)
                except FileNotFoundError:  # Dovecot has just moved a file: listed again next round
                    continue
                if not gone:
                    continue
                stored = self.db.stored(self.account_ids[key])
                if stored is None:
                    continue  # the database is down; the next round checks again
                missing = gone - {sha for sha, _path in stored}
                if missing:
                    self.violations.append(f"{key}: {len(missing)} deleted on the server but not stored")


# --- The test -------------------------------------------------------------------------------------


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=processes.REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _worker(name: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "webpop", "worker", "--hostname", f"{name}@%h",
            "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]  # fmt: skip


def _fill(disk: Path, leave_free: int) -> Path:
    """A filler file that leaves about ``leave_free`` bytes, written while the workers write too."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        while (room := os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - leave_free) > 0:
            os.write(fd, b"\0" * min(room, 1 << 20))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave_free))  # others took the room first: give some back
    finally:
        os.close(fd)
    return filler


def test_mail_sends_and_pages_survive_postgresql_redis_a_killed_worker_and_a_full_disk(
    servers, mail_disk, dovecot, trust_dovecot, smtp_server, settings, tmp_path
):
    db = Database(servers["DATABASE_URL"])
    folder = servers["folder"]
    logs = tmp_path / "logs"  # kept by pytest after a failure
    env = processes.webpop_env(
        folder / "data",
        WEBPOP_HTTPS="false",
        WEBPOP_POP3_CA_FILE=settings.WEBPOP_POP3_CA_FILE,  # Dovecot's and the SMTP server's CAs
        WEBPOP_POLL_TICK_SECONDS="1",
        WEBPOP_SEND_REDISPATCH_SECONDS="3",
        WEBPOP_BEAT_LEASE_SECONDS="5",
        WEBPOP_SYNC_LEASE_SECONDS="30",  # a lease a sync could not release (no database) lapses after this
        WEBPOP_POLL_CLAIM_SECONDS="10",  # an account whose task the broker lost is polled again after this
        WEBPOP_POP3_TIMEOUT="15",
        WEBPOP_HEARTBEAT_SECONDS="2",
    )
    env["DATABASE_URL"], env["REDIS_URL"] = servers["DATABASE_URL"], servers["REDIS_URL"]
    _manage(env, "migrate", "--noinput")

    users = {}
    accounts = {}
    for key, policy in POLICIES.items():
        users[key] = f"chaos{key}{uuid.uuid4().hex[:6]}"
        password = f"pw-{uuid.uuid4().hex}"
        dovecot.add_user(users[key], password)
        accounts[key] = {"host": "localhost", "port": dovecot.pop3s_port, "username": users[key]}
        accounts[key].update(password=password, policy=policy)
    smtp_server.add_user(SMTP_LOGIN, SMTP_PASSWORD)
    spec = {
        "password": PASSWORD,
        "accounts": accounts,
        "smtp": {"host": "localhost", "port": smtp_server.starttls_port, "security": "starttls", "auth": "separate",
                 "username": SMTP_LOGIN, "from_name": "Alice Example", "from_email": "alice@example.org"},
        "smtp_password": SMTP_PASSWORD,
    }  # fmt: skip
    out = _manage(env, "shell", "-c", f"SPEC = {json.dumps(spec)!r}\n" + SETUP)
    account_ids = json.loads(out.split("IDS ", 1)[1])

    port = get_port(None)
    base = f"http://127.0.0.1:{port}"
    web_argv = [sys.executable, "-m", "gunicorn", "webpop.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    beat_argv = [sys.executable, "-m", "celery", "-A", "webpop", "beat", "--schedule", str(folder / "schedule")]
    workload = Workload(base, dovecot, users, account_ids, db)

    def stored_count() -> int:
        rows = db.rows("SELECT count(*) FROM mailbox_message WHERE uidl NOT LIKE 'webpop sent %%'")
        return rows[0][0] if rows else -1

    def sent_count() -> int:
        rows = db.rows("SELECT count(*) FROM outgoing_outgoingmessage WHERE state = 'sent'")
        return rows[0][0] if rows else -1

    with contextlib.ExitStack() as stack:
        live = dict(stack.enter_context(processes.running({"web": web_argv, "beat": beat_argv}, env=env,
                                                          cwd=processes.REPO, logs=logs)))  # fmt: skip
        live.update(stack.enter_context(processes.running({"w1": _worker("w1")}, env=env, cwd=processes.REPO,
                                                          logs=logs)))  # fmt: skip

        def wait(predicate, what: str, timeout: float = 90) -> None:
            try:
                processes.wait_until(predicate, what, procs=live, logs=logs, timeout=timeout)
            except AssertionError as exc:
                state = db.rows(
                    "SELECT id, policy, last_error_class, consecutive_failures, next_poll_at - now(), last_error, "
                    "(SELECT count(*) FROM mailbox_message m WHERE m.account_id = a.id) FROM accounts_mailaccount a"
                )
                sends = db.rows("SELECT state, count(*) FROM outgoing_outgoingmessage GROUP BY state")
                delivered = {key: len(mail) for key, mail in workload.delivered.items()}
                raise AssertionError(f"{exc}\naccounts: {state}\nsends: {sends}\ndelivered: {delivered}") from None

        def progress(what: str) -> None:
            """Mail is fetched and sends go out again after a fault (the workload keeps adding both)."""
            stored, sent = stored_count(), sent_count()
            wait(lambda: stored_count() >= stored + 3 and sent_count() >= sent + 1, f"progress after {what}")

        def answers() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=10).status_code == 200
            except requests.RequestException:  # not listening yet, or its workers still starting
                return False

        wait(answers, "the web server answers")
        threads = workload.start()
        try:
            progress("starting")

            # --- PostgreSQL restarts, down for a few seconds --------------------------------------
            pg_down = time.monotonic()
            servers["postgres"].stop()
            time.sleep(4)
            servers["postgres"].start()
            servers["postgres"].process.wait(timeout=120)
            pg_up = time.monotonic()
            progress("the PostgreSQL restart")

            # --- Redis stops and starts -------------------------------------------------------------
            servers["redis"].stop()
            time.sleep(4)
            servers["redis"].start()
            progress("the Redis restart")

            # --- The worker is killed in the middle of a sync; a new one takes over ----------------
            # No send is in flight meanwhile: one cut off in the middle of SMTP waits out its claim (30 minutes,
            # outgoing/send.py) rather than risk going out twice; tests/test_undo_send_crash.py kills senders.
            def sends_in_flight() -> int:
                rows = db.rows("SELECT count(*) FROM outgoing_outgoingmessage WHERE state IN ('queued', 'sending')")
                return rows[0][0] if rows else -1

            def syncing() -> bool:
                rows = db.rows(
                    "SELECT count(*) FROM mailbox_syncrun WHERE finished_at IS NULL "
                    "AND started_at > now() - interval '10 seconds'"
                )
                return bool(rows and rows[0][0])

            with workload.send_gate:
                wait(lambda: sends_in_flight() == 0, "the sends under way to go out")
                for _ in range(12):
                    workload.deliver("deleted", body_bytes=20_000)
                wait(syncing, "a sync on w1 (the only worker)", timeout=60)
                live.pop("w1").kill()
                killed_at = time.time()
                w2 = processes.running({"w2": _worker("w2")}, env=env, cwd=processes.REPO, logs=logs)
                live.update(stack.enter_context(w2))
            progress("the killed worker")

            # --- The mail store fills up; then space is freed --------------------------------------
            filler = _fill(mail_disk, 96 * 1024)
            for key in POLICIES:
                for _ in range(3):
                    workload.deliver(key, body_bytes=60_000)

            def disk_full_reported() -> bool:
                rows = db.rows("SELECT count(*) FROM accounts_mailaccount WHERE last_error_class = 'disk_full'")
                return bool(rows and rows[0][0])

            wait(disk_full_reported, "an account to report the full disk")
            time.sleep(3)  # a few more polls, sends and pages on the full disk
            filler.unlink()
            progress("the full disk")
        except BaseException:
            workload.stop.set()
            raise
        finally:
            workload.stop_mail.set()

        # --- Everything delivered is fetched, everything accepted is sent --------------------------
        def settled() -> bool:
            for key, account_id in account_ids.items():
                stored = db.stored(account_id)
                if stored is None or {sha for sha, _path in stored} != set(workload.delivered[key]):
                    return False
                if POLICIES[key] == "delete" and dovecot.server_messages(users[key]):
                    return False
            pending = db.rows("SELECT count(*) FROM outgoing_outgoingmessage WHERE state NOT IN ('sent', 'draft')")
            return pending is not None and pending[0][0] == 0

        wait(settled, "every message fetched and every send sent", timeout=120)
        time.sleep(4)  # beyond WEBPOP_SEND_REDISPATCH_SECONDS: a lost task sent again would show now
        workload.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        outgoing = db.rows("SELECT subject, message_id, state FROM outgoing_outgoingmessage")
    assert workload.errors == []
    assert workload.violations == []

    # Every delivered message is stored exactly once, byte-exact.
    for key, account_id in account_ids.items():
        stored = db.stored(account_id)
        assert collections.Counter(sha for sha, _path in stored) == collections.Counter(set(workload.delivered[key]))
        for sha, raw_path in stored:
            assert (mail_disk / raw_path).read_bytes() == workload.delivered[key][sha], (key, raw_path)
        on_server = dovecot.server_sha256s(users[key])
        assert on_server == (set(workload.delivered[key]) if POLICIES[key] == "keep" else set())
    # Every stored file (fetched, filed in Sent, attachments) holds what its name says; the spool holds only
    # what the killed worker was downloading (which gcstorage frees), never a download the full disk broke.
    for top in ("raw", "att"):
        for path in (mail_disk / top).rglob("*"):
            if path.is_file():
                assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name.removesuffix(".eml"), path
    left = [path for path in (mail_disk / "tmp").iterdir() if path.stat().st_mtime > killed_at]
    assert left == [], "a partial download was left in the spool"
    assert sum(len(mail) for mail in workload.delivered.values()) > 40

    # Every send went out exactly once.
    received = collections.Counter()
    for got in smtp_server.received:
        message_id = re.search(rb"^Message-ID: *(<[^>]+>)", got.data, re.MULTILINE | re.IGNORECASE).group(1)
        received[message_id.decode()] += 1
    assert [mid for mid, times in received.items() if times != 1] == []
    sent = {message_id: subject for subject, message_id, state in outgoing if state == "sent"}
    assert set(received) == set(sent)
    assert set(workload.accepted_sends) <= set(sent.values())
    assert len(workload.accepted_sends) >= 3

    # No page answered 500; 503 only to a request under way while PostgreSQL was down (or coming back).
    statuses = collections.Counter(status for _started, _answered, _path, status in workload.pages)
    assert all(status in (200, 302, 503) for status in statuses), statuses
    outside = [
        (started - pg_up, path)
        for started, answered, path, status in workload.pages
        if status == 503 and (answered < pg_down or started > pg_up + 2)
    ]
    assert outside == [], outside
    assert statuses[503] > 0  # the outage reached the web (the page views run every 0.2 s)
    print(f"pages {dict(statuses)}, refused {workload.refused}, sends {len(received)}, ", end="")
    print(f"messages {sum(len(mail) for mail in workload.delivered.values())}")
    assert statuses[200] > 30
