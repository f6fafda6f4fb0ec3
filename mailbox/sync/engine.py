"""One sync of one account, start to finish: take the lease, run a session, record the outcome."""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils import timezone

from accounts.crypto import DecryptionError
from accounts.models import MailAccount
from oauth import tokens as oauth_tokens
from push import actions as push_actions
from webpop.lib import shutdown

from .. import storage_gc, storage_refs, store
from ..models import FetchFailure, SyncRun
from ..pop3 import Pop3Client, Pop3Error
from . import diff, lease
from .outcome import DISK_FULL, RECONNECT, SyncResult, record_outcome
from .session import QuotaFull, Session

log = logging.getLogger(__name__)

STOPPED = "the worker stopped; the sync goes on at the next poll"


def sync_account(account_id: int) -> SyncResult:
    """Run one sync of ``account_id`` now, if no other sync of it is running."""
    started = time.monotonic()
    result = SyncResult(account=account_id)
    if shutdown.requested():  # a task taken just before the worker began to stop: the next poll runs it
        result.error, result.error_class = f"stopped: {STOPPED}", "stopped"
        MailAccount.objects.filter(id=account_id).update(next_poll_at=timezone.now())
        return result
    token = lease.claim_lease(account_id)
    if token is None:
        result.error = "busy: another sync of this account is running"
        result.error_class = "busy"
        return result
    run = None
    try:
        account = MailAccount.objects.get(id=account_id)
        now = timezone.now()
        MailAccount.objects.filter(id=account_id).update(last_attempt_at=now)
        run = SyncRun.objects.create(account=account, started_at=now, worker=lease.worker_id())
        try:
            Session(account, result, token).run()
        except (shutdown.Stopping, Pop3Error) as exc:
            if shutdown.requested():  # stopped, or cut off after the grace: what was whole is kept
                log.warning("sync stopped, the worker is shutting down account=%s: %s", account_id, exc)
                result.error, result.error_class = f"stopped: {STOPPED}", "stopped"
            else:
                result.failed(exc)
        except oauth_tokens.ReconnectRequired as exc:
            result.error_class = "auth"
            result.error = f"auth: {exc}"
            result.fix = RECONNECT
        except oauth_tokens.TokenUnavailable as exc:
            result.error_class = "temporary"
            result.error = f"temporary: {exc}"
        except DecryptionError as exc:
            result.error_class = "credentials"
            result.error = f"credentials: {exc}"
        except QuotaFull as exc:
            result.error_class = "quota"
            result.error = f"quota: {exc}"
        except lease.LeaseLost as exc:
            result.error_class = "busy"
            result.error = f"busy: {exc}"
        except Exception as exc:  # keep the worker alive; record what happened
            if store.is_disk_full(exc):  # spooling, storing, or committing
                log.error("sync stopped, disk full account=%s: %s: %s", account_id, type(exc).__name__, exc)
                result.error_class = "disk_full"
                result.error = f"disk_full: {DISK_FULL}"
            else:
                log.exception("sync failed account=%s", account_id)
                result.error_class = "internal"
                result.error = f"internal: {type(exc).__name__}"
        result.seconds = time.monotonic() - started
        record_outcome(account, result, run)
        if result.fetched:
            push_actions.new_mail_stored(account.owner_id)  # never raises: notifications never stop ingest
    finally:
        lease.release_lease(account_id, token)
    log.info(
        "sync account=%s fetched=%s bytes=%s deleted_on_server=%s skipped=%s error_class=%s seconds=%.3f",
        account_id,
        result.fetched,
        result.bytes,
        result.deleted_on_server,
        result.skipped,
        result.error_class or "-",
        result.seconds,
    )
    return result


def open_listing(account: MailAccount, lease_token: str) -> tuple[Pop3Client, dict[str, int]]:
    """Log in to ``account`` as a sync does and list its messages, ``{uidl: message number}``.

    For work besides syncing that fetches by UIDL (``verify.repair``); the caller holds the
    account's lease, sends no DELE, and QUITs or closes the client.
    """
    session = Session(account, SyncResult(account=account.id), lease_token)
    client = session.log_in()
    try:
        return client, diff.server_listing(client, session.notes)
    except BaseException:
        client.close()
        raise


@transaction.atomic
def retry_failure(failure: FetchFailure) -> None:
    """The user asked to try a quarantined message again: forget its failures (and kept bytes), poll soon."""
    storage_gc.release(storage_refs.files_of("failure", [failure.id]))
    FetchFailure.objects.filter(id=failure.id).delete()
    MailAccount.objects.filter(id=failure.account_id).update(listing_digest="")  # a full sync fetches it again
    MailAccount.objects.filter(id=failure.account_id, enabled=True).update(next_poll_at=timezone.now())
