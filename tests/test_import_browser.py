"""In Chromium: upload an mbox, watch the import's page update itself, read the final report.

The import runs in a thread of this process (``importer.run``, as a worker would), its batches slowed
down so the page's polling is seen moving. Screenshots of the import form, a running import and the
final report at desktop (1366×850) and phone (390×844) widths go to test-artifacts/screens/.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from mailbox import folders, importer
from mailbox.models import ImportJob, Message
from tests.factories import build_message, make_account
from tests.test_accessibility import AXE_OPTIONS, _describe

pytestmark = pytest.mark.django_db(transaction=True)

SCREENS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screens"
DESKTOP = {"width": 1366, "height": 850}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000


def _mbox(count: int) -> bytes:
    parts = []
    for i in range(count):
        raw = build_message(f"Old newsletter {i}", f"Issue {i} of the garden newsletter.\n", message_id=f"<n{i}@x>")
        parts.append(b"From news@example.net Thu Nov 26 09:00:00 2026\n" + raw.replace(b"\r\n", b"\n") + b"\n")
    huge = build_message("A film far too large", "z" * 40_000, message_id="<huge@x>").replace(b"\r\n", b"\n")
    parts.insert(3, b"From film@example.net Thu Nov 26 09:00:00 2026\n" + huge + b"\n")
    parts.append(b"From nobody@example.net Thu Nov 26 09:00:00 2026\n\n")  # a message with no content
    return b"".join(parts)


def _slow_batches(monkeypatch, seconds: float) -> None:
    monkeypatch.setattr(importer, "BATCH_MESSAGES", 20)
    original = importer._Import._save

    def slow(self, *args):
        time.sleep(seconds)
        return original(self, *args)

    monkeypatch.setattr(importer._Import, "_save", slow)


def _fits_the_width(page, width: int) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_an_import_is_followed_on_its_page_and_ends_with_its_report(
    browser, live_server, alice, monkeypatch, import_enqueued, tmp_path
):
    from axe_playwright_python.sync_playwright import Axe

    make_account(alice, label="Home", max_message_bytes=20_000)
    folder = folders.create(alice.id, "Newsletters")
    upload = tmp_path / "garden-newsletters.mbox"
    upload.write_bytes(_mbox(120))
    client = Client()
    client.force_login(alice)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    SCREENS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    contexts = [browser.new_context(viewport=size) for size in (DESKTOP, PHONE)]
    try:
        desktop, phone = (context.new_page() for context in contexts)
        for context in contexts:
            context.add_cookies(
                [{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
            )
        for page in (desktop, phone):
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda exc: errors.append(str(exc)))

        # The form: files, account, folder.
        desktop.goto(f"{live_server.url}/import/", wait_until="load")
        desktop.set_input_files("#id_files", str(upload))
        desktop.select_option("#id_folder", folder.slug)
        desktop.screenshot(path=str(SCREENS / "import-form-desktop.png"), full_page=True)
        desktop.get_by_role("button", name="Import").click()
        desktop.wait_for_url(f"{live_server.url}/import/*/")
        job = ImportJob.objects.get()
        assert import_enqueued == [job.id]
        assert "Waiting for a worker" in desktop.locator("#import-progress").inner_text()

        # The worker's part, in a thread: the page polls and shows the bytes read and the counts.
        _slow_batches(monkeypatch, 0.4)
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["state"] = importer.run(job.id)
            finally:
                connection.close()

        worker = threading.Thread(target=work)
        worker.start()
        try:
            desktop.wait_for_function(
                "() => Number(document.getElementById('import-imported').textContent) > 0"
                " && document.getElementById('import-progress-bar').value > 0"
            )
            assert " of " in desktop.locator("#import-progress .progress-text").inner_text()
            desktop.screenshot(path=str(SCREENS / "import-running-desktop.png"), full_page=True)
            phone.goto(desktop.url, wait_until="load")
            phone.screenshot(path=str(SCREENS / "import-running-phone.png"), full_page=True)
        finally:
            worker.join(timeout=60)
        assert outcome["state"] == "done"

        # Finished: the page loads itself again and shows the report.
        desktop.wait_for_selector("text=The import is finished.")
        assert desktop.locator("#import-progress").count() == 0
        counts = desktop.locator(".import-counts").inner_text()
        assert "120" in counts and "Refused\n2" in counts.replace("\t", "\n")
        rows = desktop.locator("table.refusals tbody tr").all_inner_texts()
        assert rows[0].startswith("garden-newsletters.mbox, message 4") and "larger than this account" in rows[0]
        assert rows[1].startswith("garden-newsletters.mbox, message 122") and rows[1].endswith("empty")
        desktop.screenshot(path=str(SCREENS / "import-report-desktop.png"), full_page=True)
        # The phone still shows the running page: it loads itself again too (a goto here could race its reload).
        phone.wait_for_selector("text=The import is finished.")
        _fits_the_width(phone, PHONE["width"])
        phone.screenshot(path=str(SCREENS / "import-report-phone.png"), full_page=True)
        phone.goto(f"{live_server.url}/import/", wait_until="load")
        assert "garden-newsletters.mbox" in phone.locator("table.import-jobs").inner_text()
        _fits_the_width(phone, PHONE["width"])
        phone.screenshot(path=str(SCREENS / "import-list-phone.png"), full_page=True)
        desktop.goto(f"{live_server.url}/import/", wait_until="load")
        desktop.screenshot(path=str(SCREENS / "import-list-desktop.png"), full_page=True)

        # Accessible, in light and dark.
        axe = Axe()
        problems = []
        for scheme in ("light", "dark"):
            desktop.emulate_media(color_scheme=scheme)
            for path in (f"/import/{job.id}/", "/import/"):
                desktop.goto(live_server.url + path, wait_until="load")
                problems += _describe(path, scheme, axe.run(desktop, options=AXE_OPTIONS).response["violations"])
        assert problems == []
        assert errors == []
    finally:
        for context in contexts:
            context.close()
    assert Message.objects.filter(folder=folder.slug).count() == 120
