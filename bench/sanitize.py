"""HTML mail rendering cost: first view (sanitize) against cached view, for a 60 KB newsletter.

bleach is slow (html5lib in pure Python), so webpop sanitizes a message on its first
view and caches the result on the message with the sanitizer's version; later views
only swap per-view URLs into the cached HTML. Measured in-process with Django's test
client (server time: middleware, session, queries, templates), on a throwaway SQLite
database. Baseline: plain ``bleach.Cleaner`` with bleach's own CSS sanitizer, i.e.
what re-sanitizing on every view would cost at the least. Target: the cached message
page within 30 ms. Prints a Markdown table; the median of several runs counts.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

TARGET_MS = 30.0
RUNS = 15


def newsletter(target_bytes: int = 60_000) -> str:
    """A long, realistic newsletter: a style block, tables, inline styles, links, images."""
    head = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>The Weekly Roundup</title>
<style>
  body { margin: 0; background-color: #f4f4f4; }
  .story h2 { font-family: Georgia, serif; color: #1a1a1a; }
  .tag { display: inline-block; padding: 2px 8px; border-radius: 10px; background: #e8f0fe; color: #1a73e8; }
  .btn a { color: #ffffff !important; text-decoration: none; }
  @media only screen and (max-width: 600px) { .container { width: 100% !important; } }
</style></head>
<body bgcolor="#f4f4f4"><table width="100%" cellpadding="0" cellspacing="0" bgcolor="#f4f4f4"><tr><td align="center">
<table class="container" width="640" cellpadding="0" cellspacing="0" bgcolor="#ffffff" style="border-collapse:collapse">
<tr><td style="padding:24px 32px;border-bottom:3px solid #0b5394"><img src="cid:logo@roundup" width="160" height="40"
 alt="The Weekly Roundup"></td></tr>
"""
    story = """<tr><td class="story" style="padding:20px 32px;font-family:Arial,Helvetica,sans-serif;font-size:15px;
line-height:22px;color:#333333;background-color:#ffffff" bgcolor="#ffffff">
<span class="tag">section {n}</span>
<h2 style="margin:8px 0 10px;font-size:20px;line-height:26px">Story number {n}: what changed this week</h2>
<img src="https://cdn.roundup.example/img/{n}.jpg" width="576" height="240" alt="Picture for story {n}"
 style="display:block;border:0;max-width:100%;height:auto;border-radius:6px">
<p style="margin:12px 0">Lorem ipsum dolor sit amet, consectetur adipiscing elit. Integer posuere erat a ante venenatis
dapibus posuere velit aliquet. Donec ullamcorper nulla non metus auctor fringilla &amp; more.</p>
<table cellpadding="0" cellspacing="0"><tr>
<td class="btn" bgcolor="#0b5394" style="border-radius:4px;padding:10px 20px">
<a href="https://roundup.example/story/{n}?utm_source=newsletter&amp;utm_medium=email" style="color:#ffffff;
font-weight:bold">Read story {n}</a></td></tr></table>
</td></tr>
"""
    tail = """<tr><td style="padding:16px 32px;background-color:#f5f5f5;font-size:12px;color:#888888">
You are subscribed to The Weekly Roundup. <a href="https://roundup.example/unsubscribe">Unsubscribe</a></td></tr>
</table></td></tr></table>
<img src="https://t.roundup.example/open.gif" width="1" height="1" alt=""></body></html>
"""
    parts = [head]
    n = 0
    while sum(map(len, parts)) + len(tail) < target_bytes:
        n += 1
        parts.append(story.replace("{n}", str(n)))
    parts.append(tail)
    return "".join(parts)


def median_ms(fn, runs: int = RUNS) -> float:
    fn()  # warm up (imports, caches, first connection)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="webpop-bench-")
    os.environ["WEBPOP_DATA_DIR"] = tmp
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webpop.settings")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    import bleach
    from bleach.css_sanitizer import CSSSanitizer
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from mailbox import sanitize
    from mailbox.models import Message
    from tests import html_samples
    from tests.factories import make_account, store_message

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", "bench@example.org", "bench-Password-1")
    markup = newsletter()
    raw = html_samples.html_message(
        markup, subject="The Weekly Roundup", cids={"logo@roundup": html_samples.png(160, 40, (11, 83, 148))}
    )
    message = store_message(make_account(user), raw, "bench-1")
    client = Client()
    client.force_login(user)
    page = reverse("mailbox:message", args=[message.id])
    body = reverse("mailbox:message_body", args=[message.id])

    def uncached(url: str):
        def run() -> None:
            Message.objects.filter(id=message.id).update(html_cache_version=0)
            assert client.get(url).status_code == 200

        return run

    def cached(url: str):
        def run() -> None:
            assert client.get(url).status_code == 200

        return run

    baseline = bleach.Cleaner(
        tags=sanitize.ALLOWED_TAGS,
        attributes=lambda tag, name, value: name in sanitize.GLOBAL_ATTRIBUTES or name in ("href", "src"),
        strip=True,
        css_sanitizer=CSSSanitizer(),
    )
    result = sanitize.sanitize(markup, {"logo@roundup": 1})
    rows = [
        ("bleach.Cleaner alone (baseline: sanitize every view)", median_ms(lambda: baseline.clean(markup))),
        ("sanitize.sanitize (first view: policy + CSS filter)", median_ms(lambda: sanitize.sanitize(markup))),
        (
            "sanitize.render (cached view: per-view URLs)",
            median_ms(lambda: sanitize.render(result.html, result.meta(), cid_url=str, remote_url=None), runs=200),
        ),
        ("message page, first view (parse + sanitize + save)", median_ms(uncached(page))),
        ("message page, cached view", median_ms(cached(page))),
        ("body document, first view", median_ms(uncached(body))),
        ("body document, cached view", median_ms(cached(body))),
    ]
    shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0][1]
    print(
        f"Newsletter: {len(markup.encode()) / 1000:.1f} KB of HTML, {markup.count('<table')} tables, "
        f"{len(result.remote)} remote images, 1 inline image; median of {RUNS} runs (render: 200)."
    )
    print()
    print("| What | ms | vs. baseline |")
    print("| --- | ---: | ---: |")
    for label, ms in rows:
        print(f"| {label} | {ms:.2f} | {ms / base:.2f}× |")
    cached_page = rows[4][1]
    verdict = "met" if cached_page <= TARGET_MS else "NOT met"
    print()
    print(f"Target: cached message page ≤ {TARGET_MS:.0f} ms server time: {verdict} ({cached_page:.1f} ms).")


if __name__ == "__main__":
    main()
