"""Acceptance: big imports run in real worker processes in bounded memory, each message exactly once.

* A 190 MB mbox whose bulk is one line, uploaded to gunicorn over HTTP (streamed, as a browser sends
  it): the web worker's memory does not grow with the upload, and the Celery worker that imports it
  grows by at most 64 MB. The 190 MB message is over the account's limit: it is refused with its
  reason while the messages around it arrive.
* 20,000 messages uploaded through the view: the Celery worker grows by at most 64 MB and every
  message arrives exactly once (count and SHA-256 of each).
* A worker killed mid-import: the beat sweep hands the job to another worker, which resumes after
  the last committed batch; every message arrives exactly once.

Workers are ``celery worker --pool solo`` subprocesses on Redis, so the process that runs the import
is the one measured: its peak resident memory (VmHWM, reset before the upload) against its resident
memory when idle. The files are generated in a temp folder, never committed. Each test prints how
long its parts took.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from mailbox import importer, store, tasks
from mailbox.models import ImportJob, Message
from tests.conftest import require_postgresql, require_redis
from tests.factories import make_account
from tests.processes import REPO, webpop_env
from webpop.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]

MB = 1024 * 1024
WORKER_GROWTH_LIMIT = 64 * MB
WEB_GROWTH_LIMIT = 16 * MB


# --- Test files -----------------------------------------------------------------------------------


def message(i: int) -> tuple[bytes, bytes]:
    """Message ``i`` as an mbox holds it (LF, one quoted "From " line) and as it must be stored (CRLF)."""
    head = (
        f"From: Sender {i % 97} <s{i % 97}@example.net>\nTo: alice@example.org\nSubject: Archived message {i}\n"
        f"Date: Thu, 26 Nov 2026 09:{i % 60:02d}:00 +0000\nMessage-ID: <archived-{i}@example.net>\n\n"
    )
    lines = [f"Line {n} of message {i}: a few words of mail.\n" for n in range(12)]
    in_mbox = head + "".join(lines) + ">From the archive, with love.\n"
    stored = head + "".join(lines) + "From the archive, with love.\n"
    return in_mbox.encode(), stored.replace("\n", "\r\n").encode()


def write_mbox(path: Path, bodies) -> None:
    with open(path, "wb") as fh:
        for body in bodies:
            fh.write(b"From archive@example.net Thu Nov 26 09:00:00 2026\n" + body + b"\n")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def reset_peak(pid: int) -> int:
    """Reset the process's peak RSS (VmHWM) to its current RSS; returns that RSS in bytes."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status_kib(pid, "VmRSS") * 1024


def wait_for(predicate, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# --- Real processes ----------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path, settings):
    require_redis()
    require_postgresql()
    data_dir = tmp_path / "data"
    settings.WEBPOP_MAIL_DIR = data_dir / "mail"  # the workers' store, read back here
    environ = webpop_env(data_dir, LOG_LEVEL="WARNING")
    celery_app.control.purge()  # leftovers of an earlier run must not run here
    return environ


@contextlib.contextmanager
def celery_worker(env: dict, log_path: Path):
    """A ``celery worker --pool solo`` subprocess: tasks run in the process itself (the one measured)."""
    name = f"import-{uuid.uuid4().hex[:8]}"
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webpop", "worker", "--pool", "solo", "--hostname", f"{name}@%h",
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        node = f"{name}@{socket.gethostname()}"
        wait_for(lambda: proc.poll() is None and celery_app.control.ping([node], timeout=0.5), "the worker", 120)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def finished(job_id: int) -> bool:
    return ImportJob.objects.filter(id=job_id, state__in=["done", "failed"]).exists()


def post_file(client: Client, account, path: Path) -> ImportJob:
    with open(path, "rb") as fh:
        response = client.post(reverse("mailbox:import"), {"account": account.id, "folder": "inbox", "files": [fh]})
    assert response.status_code == 302, response.content[:2000]
    return ImportJob.objects.get(id=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))


