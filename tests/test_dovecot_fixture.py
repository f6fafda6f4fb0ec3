"""The Dovecot fixture behaves like the real POP3 server the sync tests rely on."""

from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import itertools
import os
import poplib
import ssl
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.dovecot import CertKind, DovecotServer

pytestmark = pytest.mark.dovecot

PASSWORD = "correct horse"
_user_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    with DovecotServer(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


@pytest.fixture
def user(server: DovecotServer) -> str:
    """A fresh, empty mailbox per test, added while the server runs."""
    name = f"user{next(_user_numbers)}@example.test"
    server.add_user(name, PASSWORD)
    return name


def make_message(subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@example.test>"
    msg["To"] = "user@example.test"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


def retr_bytes(pop: poplib.POP3, number: int) -> bytes:
    # poplib strips line endings and undoes dot-stuffing.
    _, lines, _ = pop.retr(number)
    return b"\r\n".join(lines) + b"\r\n"


def session_pids(sid: int) -> set[int]:
    """Live processes in the session the fixture starts Dovecot's master in."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after "(comm)": state ppid pgrp session ...
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.add(int(entry.name))
    return pids


def test_retr_returns_delivered_bytes_and_dele_removes(server: DovecotServer, user: str) -> None:
    messages = [
        make_message("first", "Hello.\n"),
        # A line starting with "." must survive dot-stuffing unchanged.
        make_message("second", ".leading dot\n..two dots\n" + "long line " * 200 + "\n"),
        make_message("third", "Bye.\n"),
    ]
    assert all(m.endswith(b"\r\n") for m in messages)
    assert b"\r\n..two dots\r\n" in messages[1]
    for message in messages:
        server.deliver(user, message)

    pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.ssl_context())
    pop.user(user)
    pop.pass_(PASSWORD)
    assert pop.stat() == (3, sum(len(m) for m in messages))

    _, uidl_lines, _ = pop.uidl()
    uidls = [line.split()[1] for line in uidl_lines]
    assert len(set(uidls)) == 3
    assert all(len(uidl) == 16 for uidl in uidls)  # %08Xu%08Xv

    # Messages are numbered in delivery order.
    assert [retr_bytes(pop, n) for n in (1, 2, 3)] == messages

    pop.dele(2)
    pop.quit()
    assert server.server_messages(user) == [messages[0], messages[2]]
    assert server.server_sha256s(user) == {hashlib.sha256(m).hexdigest() for m in (messages[0], messages[2])}


def test_uidls_are_stable_across_sessions(server: DovecotServer, user: str) -> None:
    server.deliver(user, make_message("one", "1\n"))

    def uidls() -> list[bytes]:
        pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.ssl_context())
        pop.user(user)
        pop.pass_(PASSWORD)
        result = pop.uidl()[1]
        pop.quit()
        return result

    first = uidls()
    server.deliver(user, make_message("two", "2\n"))
    second = uidls()
    assert second[0] == first[0]
    assert len(second) == 2


def test_stls_on_clear_port(server: DovecotServer, user: str) -> None:
    message = make_message("via stls", "Hi.\n")
    server.deliver(user, message)

    pop = poplib.POP3(server.host, server.pop3_port)
    capabilities = pop.capa()
    assert "STLS" in capabilities
    assert {"PLAIN", "CRAM-MD5", "SCRAM-SHA-256"} <= set(capabilities["SASL"])
    pop.stls(context=server.ssl_context())
    pop.user(user)
    pop.pass_(PASSWORD)
    assert retr_bytes(pop, 1) == message
    pop.quit()


def test_cram_md5_works_with_plain_stored_passwords(server: DovecotServer, user: str) -> None:
    pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.ssl_context())
    challenge = base64.b64decode(pop._shortcmd("AUTH CRAM-MD5").split()[1])
    digest = hmac.new(PASSWORD.encode(), challenge, "md5").hexdigest()
    assert pop._shortcmd(base64.b64encode(f"{user} {digest}".encode()).decode()).startswith(b"+OK")
    assert pop.stat() == (0, 0)
    pop.quit()


def test_wrong_password_fails_without_penalty(server: DovecotServer, user: str) -> None:
    # Without the fixture's settings: 2 s, then 4.5 s for the second failure.
    for _ in range(2):
        pop = poplib.POP3(server.host, server.pop3_port)
        pop.user(user)
        started = time.monotonic()
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            pop.pass_("wrong")
        assert time.monotonic() - started < 2
        pop.close()


@pytest.mark.parametrize(
    ("cert", "reason"),
    [("untrusted", "unable to get local issuer certificate"), ("wrong-host", "address mismatch")],
)
def test_bad_certificates_fail_verification(server: DovecotServer, tmp_path: Path, cert: CertKind, reason: str) -> None:
    # Runs next to the module's trusted server: instances don't interfere.
    with DovecotServer(tmp_path, cert=cert) as bad:
        assert bad.ca_file.read_bytes() == server.ca_file.read_bytes()
        for connect in (
            lambda: poplib.POP3_SSL(bad.host, bad.pop3s_port, context=server.ssl_context()),
            lambda: poplib.POP3(bad.host, bad.pop3_port).stls(context=server.ssl_context()),
        ):
            with pytest.raises(ssl.SSLCertVerificationError, match=reason):
                connect()

        if cert == "untrusted":
            # Trusting its CA explicitly makes the same server valid.
            context = ssl.create_default_context(cafile=str(bad.untrusted_ca_file))
            pop = poplib.POP3_SSL(bad.host, bad.pop3s_port, context=context)
            assert pop.getwelcome().startswith(b"+OK")
            pop.quit()


@pytest.mark.parametrize("graceful", [True, False])
def test_restart_keeps_mail_and_stop_leaves_no_process(tmp_path: Path, graceful: bool) -> None:
    server = DovecotServer(tmp_path)
    try:
        server.add_user("alice", PASSWORD)
        message = make_message("kept", "Still here.\n")
        server.deliver("alice", message)
        server.start()
        master = int((server.run_dir / "master.pid").read_text())
        assert len(session_pids(master)) > 1  # master plus its services

        server.stop(graceful=graceful)
        assert session_pids(master) == set()
        with pytest.raises(ConnectionRefusedError):
            poplib.POP3(server.host, server.pop3_port)

        ports = (server.pop3_port, server.pop3s_port)
        server.start()
        assert (server.pop3_port, server.pop3s_port) == ports
        pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.ssl_context())
        pop.user("alice")
        pop.pass_(PASSWORD)
        assert retr_bytes(pop, 1) == message
        pop.quit()
    finally:
        server.close()
    assert not server.run_dir.exists()


def test_stop_disconnects_clients(tmp_path: Path) -> None:
    with DovecotServer(tmp_path) as server:
        server.add_user("alice", PASSWORD)
        pop = poplib.POP3(server.host, server.pop3_port)
        pop.user("alice")
        pop.pass_(PASSWORD)
        server.stop()
        with pytest.raises(poplib.error_proto, match="shutting down"):
            pop.stat()


def test_invalid_users_and_names_are_rejected(server: DovecotServer, user: str) -> None:
    for bad_name in ("../etc", "a/b", "x\n", ".hidden", "a%u"):
        with pytest.raises(ValueError):
            server.add_user(bad_name, PASSWORD)
    with pytest.raises(ValueError):
        server.add_user("colon", "pass:word")
    with pytest.raises(ValueError):
        server.add_user(user, PASSWORD)
    with pytest.raises(ValueError):
        server.deliver(user, b"x", name="a:2,S")
    path = server.deliver(user, b"Subject: x\r\n\r\nbody\r\n", name="custom-name")
    assert path.name == "custom-name"
    assert path.stat().st_uid == os.stat(server.maildir(user)).st_uid != 0
