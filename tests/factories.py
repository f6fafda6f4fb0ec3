"""Small builders for test data: messages as bytes, stored messages as rows."""

from __future__ import annotations

import email.policy
import hashlib
import os
from email.message import EmailMessage
from pathlib import Path

from accounts import actions
from accounts.models import MailAccount
from mailbox import mime, store, threads
from mailbox.models import Message


def build_message(
    subject: str = "Hello",
    body: str = "Hi there.",
    *,
    sender: str = "Carol <carol@example.net>",
    to: str = "alice@example.org",
    date: str = "Thu, 26 Nov 2026 09:00:00 +0000",
    attachments: list[tuple[str, str, bytes]] = (),
    message_id: str | None = None,
) -> bytes:
    """An RFC 5322 message with CRLF line endings, as a POP3 server sends it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = message_id or f"<{abs(hash((subject, body)))}@example.net>"
    msg.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=email.policy.SMTP)


def build_html_message(
    subject: str,
    text: str,
    html: str,
    *,
    inline: list[tuple[str, str, str, bytes]] = (),
    attachments: list[tuple[str, str, bytes]] = (),
    sender: str = "Carol <carol@example.net>",
    to: str = "alice@example.org",
    message_id: str | None = None,
) -> bytes:
    """Text and HTML alternatives, the HTML with its pictures as related parts: (content id, filename, type, data)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = "Thu, 26 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = message_id or f"<{abs(hash((subject, html)))}@example.net>"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    for cid, filename, content_type, data in inline:
        maintype, subtype = content_type.split("/", 1)
        html_part.add_related(
            data, maintype=maintype, subtype=subtype, cid=f"<{cid}>", filename=filename, disposition="inline"
        )
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=email.policy.SMTP)


def make_account(owner, **overrides) -> MailAccount:
    fields = {
        "host": "pop.example.net",
        "port": 995,
        "security": "ssl",
        "username": f"{owner.username}-pop",
        "password": "secret",
        "policy": "keep",
    }
    fields.update(overrides)
    return actions.create_account(owner, **fields)


def store_message(account: MailAccount, raw: bytes, uidl: str) -> Message:
    """Store ``raw`` as the sync engine would, without a server."""
    with store.temp_file() as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    stored = store.commit_raw(Path(fh.name), expected_size=len(raw), expected_sha256=hashlib.sha256(raw).hexdigest())
    message = store.save_message(account, uidl, stored, mime.parse_bytes(raw))
    assert message is not None
    threads.assign([message])
    return message


def stored_maildrop(fault_server, fault_account, size: int):
    """``(server, account)``: a fault server listing ``size`` copies of one message, every one already stored.

    The rows are bulk-created under the server's UIDLs (no files): for tests of what a sync of a large,
    fully stored mailbox costs.
    """
    from django.utils import timezone

    from tests.fault_server import make_message

    raw = make_message(1)
    server = fault_server([raw] * size)
    account = fault_account(server)
    sha = hashlib.sha256(raw).hexdigest()
    Message.objects.bulk_create(
        Message(owner_id=account.owner_id, account=account, uidl=f"uid-{i:05d}", sha256=sha, size=len(raw),
                raw_path="raw/x", date=timezone.now())
        for i in range(1, size + 1)
    )  # fmt: skip
    return server, account