def assert_each_once(account, expected: dict[str, bytes]) -> None:
    shas = list(Message.objects.filter(account=account).values_list("sha256", flat=True))
    assert len(shas) == len(expected), f"{len(shas)} stored, {len(expected)} expected"
    assert set(shas) == set(expected)  # with the count: each exactly once
    for row in Message.objects.filter(account=account).order_by("?")[:50]:
        assert store.path_of(row.raw_path).read_bytes() == expected[row.sha256]


# --- 20,000 messages ------------------------------------------------------------------------------


def test_twenty_thousand_messages_arrive_once_each_in_bounded_worker_memory(env, alice, alice_client, tmp_path):
    account = make_account(alice)
    started = time.monotonic()
    pairs = [message(i) for i in range(20_000)]
    expected = {hashlib.sha256(stored).hexdigest(): stored for _mbox, stored in pairs}
    path = tmp_path / "archive.mbox"
    write_mbox(path, (body for body, _stored in pairs))
    del pairs
    generated = time.monotonic()
    with celery_worker(env, tmp_path / "worker.log") as worker:
        idle = reset_peak(worker.pid)
        job = post_file(alice_client, account, path)
        posted = time.monotonic()
        wait_for(lambda: finished(job.id), "the import")
        done = time.monotonic()
        growth = status_kib(worker.pid, "VmHWM") * 1024 - idle
    job.refresh_from_db()
    assert (job.state, job.imported, job.duplicates, job.refused, job.error) == ("done", 20_000, 0, 0, "")
    assert_each_once(account, expected)
    print(
        f"\n20,000 messages, {path.stat().st_size / MB:.1f} MB: generated in {generated - started:.1f} s, "
        f"upload {posted - generated:.1f} s, import {done - posted:.1f} s "
        f"({20_000 / (done - posted):.0f} messages/s), worker peak growth {growth / MB:.1f} MB"
    )
    assert growth <= WORKER_GROWTH_LIMIT, f"the worker grew by {growth / MB:.1f} MB"


