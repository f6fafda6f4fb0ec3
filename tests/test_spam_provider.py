"""Spam filtering without rspamd: the provider's verdict (when the account trusts it), and the user's rules."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from mailbox.models import Folder, Message
from spam import actions as spam_actions
from spam import provider, scanning
from spam.filtering import Mode, mode_for
from spam.models import PendingScan
from tests.factories import make_account, store_message
from webpop.lib.env import env_http_url, url_with_port

HEAD = b"From: Shop <news@shop.example>\r\nTo: alice@example.org\r\nSubject: Offer\r\n"
BODY = b"\r\nBuy now.\r\n"


def headers(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode() + HEAD


@pytest.mark.parametrize(
    ("lines", "kind"),
    [
        (["X-Spam-Flag: YES"], "spam"),
        (["X-Spam-Flag: NO"], ""),
        (["X-Spam-Status: Yes, score=9.1 required=5.0 tests=BAYES_99"], "spam"),
        (["X-Spam-Status: No, score=1.2 required=5.0"], ""),
        (["X-Spam: Yes"], "spam"),
        (["X-MS-Exchange-Organization-SCL: 9"], "spam"),
        (["X-MS-Exchange-Organization-SCL: 1"], ""),
        (["X-Forefront-Antispam-Report: CIP:1.2.3.4;CTRY:;LANG:en;SCL:6;SRV:BULK;"], "spam"),
        (["X-UI-Filterresults: junk:10;V03:K0:abc"], "spam"),
        (["X-UI-Filterresults: notjunk:1;V03:K0:abc"], ""),
        ([], ""),
        # Providers prepend: the topmost is the provider's, one further down was written by the sender.
        (["X-Spam-Flag: NO", "X-Spam-Flag: YES"], ""),
    ],
)
def test_provider_headers(lines, kind):
    assert provider.verdict(headers(*lines)).kind == kind


def test_authentication_results_count_only_from_the_named_authserv_id():
    forged = "Authentication-Results: mx.provider.example; dmarc=fail (p=reject) header.from=bank.example"
    assert provider.verdict(headers(forged)).kind == ""  # no authserv-id named: never read
    assert provider.verdict(headers(forged), "other.example").kind == ""
    trusted = provider.verdict(headers(forged), "MX.Provider.Example")
    assert trusted == provider.Verdict("probable", "Authentication-Results")
    passed = "Authentication-Results: mx.provider.example 1; spf=pass smtp.mailfrom=bank.example; dmarc=pass"
    # The provider's own result is the topmost of its id: a forged one below it is ignored.
    assert provider.verdict(headers(passed, forged), "mx.provider.example").kind == ""


def test_authentication_results_comments_do_not_split_results():
    value = "mx.example (a comment; with dmarc=fail in it (nested)) ; dkim=pass (good) header.d=x.example; dmarc=pass"
    assert provider.authentication_results([value], "mx.example") == {"dkim": "pass", "dmarc": "pass"}


def test_only_the_header_block_is_read():
    import io

    raw = headers("X-Spam-Flag: NO") + b"\r\nX-Spam-Flag: YES\r\n"
    block = provider.read_header_block(io.BytesIO(raw))
    assert b"YES" not in block
    assert provider.verdict(block).kind == ""


@pytest.mark.django_db
@pytest.mark.sqlite
def test_an_account_that_trusts_its_provider_files_its_spam(alice, bob):
    trusting = make_account(alice, label="Trusting")
    assert spam_actions.set_provider_trust(alice.id, trusting.id, trust=True, authserv_id=" MX.Provider.Example ")
    assert not spam_actions.set_provider_trust(bob.id, trusting.id, trust=False, authserv_id="")  # not bob's
    trusting.refresh_from_db()
    assert (trusting.spam_trust_provider, trusting.spam_authserv_id) == (True, "mx.provider.example")
    assert mode_for(trusting) is Mode.PROVIDER
    flagged = store_message(trusting, headers("X-Spam-Flag: YES") + BODY, "p1")
    unsure = store_message(trusting, headers("Authentication-Results: mx.provider.example; dmarc=fail") + BODY, "p2")
    clean = store_message(trusting, headers("X-Spam-Flag: NO") + BODY, "p3")

    report = scanning.scan_due()
    assert (report.judged, report.spam, report.probable, report.counts.rspamd_scans) == (3, 1, 1, 0)
    folders = dict(Message.objects.filter(account=trusting).values_list("id", "folder"))
    assert folders == {flagged.id: Folder.SPAM, unsure.id: Folder.INBOX, clean.id: Folder.INBOX}
    assert Message.objects.get(id=unsure.id).spam_verdict == "probable"


@pytest.mark.django_db
@pytest.mark.sqlite
def test_without_rspamd_or_trust_only_rules_apply_and_nothing_is_queued(alice):
    account = make_account(alice)
    assert mode_for(account) is Mode.RULES
    message = store_message(account, headers("X-Spam-Flag: YES") + BODY, "r1")
    assert not PendingScan.objects.exists()
    assert Message.objects.get(id=message.id).folder == Folder.INBOX


@pytest.mark.django_db
@pytest.mark.sqlite
def test_rspamd_set_up_means_rspamd_judges_even_where_the_provider_is_trusted(alice, settings):
    settings.WEBPOP_RSPAMD_URL = "http://127.0.0.1:11333"
    account = make_account(alice)
    spam_actions.set_provider_trust(alice.id, account.id, trust=True, authserv_id="")
    account.refresh_from_db()
    assert mode_for(account) is Mode.RSPAMD


def test_rspamd_urls_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEBPOP_RSPAMD_URL", "http://127.0.0.1:11333/")
    assert env_http_url("WEBPOP_RSPAMD_URL") == "http://127.0.0.1:11333"
    assert url_with_port("http://127.0.0.1:11333", 11334) == "http://127.0.0.1:11334"
    assert url_with_port("https://[::1]/rspamd", 11334) == "https://[::1]:11334/rspamd"
    assert url_with_port("", 11334) == ""
    for bad in ("ftp://host", "http://", "http://user:pw@host:11333", "http://host:99999", "host:11333"):
        monkeypatch.setenv("WEBPOP_RSPAMD_URL", bad)
        with pytest.raises(ImproperlyConfigured):
            env_http_url("WEBPOP_RSPAMD_URL")
    monkeypatch.delenv("WEBPOP_RSPAMD_URL")
    assert env_http_url("WEBPOP_RSPAMD_URL") == ""


@pytest.mark.django_db
@pytest.mark.sqlite
def test_imported_mail_is_filed_where_the_user_chose_and_never_scanned(alice):
    from tests.test_import import imported

    account = make_account(alice)
    spam_actions.set_provider_trust(alice.id, account.id, trust=True, authserv_id="")
    account.refresh_from_db()
    job = imported(account, Folder.INBOX, ("flagged.eml", headers("X-Spam-Flag: YES") + BODY))
    assert job.imported == 1
    assert not PendingScan.objects.exists()
    assert scanning.scan_due().judged == 0
    assert Message.objects.get(account=account).folder == Folder.INBOX


# --- rspamd answering badly: a server on loopback that answers what a broken rspamd might --------------


class _Broken:
    def __init__(self, status: int, body: bytes) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.requests: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                outer.requests.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db
@pytest.mark.sqlite
@pytest.mark.parametrize(("status", "body"), [(500, b'{"error": "internal"}'), (200, b"not json")])
def test_a_scan_that_keeps_failing_is_tried_again_later_then_left_in_the_inbox(alice, settings, status, body):

    from django.utils import timezone

    broken = _Broken(status, body)
    try:
        settings.WEBPOP_RSPAMD_URL = broken.url
        message = store_message(make_account(alice), headers() + BODY, "b1")
        now = timezone.now()
        for attempt in range(1, scanning.MAX_ATTEMPTS + 1):
            report = scanning.scan_due(now=now)
            assert report.failed == 1 and report.judged == 0
            row = PendingScan.objects.filter(message=message).first()
            if attempt < scanning.MAX_ATTEMPTS:
                assert row.attempts == attempt and row.not_before == now + scanning.retry_delay(attempt)
                assert scanning.scan_due(now=now).failed == 0  # not again before its time
                now = row.not_before
            else:
                assert row is None  # given up: it stays where it is, unjudged
        assert Message.objects.get(id=message.id).folder == Folder.INBOX
        sent = broken.requests[0]
        assert (sent["Deliver-To"], sent["Settings-ID"]) == (f"webpop-user-{alice.id}", "webpop")
    finally:
        broken.close()


@pytest.mark.django_db
@pytest.mark.sqlite
def test_an_accounts_mail_waits_for_its_scan_while_its_sync_runs(alice):
    import datetime as dt

    from django.utils import timezone

    from accounts.models import MailAccount

    account = make_account(alice)
    spam_actions.set_provider_trust(alice.id, account.id, trust=True, authserv_id="")
    account.refresh_from_db()
    message = store_message(account, headers("X-Spam-Flag: YES") + BODY, "s1")
    MailAccount.objects.filter(id=account.id).update(sync_lease_until=timezone.now() + dt.timedelta(minutes=5))
    assert scanning.scan_due().judged == 0  # the sync is still storing this account's mail
    assert Message.objects.get(id=message.id).folder == Folder.INBOX
    MailAccount.objects.filter(id=account.id).update(sync_lease_until=None)  # the sync ended
    assert scanning.scan_due().spam == 1
    assert Message.objects.get(id=message.id).folder == Folder.SPAM
