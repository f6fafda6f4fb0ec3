"""Celery wrappers around spam/scanning.py and spam/learning.py: call one function."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def scan_pending() -> int:
    """After a sync stored mail, and from beat every tick: judge the new mail whose scan is due."""
    from . import scanning

    report = scanning.scan_due()
    if not (report.judged or report.failed or report.postponed):
        scanning.check_health()  # nothing to scan: still tell the dashboard whether rspamd is up
    return report.judged


@shared_task(ignore_result=True)
def learn_pending() -> int:
    """After "Spam" / "Not spam", and from beat every tick: send due training to rspamd."""
    from . import learning

    return learning.learn_due().learned