# --- A 190 MB line, uploaded to gunicorn -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env: dict, log_path: Path):
    """gunicorn with one sync worker (a child of the master: the process that handles the request)."""
    port = free_port()
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "webpop.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--timeout", "300"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def answers() -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    try:
        wait_for(answers, "gunicorn", 60)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        yield port, int(children[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def upload_streamed(port: int, cookies: dict, fields: dict, name: str, path: Path) -> http.client.HTTPResponse:
    """POST a multipart form with the file read from disk in pieces, as a browser sends it."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/mbox\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        with open(path, "rb") as fh:
            while chunk := fh.read(MB):
                yield chunk
        yield tail

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.putrequest("POST", "/import/")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    conn.putheader("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
    conn.endheaders()
    for piece in body():
        conn.send(piece)
    return conn.getresponse()


def test_a_190_mb_line_streams_through_the_web_and_the_worker_in_bounded_memory(env, alice, tmp_path):
    account = make_account(alice)
    first, first_stored = message(1)
    last, last_stored = message(2)
    huge_head = b"From: big@example.net\nSubject: One enormous line\n\n"
    path = tmp_path / "one-line.mbox"
    with open(path, "wb") as fh:
        fh.write(b"From a@b Thu Nov 26 09:00:00 2026\n" + first + b"\n")
        fh.write(b"From a@b Thu Nov 26 09:00:00 2026\n" + huge_head)
        for _ in range(190):
            fh.write(b"x" * MB)  # one line of 190 MB
        fh.write(b"\n\nFrom a@b Thu Nov 26 09:00:00 2026\n" + last + b"\n")
    client = Client()
    client.force_login(alice)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    with gunicorn(env, tmp_path / "gunicorn.log") as (port, web_pid), celery_worker(env, tmp_path / "w.log") as worker:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/import/", headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"})
        page = conn.getresponse()
        assert page.status == 200
        csrf = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie")).group(1)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.read()).group(1).decode()
        web_idle, worker_idle = reset_peak(web_pid), reset_peak(worker.pid)
        started = time.monotonic()
        response = upload_streamed(
            port,
            {settings.SESSION_COOKIE_NAME: session, "csrftoken": csrf},
            {"csrfmiddlewaretoken": token, "account": account.id, "folder": "inbox"},
            "one-line.mbox",
            path,
        )
        uploaded = time.monotonic()
        assert response.status == 302, response.read()[:2000]
        web_growth = status_kib(web_pid, "VmHWM") * 1024 - web_idle
        job = ImportJob.objects.get()
        assert response.getheader("Location") == reverse("mailbox:import_job", args=[job.id])
        wait_for(lambda: finished(job.id), "the import")
        done = time.monotonic()
        worker_growth = status_kib(worker.pid, "VmHWM") * 1024 - worker_idle
    job.refresh_from_db()
    assert (job.state, job.imported, job.duplicates, job.refused) == ("done", 2, 0, 1)
    [refusal] = job.refusals
    assert (refusal["file"], refusal["number"], refusal["reason"]) == ("one-line.mbox", 2, "too_large")
    assert refusal["size"] > 190 * MB and refusal["limit"] == account.effective_max_message_bytes
    assert_each_once(account, {hashlib.sha256(raw).hexdigest(): raw for raw in (first_stored, last_stored)})
    assert list((store.root() / "tmp").iterdir()) == [] and not any((store.root() / "imports").iterdir())
    print(
        f"\n190 MB line: upload {uploaded - started:.1f} s (web worker peak growth {web_growth / MB:.1f} MB), "
        f"import {done - uploaded:.1f} s (worker peak growth {worker_growth / MB:.1f} MB)"
    )
    assert web_growth <= WEB_GROWTH_LIMIT, f"the web worker grew by {web_growth / MB:.1f} MB"
    assert worker_growth <= WORKER_GROWTH_LIMIT, f"the Celery worker grew by {worker_growth / MB:.1f} MB"


# --- A worker killed mid-import ----------------------------------------------------------------------


def test_an_import_whose_worker_is_killed_resumes_on_another_and_stores_each_message_once(
    env, alice, alice_client, tmp_path
):
    account = make_account(alice)
    pairs = [message(i) for i in range(6_000)]
    expected = {hashlib.sha256(stored).hexdigest(): stored for _mbox, stored in pairs}
    path = tmp_path / "killed.mbox"
    write_mbox(path, (body for body, _stored in pairs))
    started = time.monotonic()
    with celery_worker(env, tmp_path / "first.log") as first:
        job = post_file(alice_client, account, path)
        wait_for(lambda: ImportJob.objects.get(id=job.id).imported >= 1_000, "the first batches")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    killed = time.monotonic()
    job.refresh_from_db()
    assert job.state == "running" and 1_000 <= job.imported < 6_000 and job.attempts == 1
    at_kill = (job.imported, job.file_offset)
    # What is committed is exactly what the job counts: its batches and resume point commit together.
    assert Message.objects.filter(account=account).count() == job.imported
    with celery_worker(env, tmp_path / "second.log"):
        tasks.resume_imports.delay()  # the beat sweep: the holder is dead, the job goes on elsewhere
        wait_for(lambda: finished(job.id), "the resumed import")
    done = time.monotonic()
    job.refresh_from_db()
    assert (job.state, job.imported, job.duplicates, job.refused, job.attempts) == ("done", 6_000, 0, 0, 2)
    assert_each_once(account, expected)
    assert importer.resume_stalled() == []
    print(
        f"\nkilled after {killed - started:.1f} s with {at_kill[0]} messages committed (resume at byte {at_kill[1]}); "
        f"resumed and finished in {done - killed:.1f} s"
    )
